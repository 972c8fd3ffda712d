// <uvaio/outcome.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/outcome.hpp>
#include <uvaio/outcome.hpp>
