// <uvaio/task.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/task.hpp>
#include <uvaio/task.hpp>
