#include <doctest/doctest.h>

#include "support.hpp"

TEST_SUITE_BEGIN("loop");
// Tests for <uvaio/loop.hpp> go here.
TEST_SUITE_END();
