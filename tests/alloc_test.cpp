#include <doctest/doctest.h>

#include "support.hpp"

// This binary replaces the global operator new to count allocations.
TEST_SUITE_BEGIN("alloc");
TEST_SUITE_END();
