// <uvaio/streams.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/streams.hpp>
#include <uvaio/streams.hpp>
