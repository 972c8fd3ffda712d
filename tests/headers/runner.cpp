// <uvaio/runner.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/runner.hpp>
#include <uvaio/runner.hpp>
