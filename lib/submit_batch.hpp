#pragma once

// Wake-ups held back for the rest of a loop iteration.
//
// A loop runs its ready callbacks as a snapshot. The work they hand to a
// ThreadPoolExecutor is queued at once, but waking sleeping workers for it
// (a futex wake-up each, microseconds on both sides) waits until the snapshot
// is done: then one wake-up per sleeper that has an entry to take, instead of
// one per call. A call never waits for this with no worker awake: if none is,
// the first submission wakes one at once. Nothing waits longer either: the
// loop does not poll before the wake-ups are sent.

namespace uvaio::detail {

// Loop thread, around run_ready(): while one is alive on this thread, a pool
// may leave the wake-ups for this thread's submissions to its destructor.
class SubmitBatchScope {
 public:
  SubmitBatchScope() noexcept;
  SubmitBatchScope(const SubmitBatchScope&) = delete;
  SubmitBatchScope& operator=(const SubmitBatchScope&) = delete;
  ~SubmitBatchScope();
};

// Sends this thread's held-back wake-ups now (thread_pool.cpp).
void flush_submit_batches() noexcept;

}  // namespace uvaio::detail
