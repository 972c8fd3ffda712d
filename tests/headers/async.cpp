// <uvaio/async.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/async.hpp>
#include <uvaio/async.hpp>
