#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

#include <uv.h>

#include "intrusive.hpp"
#include "uvaio/detail/core.hpp"

namespace uvaio::detail {

// The loop's thread-safe inbox: call_soon_threadsafe callbacks and work
// completions from executors' threads. One mutex-protected FIFO and one
// uv_async_t; libuv coalesces uv_async_send, so the loop always takes the whole
// list per wake-up (take_all), never one entry.
//
// It is reference counted (atomically) because work items that an executor
// still holds may post to it after their loop is gone: once closed, post()
// refuses and the poster lets go of the entry itself.
class Mailbox {
 public:
  explicit Mailbox(uv_async_t* async) noexcept : async_(async) {}
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Any thread. False once the loop closed the mailbox.
  bool post(Runnable& entry) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_.load(std::memory_order_relaxed)) return false;
    queue_.push(entry);
    has_entries_.store(true, std::memory_order_release);
    // Under the mutex, so that close() cannot close the async handle in between.
    uv_async_send(async_);
    return true;
  }

  // Loop thread: the whole list, oldest first (linked through next_runnable_).
  Runnable* take_all() noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    return take_locked();
  }

  // Loop thread: refuse further posts; returns what was still queued.
  Runnable* close() noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_.store(true, std::memory_order_release);
    return take_locked();
  }

  bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }

  // A cheap hint for the loop thread; take_all() is the truth.
  bool has_entries() const noexcept { return has_entries_.load(std::memory_order_acquire); }

 private:
  ~Mailbox() = default;

  Runnable* take_locked() noexcept {
    has_entries_.store(false, std::memory_order_relaxed);
    return queue_.take_all();
  }

  mutable std::mutex mutex_;
  RunnableFifo queue_;
  std::atomic<bool> closed_{false};
  std::atomic<bool> has_entries_{false};
  std::atomic<std::uint32_t> refs_{1};
  uv_async_t* async_;
};

}  // namespace uvaio::detail
