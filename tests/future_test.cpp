#include <doctest/doctest.h>

#include "support.hpp"

TEST_SUITE_BEGIN("future");
// Tests for <uvaio/future.hpp> go here.
TEST_SUITE_END();
