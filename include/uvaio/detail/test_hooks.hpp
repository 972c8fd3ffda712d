#pragma once

// Hooks for uvaio's own tests, to make rare interleavings happen on purpose.
// Null in normal use; nothing else should set them.

#include "uvaio/export.hpp"

namespace uvaio::detail::test_hooks {

// Called on the loop thread after the loop armed its wake-up timer and before
// it polls libuv (blocking). A test sets it to stall the thread there.
UVAIO_API extern void (*before_blocking_poll)() noexcept;

}  // namespace uvaio::detail::test_hooks
