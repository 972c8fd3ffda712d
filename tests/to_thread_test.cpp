#include <doctest/doctest.h>

#include "support.hpp"

TEST_SUITE_BEGIN("to_thread");
// Tests for <uvaio/to_thread.hpp> go here.
TEST_SUITE_END();
