// <uvaio/handle.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/handle.hpp>
#include <uvaio/handle.hpp>
