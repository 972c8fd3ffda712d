// <uvaio/source_location.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/source_location.hpp>
#include <uvaio/source_location.hpp>
