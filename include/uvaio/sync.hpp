#pragma once

// asyncio's synchronisation primitives for the tasks of one loop: Event, Lock,
// Semaphore, BoundedSemaphore and Condition. Like asyncio's, they are not
// thread-safe: use them from the loop's thread (across threads, use
// call_soon_threadsafe or a Future).

#include <concepts>
#include <coroutine>
#include <cstddef>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>

#include "uvaio/async.hpp"
#include "uvaio/detail/core.hpp"
#include "uvaio/detail/waiters.hpp"
#include "uvaio/errors.hpp"
#include "uvaio/export.hpp"

namespace uvaio {

class Event;
class Lock;
class LockGuard;
class Semaphore;
class SemaphoreGuard;
class Condition;

namespace detail {

// The awaiters. Each lives in the awaiting coroutine's frame and is the node in
// the primitive's wait list, so waiting allocates nothing. They are created by
// the primitives' member functions and meant to be awaited at once.

class UVAIO_API EventWait final : public Waiter {
 public:
  explicit EventWait(Event& event) noexcept : event_(&event) {}
  ~EventWait() override;
  bool await_ready() const noexcept;
  bool await_suspend(std::coroutine_handle<> h);
  void await_resume();

 private:
  Event* event_;
};

class UVAIO_API LockAcquire : public Waiter {
 public:
  explicit LockAcquire(Lock& lock) noexcept : lock_(&lock) {}
  ~LockAcquire() override;
  bool await_ready() noexcept;
  bool await_suspend(std::coroutine_handle<> h);
  void await_resume();

 protected:
  void pass_on() noexcept override;
  Lock* lock_;
};

class UVAIO_API LockScopedAcquire final : public LockAcquire {
 public:
  using LockAcquire::LockAcquire;
  LockGuard await_resume();
};

class UVAIO_API SemaphoreAcquire : public Waiter {
 public:
  explicit SemaphoreAcquire(Semaphore& semaphore) noexcept : semaphore_(&semaphore) {}
  ~SemaphoreAcquire() override;
  bool await_ready() noexcept;
  bool await_suspend(std::coroutine_handle<> h);
  void await_resume();

 protected:
  void pass_on() noexcept override;
  Semaphore* semaphore_;
};

class UVAIO_API SemaphoreScopedAcquire final : public SemaphoreAcquire {
 public:
  using SemaphoreAcquire::SemaphoreAcquire;
  SemaphoreGuard await_resume();
};

// Condition::wait(). It waits in two places without resuming its task in
// between: first in the condition's list; once notified (or cancelled), in
// the lock's list, so that the task resumes only when it holds the lock again.
class UVAIO_API ConditionWait final : public Waiter {
 public:
  explicit ConditionWait(Condition& condition) noexcept;
  ~ConditionWait() override;
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h);
  void await_resume();

  bool cancel(std::string message) override;
  void forget(const void* primitive) noexcept override;

 private:
  friend class uvaio::Condition;
  void queue_for_lock() noexcept;
  void pass_notify_on() noexcept;

  Condition* condition_;  // null once the condition is gone (a shared lock may outlive it)
  Lock* lock_;
  bool notified_ = false;
  bool cancelled_ = false;
};

}  // namespace detail

// Owns a held Lock and releases it when destroyed: `co_await lock.scoped()`.
// Move-only; loop thread only. release() gives the lock up early, with
// asyncio's meaning of the word (std::unique_lock's release() would not
// unlock). The Lock must outlive the guard.
class UVAIO_API LockGuard {
 public:
  LockGuard() noexcept = default;
  LockGuard(Lock& lock, std::adopt_lock_t) noexcept : lock_(&lock) {}
  LockGuard(LockGuard&& other) noexcept : lock_(std::exchange(other.lock_, nullptr)) {}
  LockGuard& operator=(LockGuard&& other) noexcept {
    if (this != &other) {
      reset();
      lock_ = std::exchange(other.lock_, nullptr);
    }
    return *this;
  }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;
  ~LockGuard() { reset(); }

