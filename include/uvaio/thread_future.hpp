#pragma once

// concurrent.futures.Future for C++: a result slot shared between threads, with
// no event loop involved. The free functions over several of them (wait,
// as_completed) are in <uvaio/futures.hpp>.

#include <atomic>
#include <concepts>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "uvaio/detail/core.hpp"
#include "uvaio/errors.hpp"
#include "uvaio/export.hpp"

namespace uvaio {

template <class T>
class ThreadFuture;

namespace detail {

// concurrent.futures' states. Python also has CANCELLED_AND_NOTIFIED, for a
// future whose waiters only learn of the cancellation when the executor picks
// it up; here cancel() tells them at once, so one cancelled state is enough.
enum class ThreadFutureStatus : std::uint8_t { pending, running, finished, cancelled };

// What futures::wait and futures::as_completed install on each future they
// watch (Python's _Waiter). The future calls future_done() once, with its own
// mutex held, when it finishes or is cancelled -- or at once from add_waiter()
// if it is already done. The waiter must be removed from every future it was
// added to before it is destroyed.
class ThreadFutureWaiter {
 public:
  // `index` is the one given to add_waiter(); `failed` is true for a future
  // that finished with an exception (not for a cancelled one).
  virtual void future_done(std::size_t index, bool failed) noexcept = 0;

 protected:
  ThreadFutureWaiter() = default;
  ThreadFutureWaiter(const ThreadFutureWaiter&) = delete;
  ThreadFutureWaiter& operator=(const ThreadFutureWaiter&) = delete;
  ~ThreadFutureWaiter() = default;
};

// A done callback, type-erased; ThreadFutureCallback<T> knows how to call it.
class ThreadFutureCallbackBase {
 public:
  ThreadFutureCallbackBase() = default;
  ThreadFutureCallbackBase(const ThreadFutureCallbackBase&) = delete;
  ThreadFutureCallbackBase& operator=(const ThreadFutureCallbackBase&) = delete;
  virtual ~ThreadFutureCallbackBase() = default;
};
using ThreadFutureCallbacks = std::vector<std::unique_ptr<ThreadFutureCallbackBase>>;

template <class T>
class ThreadFutureCallback : public ThreadFutureCallbackBase {
 public:
  virtual void call(const ThreadFuture<T>& future) = 0;
};

template <class T, class F>
class ThreadFutureCallbackFor final : public ThreadFutureCallback<T> {
 public:
  template <class G>
  ThreadFutureCallbackFor(std::in_place_t /*tag*/, G&& fn) : fn_(std::forward<G>(fn)) {}
  void call(const ThreadFuture<T>& future) override { std::invoke(fn_, future); }

 private:
  F fn_;
};

// The state behind ThreadFuture<T>, minus the value: one mutex guards every
// transition, the callback list and the waiter list; one condition variable
// wakes the threads blocked in wait()/result()/exception(). Implemented in
// lib/thread_future.cpp.
class UVAIO_API ThreadFutureCore {
 public:
  ThreadFutureCore() = default;
  ThreadFutureCore(const ThreadFutureCore&) = delete;
  ThreadFutureCore& operator=(const ThreadFutureCore&) = delete;
  ~ThreadFutureCore();

  ThreadFutureStatus status() const noexcept { return status_.load(std::memory_order_acquire); }
  bool done() const noexcept {
    const ThreadFutureStatus s = status();
    return s == ThreadFutureStatus::finished || s == ThreadFutureStatus::cancelled;
  }

  // True once done; false if `timeout` passed first (nullopt: no limit).
  bool wait(std::optional<Duration> timeout) const;
  // Waits like wait(), then: TimeoutError if still not done, CancelledError if
  // cancelled, else the stored exception (null for a result).
  std::exception_ptr outcome(std::optional<Duration> timeout) const;

  // PENDING -> RUNNING (true); CANCELLED: false; otherwise InvalidStateError.
  bool set_running_or_notify_cancel();
  // concurrent.futures' cancel(); the callbacks to run (outside the lock) are
  // moved to `to_run`.
  bool cancel(ThreadFutureCallbacks& to_run);
  // Throws InvalidStateError if done, ValueError for a null `error`. Returns
  // the callbacks to run.
  ThreadFutureCallbacks set_exception(std::exception_ptr error);

