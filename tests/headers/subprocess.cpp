// <uvaio/subprocess.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/subprocess.hpp>
#include <uvaio/subprocess.hpp>