  bool owns_lock() const noexcept { return lock_ != nullptr; }
  explicit operator bool() const noexcept { return owns_lock(); }
  // Releases the lock now; RuntimeError if the guard owns none.
  void release();

 private:
  void reset() noexcept;
  Lock* lock_ = nullptr;
};

// Owns one acquired unit of a Semaphore and releases it when destroyed:
// `co_await semaphore.scoped()`. Same rules as LockGuard.
class UVAIO_API SemaphoreGuard {
 public:
  SemaphoreGuard() noexcept = default;
  SemaphoreGuard(Semaphore& semaphore, std::adopt_lock_t) noexcept : semaphore_(&semaphore) {}
  SemaphoreGuard(SemaphoreGuard&& other) noexcept
      : semaphore_(std::exchange(other.semaphore_, nullptr)) {}
  SemaphoreGuard& operator=(SemaphoreGuard&& other) noexcept {
    if (this != &other) {
      reset();
      semaphore_ = std::exchange(other.semaphore_, nullptr);
    }
    return *this;
  }
  SemaphoreGuard(const SemaphoreGuard&) = delete;
  SemaphoreGuard& operator=(const SemaphoreGuard&) = delete;
  ~SemaphoreGuard() { reset(); }

  bool owns_lock() const noexcept { return semaphore_ != nullptr; }
  explicit operator bool() const noexcept { return owns_lock(); }
  // Releases the unit now; RuntimeError if the guard owns none.
  void release();

 private:
  void reset() noexcept;
  Semaphore* semaphore_ = nullptr;
};

// asyncio.Event: a flag that tasks wait for. set() wakes every waiting task (they
// resume on the loop thread, in the order they started waiting); wait() on a
// set event returns at once without suspending. Loop thread only; the event
// binds for good to the loop of the first task that waits on it (RuntimeError
// from a task of another loop, or outside a task). Waiting allocates nothing.
// Destroying an event that tasks wait on wakes them with RuntimeError.
class UVAIO_API Event {
 public:
  Event() noexcept = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event() = default;

  bool is_set() const noexcept { return set_; }
  void set() noexcept;
  void clear() noexcept { set_ = false; }
  [[nodiscard]] detail::EventWait wait() noexcept { return detail::EventWait(*this); }

 private:
  friend class detail::EventWait;
  detail::WaitList waiters_;
  detail::LoopBinding binding_;
  bool set_ = false;
};

// asyncio.Lock: a non-reentrant lock for the tasks of one loop, owned by no
// task in particular. Fair: waiters get it in the order they asked and a new
// acquire() queues behind them; release() hands it straight to the first
// waiter (locked() stays true), and a waiter cancelled before it resumed hands
// it on. release() when unlocked: RuntimeError("Lock is not acquired.").
// Loop thread only; binds to a loop like Event. Waiting allocates nothing.
// Destroying it wakes its waiters with RuntimeError; guards must not outlive it.
class UVAIO_API Lock {
 public:
  Lock() noexcept = default;
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;
  ~Lock() = default;

  bool locked() const noexcept { return locked_; }
  // `co_await lock.acquire();` ... `lock.release();`
  [[nodiscard]] detail::LockAcquire acquire() noexcept { return detail::LockAcquire(*this); }
  // `LockGuard guard = co_await lock.scoped();` releases when the guard goes.
  [[nodiscard]] detail::LockScopedAcquire scoped() noexcept {
    return detail::LockScopedAcquire(*this);
  }
  void release();

 private:
  friend class detail::LockAcquire;
  friend class detail::ConditionWait;
  friend class LockGuard;
  friend class Condition;
  bool try_acquire() noexcept {
    if (locked_ || waiters_.has_waiters()) return false;
    locked_ = true;
    return true;
  }
  void hand_on() noexcept;

  detail::WaitList waiters_;
  detail::LoopBinding binding_;
  bool locked_ = false;
};

