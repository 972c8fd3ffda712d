// <uvaio/version.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/version.hpp>
#include <uvaio/version.hpp>
