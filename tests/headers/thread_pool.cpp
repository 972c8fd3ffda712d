// <uvaio/thread_pool.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/thread_pool.hpp>
#include <uvaio/thread_pool.hpp>
