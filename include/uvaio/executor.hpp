#pragma once

#include <cstddef>
#include <utility>

#include "uvaio/export.hpp"

namespace uvaio {

class Loop;

namespace detail {
class WorkItemBase;
class LoopImpl;
class Mailbox;
}  // namespace detail

// The number of threads in libuv's threadpool: what it started with, or, if it
// has not started yet, what UV_THREADPOOL_SIZE will give it (libuv's rule:
// default 4, at least 1, at most 1024). The pool is process-wide, shared by
// every loop and by libuv's file-system and DNS requests.
UVAIO_API unsigned libuv_threadpool_size() noexcept;

// One submitted call, as an executor sees it. Move-only. Calling it (on any
// thread, once) runs the function and delivers the completion to the loop that
// submitted it, thread-safely; an exception from the function is captured, not
// thrown. Destroying a Work that never ran completes it as cancelled, so an
// executor that drops work at shutdown never loses a completion.
class UVAIO_API Work {
 public:
  Work() noexcept = default;
  explicit Work(detail::WorkItemBase* item) noexcept : item_(item) {}
  Work(Work&& other) noexcept : item_(std::exchange(other.item_, nullptr)) {}
  Work& operator=(Work&& other) noexcept;
  Work(const Work&) = delete;
  Work& operator=(const Work&) = delete;
  ~Work();

  void operator()() noexcept;
  explicit operator bool() const noexcept { return item_ != nullptr; }

  // For executors built into uvaio: take the item out of the Work.
  detail::WorkItemBase* release() noexcept { return std::exchange(item_, nullptr); }

 private:
  detail::WorkItemBase* item_ = nullptr;
};

// Runs Work somewhere. execute() may be called from the loop thread of any loop
// that submits to it; shutdown() follows concurrent.futures: afterwards execute()
// throws, `wait` blocks until submitted work finished, `cancel_futures` drops
// work that has not started (which then completes as cancelled).
class UVAIO_API Executor {
 public:
  Executor() = default;
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;
  virtual ~Executor();

  virtual void execute(Work work) = 0;
  virtual void shutdown(bool wait = true, bool cancel_futures = false) = 0;
};

// The default executor: libuv's threadpool through uv_queue_work. Bound to one
// loop and used from that loop's thread only (uv_queue_work and uv_cancel are
// not thread-safe). The pool is process-wide, shared with libuv's file-system
// and DNS requests, and sized once from UV_THREADPOOL_SIZE (default 4) at its
// first use; CPU-bound work that would starve file I/O belongs on a dedicated
// ThreadPoolExecutor. Completions arrive in libuv's after_work callback, on the
// loop thread. Work that is already running cannot be stopped: the loop waits
// for it when it closes.
class UVAIO_API UvWorkExecutor final : public Executor {
 public:
  explicit UvWorkExecutor(Loop& loop);
  ~UvWorkExecutor() override;

  // Throws RuntimeError("cannot schedule new futures after shutdown") after
  // shutdown, UvError if uv_queue_work fails.
  void execute(Work work) override;
  // On the loop thread, waiting would deadlock (after_work needs the loop):
  // shutdown(true) with work in flight throws RuntimeError; await
  // Loop::shutdown_default_executor() instead, which waits without blocking.
  void shutdown(bool wait = true, bool cancel_futures = false) override;
  // Items submitted through this executor whose after_work has not run yet.
  std::size_t in_flight() const;

 private:
  detail::LoopImpl* loop_;
  detail::Mailbox* mailbox_;  // outlives the loop: tells whether it is still open
  bool shut_down_ = false;
};

}  // namespace uvaio
