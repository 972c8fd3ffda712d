// <uvaio/gather.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/gather.hpp>
#include <uvaio/gather.hpp>
