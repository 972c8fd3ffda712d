#include <doctest/doctest.h>

#include "support.hpp"

TEST_SUITE_BEGIN("task");
// Tests for <uvaio/task.hpp> go here.
TEST_SUITE_END();
