#include "uvaio/executor.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <utility>

#include "log_internal.hpp"
#include "loop_impl.hpp"
#include "uvaio/detail/work_item.hpp"
#include "uvaio/loop.hpp"

namespace uvaio {

namespace detail {

namespace {

// libuv sizes its threadpool once, in the first uv_queue_work (or file-system or
// DNS request) of the process, from UV_THREADPOOL_SIZE. uvaio notes the size
// when it submits its own first work; work submitted by other code before that
// is not seen (libuv offers no way to ask).
std::atomic<unsigned> pool_size_at_start{0};
std::mutex pool_size_mutex;

unsigned pool_size_from_environment() noexcept {
  const char* value = std::getenv("UV_THREADPOOL_SIZE");
  if (value == nullptr) return 4;
  const long n = std::strtol(value, nullptr, 10);  // libuv: atoi, 0 -> 1, capped at 1024
  if (n <= 0) return 1;
  return static_cast<unsigned>(std::min<long>(n, 1024));
}

void note_pool_start() noexcept {
  if (pool_size_at_start.load(std::memory_order_acquire) != 0) return;
  std::lock_guard<std::mutex> lock(pool_size_mutex);
  if (pool_size_at_start.load(std::memory_order_relaxed) == 0) {
    pool_size_at_start.store(pool_size_from_environment(), std::memory_order_release);
  }
}

void on_uv_work(uv_work_t* request) {
  // A worker thread: only the callable and the result slot are touched here.
  static_cast<WorkItemBase*>(request->data)->invoke_on_worker();
}

void on_uv_after_work(uv_work_t* request, int /*status*/) {
  // The loop thread. UV_ECANCELED needs no special case: uv_cancel is only
  // called after cancel_work() marked the item dropped.
  static_cast<WorkItemBase*>(request->data)->complete_on_loop();
}

}  // namespace

WorkItemBase::WorkItemBase(LoopImpl& loop) : work_loop_(&loop), mailbox_(loop.mailbox_) {
  mailbox_->add_ref();
  uv_req_.data = this;
}

WorkItemBase::~WorkItemBase() { mailbox_->release(); }

std::string WorkItemBase::describe() const { return "work completion"; }

void WorkItemBase::invoke_on_worker() noexcept {
  std::uint8_t expected = queued;
  if (phase_.compare_exchange_strong(expected, running, std::memory_order_acq_rel)) {
    call();
    phase_.store(finished, std::memory_order_release);
  }
}

void WorkItemBase::post_completion() noexcept {
  std::uint8_t expected = queued;
  phase_.compare_exchange_strong(expected, dropped, std::memory_order_acq_rel);
  if (!mailbox_->post(*this)) release_owner();
}

void WorkItemBase::complete_on_loop() noexcept {
  LoopImpl& loop = *work_loop_;
  FutureCore& future = future_core();
  bool delivered = false;
  if (!future.done() && !loop.closing()) {
    if (phase() == finished) {
      deliver();
      delivered = true;
    } else {
      // Dropped by the executor before it ran: completes as cancelled.
      future.cancel({});
    }
  }
  // A cancelled future, or a closing loop: the result is dropped here and now.
  if (!delivered) discard_outcome();
  loop.unlink_work(*this);  // drops the in-flight reference to the future
  release_owner();
}

void WorkItemBase::cancel_work() noexcept {
  std::uint8_t expected = queued;
  const bool claimed = phase_.compare_exchange_strong(expected, dropped, std::memory_order_acq_rel);
  if (claimed && uv_queued_ && in_flight_) {
    // Still in libuv's queue: take it out so it does not hold a worker slot.
    // If a worker picked it up meanwhile, uv_cancel fails and the worker skips it.
    uv_cancel(reinterpret_cast<uv_req_t*>(&uv_req_));
  }
  request_stop();
}

void WorkItemBase::abandon() noexcept {
  FutureCore& future = future_core();
  if (future.done()) {
    cancel_work();
  } else {
    future.cancel("the event loop was closed");  // calls cancel_work() through on_cancelled()
  }
}

void WorkItemBase::release_owner() noexcept {
  if (owners_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete_item();
}

void submit_work(LoopImpl& loop, Executor* executor, WorkItemBase& item) {
  if (executor == nullptr) {
    if (loop.executor_shutdown_called_) {
      item.release_owner();
      throw RuntimeError("Executor shutdown has been called");
    }
    try {
      executor = loop.default_executor().get();  // created on first use: may throw bad_alloc
    } catch (...) {
      item.release_owner();  // no executor will ever hold it: the executor side lets go here
      throw;
    }
  }
  item.executor_ = executor;
  item.via_default_ = loop.default_executor_.get() == executor;
  loop.link_work(item);
  try {
    executor->execute(Work(&item));
  } catch (...) {
    // Refused: the Work it was given completes it as cancelled later; it is
    // not in flight any more.
    loop.unlink_work(item);
    throw;
  }
}

void request_threadpool_size(unsigned size) {
  if (size == 0 || size > 1024) {
    throw ValueError("threadpool_size must be between 1 and 1024, got " + std::to_string(size));
  }
  std::lock_guard<std::mutex> lock(pool_size_mutex);
  const unsigned started = pool_size_at_start.load(std::memory_order_relaxed);
  if (started != 0) {
    if (started != size) {
      log_warn("threadpool_size " + std::to_string(size) + " requested too late: libuv's threadpool already " +
               "started with " + std::to_string(started) +
               " threads; its size is fixed at its first use (set UV_THREADPOOL_SIZE, or the option, before "
               "any work runs)");
    }
    return;
  }
  setenv("UV_THREADPOOL_SIZE", std::to_string(size).c_str(), 1);
}

void link_unexecuted_work(LoopImpl& loop, WorkItemBase& item) noexcept {
  item.executor_ = nullptr;
  item.via_default_ = false;
  loop.link_work(item);
}

}  // namespace detail

// --- Work ---------------------------------------------------------------------

Work& Work::operator=(Work&& other) noexcept {
  if (this != &other) {
    Work old(std::move(*this));
    item_ = std::exchange(other.item_, nullptr);
  }
  return *this;
}

Work::~Work() {
  if (item_ != nullptr) item_->post_completion();
}

void Work::operator()() noexcept {
  detail::WorkItemBase* item = std::exchange(item_, nullptr);
  if (item == nullptr) return;
  item->invoke_on_worker();
  item->post_completion();
}

Executor::~Executor() = default;

unsigned libuv_threadpool_size() noexcept {
  const unsigned started = detail::pool_size_at_start.load(std::memory_order_acquire);
  return started != 0 ? started : detail::pool_size_from_environment();
}

// --- UvWorkExecutor -----------------------------------------------------------

UvWorkExecutor::UvWorkExecutor(Loop& loop) : loop_(&loop.impl()), mailbox_(loop.impl().mailbox_) {
  mailbox_->add_ref();
}

UvWorkExecutor::~UvWorkExecutor() { mailbox_->release(); }

void UvWorkExecutor::execute(Work work) {
  detail::WorkItemBase* item = work.release();
  if (item == nullptr) return;
  // On every failure the item goes back into a Work, whose destructor
  // completes it as cancelled.
  if (shut_down_) {
    Work back(item);
    throw RuntimeError("cannot schedule new futures after shutdown");
  }
  if (mailbox_->closed()) {
    Work back(item);
    throw RuntimeError("Event loop is closed");
  }
  if (item->work_loop_ != loop_) {
    Work back(item);
    throw RuntimeError("UvWorkExecutor runs only work submitted by its own loop");
  }
  if (loop_->running_ && !loop_->on_loop_thread()) {
    Work back(item);
    throw RuntimeError("UvWorkExecutor::execute() called off its loop's thread");
  }
  detail::note_pool_start();
  item->uv_queued_ = true;
  const int rc = uv_queue_work(&loop_->uv_, &item->uv_req_, detail::on_uv_work, detail::on_uv_after_work);
  if (rc != 0) {
    item->uv_queued_ = false;
    Work back(item);
    throw UvError(rc, "uv_queue_work");
  }
}

std::size_t UvWorkExecutor::in_flight() const {
  if (mailbox_->closed()) return 0;
  return loop_->in_flight_for(this);
}

void UvWorkExecutor::shutdown(bool wait, bool cancel_futures) {
  shut_down_ = true;
  if (mailbox_->closed()) return;
  if (cancel_futures) loop_->cancel_work_for(this);
  if (wait) {
    const std::size_t pending = loop_->in_flight_for(this);
    if (pending > 0) {
      throw RuntimeError("UvWorkExecutor::shutdown(wait=true) would deadlock: " + std::to_string(pending) +
                         " work item(s) are in flight and their completions need this loop; await "
                         "Loop::shutdown_default_executor() instead");
    }
  }
}

}  // namespace uvaio
