// <uvaio/futures.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/futures.hpp>
#include <uvaio/futures.hpp>
