// <uvaio/task_group.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/task_group.hpp>
#include <uvaio/task_group.hpp>
