// <uvaio/errors.hpp> compiles on its own (STYLE.md), and twice (#pragma once).
#include <uvaio/errors.hpp>
#include <uvaio/errors.hpp>
