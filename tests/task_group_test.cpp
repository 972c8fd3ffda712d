#include <doctest/doctest.h>

#include "support.hpp"

TEST_SUITE_BEGIN("task_group");
// Tests for <uvaio/task_group.hpp> go here.
TEST_SUITE_END();
