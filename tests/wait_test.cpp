#include <doctest/doctest.h>

#include "support.hpp"

TEST_SUITE_BEGIN("wait");
// Tests for <uvaio/wait.hpp> go here.
TEST_SUITE_END();
