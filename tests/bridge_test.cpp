#include <doctest/doctest.h>

#include "support.hpp"

TEST_SUITE_BEGIN("bridge");
// Tests for <uvaio/bridge.hpp> go here.
TEST_SUITE_END();
