// <uvaio/loop.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/loop.hpp>
#include <uvaio/loop.hpp>
