// <uvaio/log.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/log.hpp>
#include <uvaio/log.hpp>