  // Stores the callback while the future is not done (returns null); if it is
  // done, hands it back for the caller to run at once.
  std::unique_ptr<ThreadFutureCallbackBase> add_callback(
      std::unique_ptr<ThreadFutureCallbackBase> callback);

  void add_waiter(ThreadFutureWaiter& waiter, std::size_t index);
  void remove_waiter(const ThreadFutureWaiter& waiter) noexcept;

 protected:
  // Locks the state for storing a result; throws InvalidStateError (and
  // unlocks) if the future is already finished or cancelled.
  std::unique_lock<std::mutex> lock_for_result();
  // With the lock from lock_for_result() and the value stored: FINISHED,
  // waiters told, lock released, blocked threads woken. Returns the callbacks.
  ThreadFutureCallbacks finish_with_result(std::unique_lock<std::mutex>& lock) noexcept;

 private:
  struct WaiterLink {
    ThreadFutureWaiter* waiter;
    std::size_t index;
  };

  void check_can_set() const;
  bool wait_locked(std::unique_lock<std::mutex>& lock, std::optional<Duration> timeout) const;
  ThreadFutureCallbacks complete(std::unique_lock<std::mutex>& lock,
                                 ThreadFutureStatus status) noexcept;

  mutable std::mutex mutex_;
  mutable std::condition_variable done_;
  // Written under mutex_; read without it by done()/status() (acquire pairs
  // with the release store made after the value was stored).
  std::atomic<ThreadFutureStatus> status_{ThreadFutureStatus::pending};
  std::exception_ptr exception_;
  ThreadFutureCallbacks callbacks_;
  std::vector<WaiterLink> waiters_;
};

template <class T>
class ThreadFutureState final : public ThreadFutureCore {
 public:
  // Returns the callbacks to run (outside the lock).
  template <class... U>
  ThreadFutureCallbacks set_result(U&&... value) {
    // The value is constructed in place with the lock held, so that a
    // concurrent second set_result() cannot slip in between the check and the
    // store (and T need not be movable). If T's constructor throws, the future
    // stays as it was.
    std::unique_lock<std::mutex> lock = lock_for_result();
    value_.emplace(std::forward<U>(value)...);
    return finish_with_result(lock);
  }

  ValueSlot<T> value_;
};

// Logs "exception calling callback for ThreadFuture: ..." through uvaio's logger.
UVAIO_API void report_thread_future_callback_error(const std::exception_ptr& error) noexcept;

}  // namespace detail

// concurrent.futures.Future: a result slot filled on one thread and read on
// others; no loop involved, every member is thread-safe. Copies share one state
// (one allocation, freed with the last handle; each done callback adds a node).
// PENDING -> RUNNING -> FINISHED, or PENDING -> CANCELLED; setting twice throws
// InvalidStateError. result()/exception()/wait() block the caller (TimeoutError
// past a timeout). Done callbacks run on the thread that completes or cancels
// it, in order (at once on the adder if already done); one that throws is
// logged. A moved-from handle is empty: using it throws RuntimeError.
template <class T = void>
class ThreadFuture {
  static_assert(std::is_void_v<T> || (std::is_object_v<T> && !std::is_array_v<T>),
                "ThreadFuture<T> holds void or an object type");

 public:
  using value_type = T;
  // `const T&` (void for T = void): what result() returns.
  using result_reference =
      std::conditional_t<std::is_void_v<T>, void, std::add_lvalue_reference_t<const T>>;

  // A new pending future (a producer may create one without an executor).
  ThreadFuture() : state_(std::make_shared<detail::ThreadFutureState<T>>()) {}

  bool done() const { return core().done(); }
  bool cancelled() const { return core().status() == detail::ThreadFutureStatus::cancelled; }
  bool running() const { return core().status() == detail::ThreadFutureStatus::running; }

  // PENDING -> CANCELLED (waiters wake, callbacks run on this thread): true;
  // true also if already cancelled; false when running or finished.
  bool cancel() const {
    detail::ThreadFutureCallbacks to_run;
    const bool cancelled = core().cancel(to_run);
    run_callbacks(to_run);
    return cancelled;
  }

  // Blocks until done or `timeout` passed; true once done.
  bool wait(std::optional<Duration> timeout = std::nullopt) const { return core().wait(timeout); }

