#include <doctest/doctest.h>

#include "support.hpp"

TEST_SUITE_BEGIN("sync");
// Tests for <uvaio/sync.hpp> go here.
TEST_SUITE_END();
