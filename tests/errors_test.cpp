#include <doctest/doctest.h>

#include "support.hpp"

TEST_SUITE_BEGIN("errors");
// Tests for <uvaio/errors.hpp> go here.
TEST_SUITE_END();
