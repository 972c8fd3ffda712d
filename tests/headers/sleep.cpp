// <uvaio/sleep.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/sleep.hpp>
#include <uvaio/sleep.hpp>
