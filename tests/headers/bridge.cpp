// <uvaio/bridge.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/bridge.hpp>
#include <uvaio/bridge.hpp>
