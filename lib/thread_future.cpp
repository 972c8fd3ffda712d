// ThreadFuture's shared state and the waiters behind futures::wait and
// futures::as_completed (concurrent.futures' _base.py, in C++).
//
// Locking: each future has one mutex. A waiter (wait/as_completed) has its own,
// and is only ever locked from inside a future's critical section (future ->
// waiter), never the other way round, so there is no lock-order cycle. User
// code -- done callbacks -- never runs under either lock: completing a future
// moves its callback list out under the lock and runs it after unlocking, so a
// callback may use the future (or any other) freely. T's constructor is the one
// exception: set_result() builds the value in place under the future's lock.

#include "uvaio/thread_future.hpp"

#include <string>
#include <utility>

#include "log_internal.hpp"
#include "loop_impl.hpp"
#include "uvaio/futures.hpp"

namespace uvaio::detail {

namespace {

bool is_done(ThreadFutureStatus status) noexcept {
  return status == ThreadFutureStatus::finished || status == ThreadFutureStatus::cancelled;
}

// concurrent.futures' names for the states, as its messages show them.
const char* state_name(ThreadFutureStatus status) noexcept {
  switch (status) {
    case ThreadFutureStatus::pending:
      return "PENDING";
    case ThreadFutureStatus::running:
      return "RUNNING";
    case ThreadFutureStatus::finished:
      return "FINISHED";
    case ThreadFutureStatus::cancelled:
      return "CANCELLED";
  }
  return "UNKNOWN";
}

}  // namespace

// --- ThreadFutureCore -------------------------------------------------------------

ThreadFutureCore::~ThreadFutureCore() = default;

bool ThreadFutureCore::wait_locked(std::unique_lock<std::mutex>& lock,
                                   std::optional<Duration> timeout) const {
  // The predicate is checked under the mutex that every transition holds, so a
  // completion between the check and the sleep cannot be missed.
  const auto finished = [this] { return is_done(status_.load(std::memory_order_relaxed)); };
  if (!timeout) {
    done_.wait(lock, finished);
    return true;
  }
  return done_.wait_until(lock, deadline_after(*timeout), finished);
}

bool ThreadFutureCore::wait(std::optional<Duration> timeout) const {
  if (done()) return true;
  std::unique_lock<std::mutex> lock(mutex_);
  return wait_locked(lock, timeout);
}

std::exception_ptr ThreadFutureCore::outcome(std::optional<Duration> timeout) const {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!wait_locked(lock, timeout)) throw TimeoutError();
  if (status_.load(std::memory_order_relaxed) == ThreadFutureStatus::cancelled)
    throw CancelledError();
  return exception_;
}

bool ThreadFutureCore::set_running_or_notify_cancel() {
  std::lock_guard<std::mutex> lock(mutex_);
  switch (const ThreadFutureStatus status = status_.load(std::memory_order_relaxed)) {
    case ThreadFutureStatus::pending:
      status_.store(ThreadFutureStatus::running, std::memory_order_release);
      return true;
    case ThreadFutureStatus::cancelled:
      // Python notifies wait()/as_completed() waiters here (CANCELLED_AND_NOTIFIED);
      // cancel() already did.
      return false;
    default:
      throw InvalidStateError(std::string("ThreadFuture in unexpected state: ") +
                              state_name(status));
  }
}

void ThreadFutureCore::check_can_set() const {
  const ThreadFutureStatus status = status_.load(std::memory_order_relaxed);
  if (is_done(status)) {
    // Python: "{state}: {future!r}".
    throw InvalidStateError(std::string(state_name(status)) + ": ThreadFuture is already done");
  }
}

bool ThreadFutureCore::cancel(ThreadFutureCallbacks& to_run) {
  std::unique_lock<std::mutex> lock(mutex_);
  switch (status_.load(std::memory_order_relaxed)) {
    case ThreadFutureStatus::running:
    case ThreadFutureStatus::finished:
      return false;
    case ThreadFutureStatus::cancelled:
      return true;
    case ThreadFutureStatus::pending:
      break;
  }
  to_run = complete(lock, ThreadFutureStatus::cancelled);
  return true;
}

ThreadFutureCallbacks ThreadFutureCore::set_exception(std::exception_ptr error) {
  std::unique_lock<std::mutex> lock(mutex_);
  check_can_set();
  if (!error) throw ValueError("set_exception() needs an exception, got an empty exception_ptr");
  exception_ = std::move(error);
  return complete(lock, ThreadFutureStatus::finished);
}

std::unique_lock<std::mutex> ThreadFutureCore::lock_for_result() {
  std::unique_lock<std::mutex> lock(mutex_);
  check_can_set();
  return lock;
}

ThreadFutureCallbacks ThreadFutureCore::finish_with_result(
    std::unique_lock<std::mutex>& lock) noexcept {
  return complete(lock, ThreadFutureStatus::finished);
}

ThreadFutureCallbacks ThreadFutureCore::complete(std::unique_lock<std::mutex>& lock,
                                                 ThreadFutureStatus status) noexcept {
  // Release: a thread that sees the new status through done() also sees the
  // value stored before it.
  status_.store(status, std::memory_order_release);
  const bool failed = status == ThreadFutureStatus::finished && exception_ != nullptr;
  // Waiters are told under our lock: that is what lets wait()/as_completed()
  // uninstall themselves safely (remove_waiter takes the same lock).
  for (const WaiterLink& link : waiters_) link.waiter->future_done(link.index, failed);
  ThreadFutureCallbacks to_run = std::move(callbacks_);
  callbacks_.clear();
  lock.unlock();
  // After unlocking, so the woken threads do not block on the mutex at once.
  // The caller holds a handle, so the state outlives this call. Blocked threads
  // are released before any callback runs (concurrent.futures' order).
  done_.notify_all();
  return to_run;
}

