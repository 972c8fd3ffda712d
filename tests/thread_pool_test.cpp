#include <doctest/doctest.h>

#include "support.hpp"

TEST_SUITE_BEGIN("thread_pool");
// Tests for <uvaio/thread_pool.hpp> go here.
TEST_SUITE_END();
