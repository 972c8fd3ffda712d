// <uvaio/export.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/export.hpp>
#include <uvaio/export.hpp>
