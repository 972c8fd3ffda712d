// <uvaio/wait.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/wait.hpp>
#include <uvaio/wait.hpp>
