#include <doctest/doctest.h>

#include "support.hpp"

TEST_SUITE_BEGIN("executor");
// Tests for <uvaio/executor.hpp> go here.
TEST_SUITE_END();
