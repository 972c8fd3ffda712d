#include <doctest/doctest.h>

#include "support.hpp"

TEST_SUITE_BEGIN("queue");
// Tests for <uvaio/queue.hpp> go here.
TEST_SUITE_END();
