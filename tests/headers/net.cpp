// <uvaio/net.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/net.hpp>
#include <uvaio/net.hpp>
