// <uvaio/queue.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/queue.hpp>
#include <uvaio/queue.hpp>
