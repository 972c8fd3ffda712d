// <uvaio/executor.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/executor.hpp>
#include <uvaio/executor.hpp>
