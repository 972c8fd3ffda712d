// <uvaio/uvaio.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/uvaio.hpp>
#include <uvaio/uvaio.hpp>
