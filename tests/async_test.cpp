#include <doctest/doctest.h>

#include "support.hpp"

TEST_SUITE_BEGIN("async");
// Tests for <uvaio/async.hpp> go here.
TEST_SUITE_END();
