#include <doctest/doctest.h>

#include "support.hpp"

TEST_SUITE_BEGIN("cancel");
// Cancellation across the library (issue 3): what cancel() reaches and how it unwinds.
TEST_SUITE_END();