std::unique_ptr<ThreadFutureCallbackBase> ThreadFutureCore::add_callback(
    std::unique_ptr<ThreadFutureCallbackBase> callback) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!is_done(status_.load(std::memory_order_relaxed))) {
      callbacks_.push_back(std::move(callback));
      return nullptr;
    }
  }
  return callback;
}

void ThreadFutureCore::add_waiter(ThreadFutureWaiter& waiter, std::size_t index) {
  std::lock_guard<std::mutex> lock(mutex_);
  const ThreadFutureStatus status = status_.load(std::memory_order_relaxed);
  if (is_done(status)) {
    waiter.future_done(index, status == ThreadFutureStatus::finished && exception_ != nullptr);
    return;
  }
  waiters_.push_back(WaiterLink{&waiter, index});
}

void ThreadFutureCore::remove_waiter(const ThreadFutureWaiter& waiter) noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  std::erase_if(waiters_, [&](const WaiterLink& link) { return link.waiter == &waiter; });
}

void report_thread_future_callback_error(const std::exception_ptr& error) noexcept {
  try {
    log_error("exception calling callback for ThreadFuture: " + describe_exception(error));
  } catch (...) {
    // Out of memory while describing it: nothing better to do.
  }
}

// --- futures::wait ------------------------------------------------------------------

namespace {

// Python's _FirstCompletedWaiter and _AllCompletedWaiter(stop_on_exception) in one.
class WaitCondition final : public ThreadFutureWaiter {
 public:
  WaitCondition(std::size_t count, futures::ReturnWhen when) : remaining_(count), when_(when) {}

  void future_done(std::size_t /*index*/, bool failed) noexcept override {
    std::lock_guard<std::mutex> lock(mutex_);
    --remaining_;
    if (remaining_ == 0 || when_ == futures::ReturnWhen::first_completed ||
        (when_ == futures::ReturnWhen::first_exception && failed)) {
      satisfied_ = true;
      changed_.notify_all();
    }
  }

  bool satisfied() {
    std::lock_guard<std::mutex> lock(mutex_);
    return satisfied_;
  }

  void wait(std::optional<TimePoint> deadline) {
    std::unique_lock<std::mutex> lock(mutex_);
    const auto holds = [this] { return satisfied_; };
    if (deadline) {
      changed_.wait_until(lock, *deadline, holds);
    } else {
      changed_.wait(lock, holds);
    }
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::size_t remaining_;
  futures::ReturnWhen when_;
  bool satisfied_ = false;
};

// Takes a waiter off the first `installed` futures, also when installing threw.
class Uninstall {
 public:
  Uninstall(const std::vector<ThreadFutureCore*>& futures, const ThreadFutureWaiter& waiter)
      : futures_(futures), waiter_(waiter) {}
  Uninstall(const Uninstall&) = delete;
  Uninstall& operator=(const Uninstall&) = delete;
  ~Uninstall() {
    for (std::size_t i = 0; i < installed; ++i) futures_[i]->remove_waiter(waiter_);
  }
  std::size_t installed = 0;

 private:
  const std::vector<ThreadFutureCore*>& futures_;
  const ThreadFutureWaiter& waiter_;
};

}  // namespace

void wait_for_thread_futures(const std::vector<ThreadFutureCore*>& futures,
                             std::optional<Duration> timeout, futures::ReturnWhen when) {
  if (futures.empty()) return;
  std::optional<TimePoint> deadline;
  if (timeout) deadline = deadline_after(*timeout);
  WaitCondition condition(futures.size(), when);
  // Python takes every future's lock at once (_AcquireFutures) to look at them
  // and install its waiter atomically. One at a time is enough: each future's
  // check-and-install is atomic under its own lock, so a future is either seen
  // done here or tells the waiter later. Stops early once the condition holds.
  Uninstall uninstall(futures, condition);
  while (uninstall.installed < futures.size() && !condition.satisfied()) {
    futures[uninstall.installed]->add_waiter(condition, uninstall.installed);
    ++uninstall.installed;
  }
  condition.wait(deadline);
}

// --- futures::as_completed ---------------------------------------------------------

AsCompletedQueue::AsCompletedQueue(std::vector<ThreadFutureCore*> futures,
                                   std::optional<Duration> timeout)
    : futures_(std::move(futures)) {
  if (timeout) deadline_ = deadline_after(*timeout);
  finished_.reserve(futures_.size());
  std::size_t installed = 0;
  try {
    for (; installed < futures_.size(); ++installed)
      futures_[installed]->add_waiter(*this, installed);
  } catch (...) {
    for (std::size_t i = 0; i < installed; ++i) futures_[i]->remove_waiter(*this);
    throw;
  }
}

AsCompletedQueue::~AsCompletedQueue() {
  // Once off every future (under each one's lock), no future_done() can be
  // running or come later.
  for (ThreadFutureCore* future : futures_) future->remove_waiter(*this);
}

void AsCompletedQueue::future_done(std::size_t index, bool /*failed*/) noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  finished_.push_back(index);  // within the reserved capacity: no allocation
  changed_.notify_all();
}

std::size_t AsCompletedQueue::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (handed_out_ == futures_.size()) return none;
  const auto available = [this] { return handed_out_ < finished_.size(); };
  if (!deadline_) {
    changed_.wait(lock, available);
  } else if (!changed_.wait_until(lock, *deadline_, available)) {
    throw TimeoutError(std::to_string(futures_.size() - handed_out_) + " (of " +
                       std::to_string(futures_.size()) + ") futures unfinished");
  }
  return finished_[handed_out_++];
}

}  // namespace uvaio::detail
