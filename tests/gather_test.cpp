#include <doctest/doctest.h>

#include "support.hpp"

TEST_SUITE_BEGIN("gather");
// Tests for <uvaio/gather.hpp> go here.
TEST_SUITE_END();
