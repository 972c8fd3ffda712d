#include <doctest/doctest.h>

#include "support.hpp"

TEST_SUITE_BEGIN("sleep");
// Tests for <uvaio/sleep.hpp> go here.
TEST_SUITE_END();
