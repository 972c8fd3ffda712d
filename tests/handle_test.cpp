#include <doctest/doctest.h>

#include "support.hpp"

TEST_SUITE_BEGIN("handle");
// Tests for <uvaio/handle.hpp> go here.
TEST_SUITE_END();
