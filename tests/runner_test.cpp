#include <doctest/doctest.h>

#include "support.hpp"

TEST_SUITE_BEGIN("runner");
// Tests for <uvaio/runner.hpp> go here.
TEST_SUITE_END();