  // Blocks until done, then returns a reference to the value (valid while any
  // handle lives; it never changes once set) or rethrows the stored exception.
  // CancelledError if cancelled, TimeoutError if `timeout` passed first.
  result_reference result(std::optional<Duration> timeout = std::nullopt) const {
    if (std::exception_ptr error = core().outcome(timeout)) std::rethrow_exception(error);
    if constexpr (std::is_void_v<T>) {
      return;
    } else {
      return state_->value_.get();
    }
  }

  // As result(), but moves the value out (for move-only T). For one consumer:
  // whoever reads the value afterwards sees what the move left behind.
  T take_result(std::optional<Duration> timeout = std::nullopt) const {
    if (std::exception_ptr error = core().outcome(timeout)) std::rethrow_exception(error);
    if constexpr (std::is_void_v<T>) {
      return;
    } else {
      return T(std::move(state_->value_.get()));
    }
  }

  // Blocks like result(); null when the future finished with a value.
  std::exception_ptr exception(std::optional<Duration> timeout = std::nullopt) const {
    return core().outcome(timeout);
  }

  // fn(const ThreadFuture<T>&) runs on the thread that completes or cancels the
  // future, after blocked threads were released, in registration order; at once
  // on this thread if the future is already done. An exception from fn (any
  // type) is logged and does not stop the other callbacks.
  template <class F>
  requires std::invocable < std::decay_t<F>
  &, const ThreadFuture<T>& > void add_done_callback(F&& fn) const {
    auto callback = std::make_unique<detail::ThreadFutureCallbackFor<T, std::decay_t<F>>>(
        std::in_place, std::forward<F>(fn));
    if (auto now = core().add_callback(std::move(callback))) {
      const ThreadFuture self = *this;  // see run_callbacks()
      self.run_callback(*now);
    }
  }

  // --- producer side (executors use these) ------------------------------------

  // PENDING -> RUNNING and true; false if cancelled (the work must not run);
  // InvalidStateError if already running or finished.
  bool set_running_or_notify_cancel() const { return core().set_running_or_notify_cancel(); }

  // From PENDING or RUNNING; InvalidStateError if finished or cancelled.
  template <class... U>
  requires(std::is_void_v<T>
               ? sizeof...(U) == 0
               : std::is_constructible_v<T, U&&...>) void set_result(U&&... value) const {
    auto to_run = checked_state().set_result(std::forward<U>(value)...);
    run_callbacks(to_run);
  }

  // Like set_result; ValueError for a null exception_ptr.
  void set_exception(std::exception_ptr error) const {
    auto to_run = core().set_exception(std::move(error));
    run_callbacks(to_run);
  }
  template <class E>
  requires(!std::is_same_v<std::decay_t<E>, std::exception_ptr>) void set_exception(
      E&& error) const {
    set_exception(std::make_exception_ptr(std::forward<E>(error)));
  }

  // Two handles are equal when they share one state (std::hash agrees, so a
  // ThreadFuture can key an unordered_map, as Python code keys dicts by future).
  friend bool operator==(const ThreadFuture& a, const ThreadFuture& b) noexcept {
    return a.state_ == b.state_;
  }

  // For the free functions of <uvaio/futures.hpp>.
  detail::ThreadFutureCore& core() const { return checked_state(); }

 private:
  detail::ThreadFutureState<T>& checked_state() const {
    if (!state_) detail::throw_empty_handle("ThreadFuture");
    return *state_;
  }

  void run_callback(detail::ThreadFutureCallbackBase& callback) const noexcept {
    try {
      static_cast<detail::ThreadFutureCallback<T>&>(callback).call(*this);
    } catch (...) {
      detail::report_thread_future_callback_error(std::current_exception());
    }
  }
  void run_callbacks(detail::ThreadFutureCallbacks& callbacks) const noexcept {
    if (callbacks.empty()) return;
    // The callbacks get a handle of their own: one of them may reassign the
    // handle this was called on (the producer's), which must not free the state
    // under the others.
    const ThreadFuture self = *this;
    for (auto& callback : callbacks) self.run_callback(*callback);
  }

  friend struct std::hash<ThreadFuture>;

  std::shared_ptr<detail::ThreadFutureState<T>> state_;
};

}  // namespace uvaio

template <class T>
struct std::hash<uvaio::ThreadFuture<T>> {
  std::size_t operator()(const uvaio::ThreadFuture<T>& f) const noexcept {
    return std::hash<const void*>()(f.state_.get());
  }
};
