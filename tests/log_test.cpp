#include <doctest/doctest.h>

#include "support.hpp"

TEST_SUITE_BEGIN("log");
// Tests for <uvaio/log.hpp> go here.
TEST_SUITE_END();
