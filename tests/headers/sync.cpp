// <uvaio/sync.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/sync.hpp>
#include <uvaio/sync.hpp>
