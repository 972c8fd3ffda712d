// <uvaio/to_thread.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/to_thread.hpp>
#include <uvaio/to_thread.hpp>
