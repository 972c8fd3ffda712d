// <uvaio/thread_future.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/thread_future.hpp>
#include <uvaio/thread_future.hpp>
