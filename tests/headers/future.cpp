// <uvaio/future.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/future.hpp>
#include <uvaio/future.hpp>