// asyncio.Semaphore: a counter that acquire() decrements, waiting while it is
// 0, and release() increments. ValueError("Semaphore initial value must be
// >= 0") for a negative value. Same fairness, hand-off, cancellation and
// threading rules as Lock; locked() is true when an acquire() would wait.
// Waiting allocates nothing.
class UVAIO_API Semaphore {
 public:
  explicit Semaphore(int value = 1);
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;
  ~Semaphore() = default;

  bool locked() const noexcept { return value_ == 0 || waiters_.has_waiters(); }
  [[nodiscard]] detail::SemaphoreAcquire acquire() noexcept {
    return detail::SemaphoreAcquire(*this);
  }
  [[nodiscard]] detail::SemaphoreScopedAcquire scoped() noexcept {
    return detail::SemaphoreScopedAcquire(*this);
  }
  // BoundedSemaphore: ValueError("BoundedSemaphore released too many times")
  // past the initial value.
  void release();

 protected:
  Semaphore(int value, bool bounded);

 private:
  friend class detail::SemaphoreAcquire;
  friend class SemaphoreGuard;
  bool try_acquire() noexcept {
    if (value_ == 0 || waiters_.has_waiters()) return false;
    --value_;
    return true;
  }
  void hand_on() noexcept;

  detail::WaitList waiters_;
  detail::LoopBinding binding_;
  int value_;
  int bound_;  // -1: unbounded
};

// asyncio.BoundedSemaphore: a Semaphore whose release() refuses to go past the
// initial value (ValueError). Same rules otherwise.
class UVAIO_API BoundedSemaphore final : public Semaphore {
 public:
  explicit BoundedSemaphore(int value = 1) : Semaphore(value, true) {}
};

// asyncio.Condition: tasks wait() for a notify() while holding its lock (its
// own Lock, or one passed by reference, which must outlive the condition).
// wait() releases the lock, waits for a notification, and returns holding the
// lock again -- also when it throws CancelledError, as in asyncio. notify(n)
// wakes the n longest waiters (FIFO); they then queue for the lock. A waiter
// cancelled after being notified passes the notification on. wait(),
// notify() and notify_all() without the lock held throw RuntimeError. Loop
// thread only; binds to a loop like Event. wait() allocates nothing;
// wait_for() is a coroutine (one frame per call).
class UVAIO_API Condition {
 public:
  Condition() noexcept : lock_(&own_lock_) {}
  explicit Condition(Lock& lock) noexcept : lock_(&lock) {}
  Condition(const Condition&) = delete;
  Condition& operator=(const Condition&) = delete;
  ~Condition();

  bool locked() const noexcept { return lock_->locked(); }
  [[nodiscard]] detail::LockAcquire acquire() noexcept { return lock_->acquire(); }
  [[nodiscard]] detail::LockScopedAcquire scoped() noexcept { return lock_->scoped(); }
  void release() { lock_->release(); }
  Lock& lock() const noexcept { return *lock_; }

  [[nodiscard]] detail::ConditionWait wait() noexcept { return detail::ConditionWait(*this); }

  // Waits until predicate() is true (it is called with the lock held, first
  // before any wait) and returns its last value. With g++ 12, name a predicate
  // that owns something before the co_await (see README, the g++ 12 note).
  template <class Predicate>
  requires std::invocable<Predicate&> Async<std::decay_t<std::invoke_result_t<Predicate&>>>
  wait_for(Predicate predicate) {
    auto result = predicate();
    while (!result) {
      co_await wait();
      result = predicate();
    }
    co_return result;
  }

  void notify(std::size_t n = 1);
  void notify_all();

 private:
  friend class detail::ConditionWait;
  void wake_waiters(std::size_t n) noexcept;

  Lock own_lock_;
  Lock* lock_;
  detail::WaitList waiters_;
  detail::LoopBinding binding_;
};

// --- the awaiters' fast paths ----------------------------------------------------

namespace detail {

inline bool EventWait::await_ready() const noexcept {
  return event_->is_set();
}
inline bool LockAcquire::await_ready() noexcept {
  return lock_->try_acquire();
}
inline bool SemaphoreAcquire::await_ready() noexcept {
  return semaphore_->try_acquire();
}

}  // namespace detail

}  // namespace uvaio
