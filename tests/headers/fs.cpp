// <uvaio/fs.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/fs.hpp>
#include <uvaio/fs.hpp>
