// Loop-thread synchronisation primitives (see <uvaio/sync.hpp>) and the wait
// lists they share with Queue (<uvaio/detail/waiters.hpp>).
//
// The model is asyncio's (Lib/asyncio/locks.py), with one change that makes the
// bookkeeping local: a wake-up that grants something -- the lock, a semaphore
// unit, a queue item or slot -- is handed to the woken waiter at once, and the
// primitive holds that waiter in its list until its task resumes. asyncio gets
// the same effect by leaving the woken future in its deque until the task
// runs; where asyncio's except-clauses then give the grant back
// (_wake_up_first, "_value += 1"), our waiter does it from cancel() or from its
// destructor (pass_on), so nothing depends on the cancelled task running again.

#include "uvaio/sync.hpp"

#include <climits>
#include <string>
#include <utility>

#include "loop_impl.hpp"
#include "mailbox.hpp"

namespace uvaio {

namespace detail {

// --- Waiter ---------------------------------------------------------------------

Waiter::~Waiter() {
  // Derived destructors call leave(); this keeps the list consistent if a
  // future awaiter forgets to (it cannot pass anything on from here).
  if (list_ != nullptr) list_->unlink(*this);
}

bool Waiter::cancel(std::string message) {
  switch (state_) {
    case State::waiting:
      list_->unlink(*this);
      state_ = State::cancelled;
      message_ = std::move(message);
      task_->wake();
      return true;
    case State::woken:
      // Woken but not yet resumed: what it was woken with goes to the next
      // waiter now, not when (if ever) the task runs.
      if (list_ != nullptr) {
        list_->unlink(*this);
        pass_on();
      }
      state_ = State::cancelled;
      message_ = std::move(message);
      return true;  // the task is on the ready queue already
    case State::cancelled:
      // Several cancel() before the task resumes raise one CancelledError, with
      // the first message, as asyncio's Task does.
      return true;
    case State::idle:
    case State::orphaned:
      break;
  }
  return false;
}

bool Waiter::suspend_in(WaitList& list, LoopBinding& binding, const char* primitive,
                        const char* operation, std::coroutine_handle<> h) {
  TaskCore& task = binding.task_for_wait(primitive, operation);
  task_ = &task;
  // A cancel() that arrived while the task ran cancels this wait at once
  // (asyncio bpo-34872), as SleepAwaiter does.
  if (task.take_pending_cancel(message_)) {
    state_ = State::cancelled;
    return false;
  }
  list.push(*this);
  task.suspend_on(this, h);
  return true;
}

Waiter::Wake Waiter::finish_wait(const char* primitive) {
  switch (state_) {
    case State::idle:
      return Wake::immediate;
    case State::cancelled:
      state_ = State::idle;
      throw CancelledError(std::move(message_));
    case State::orphaned:
      state_ = State::idle;
      throw RuntimeError(std::string(primitive) + " was destroyed while a task waited on it");
    case State::waiting:
      // Only a wake-up through the list resumes a waiter; anything else is a bug.
      list_->unlink(*this);
      state_ = State::idle;
      throw RuntimeError(std::string(primitive) +
                         ": a waiting task was resumed without being woken");
    case State::woken:
      break;
  }
  const bool held = list_ != nullptr;
  if (held) list_->unlink(*this);
  state_ = State::idle;
  if (task_ != nullptr && task_->cancel_pending()) {
    if (held) pass_on();
    task_->throw_if_cancel_pending();
  }
  return held ? Wake::granted : Wake::plain;
}

void Waiter::leave() noexcept {
  if (list_ == nullptr) return;
  const bool held = state_ == State::woken;
  list_->unlink(*this);
  state_ = State::idle;
  if (held) pass_on();
}

// --- WaitList -------------------------------------------------------------------

void WaitList::Fifo::push_back(Waiter& w) noexcept {
  w.prev_ = last;
  w.next_ = nullptr;
  if (last != nullptr) {
    last->next_ = &w;
  } else {
    first = &w;
  }
  last = &w;
}

void WaitList::Fifo::remove(Waiter& w) noexcept {
  if (w.prev_ != nullptr) {
    w.prev_->next_ = w.next_;
  } else {
    first = w.next_;
  }
  if (w.next_ != nullptr) {
    w.next_->prev_ = w.prev_;
  } else {
    last = w.prev_;
  }
  w.prev_ = w.next_ = nullptr;
}

WaitList::~WaitList() {
  orphan(waiting_);
  orphan(held_);
}

void WaitList::orphan(Fifo& fifo) noexcept {
  while (Waiter* w = fifo.first) {
    fifo.remove(*w);
    w->list_ = nullptr;
    w->state_ = Waiter::State::orphaned;
    w->task_->wake();
  }
}

void WaitList::push(Waiter& w) noexcept {
  waiting_.push_back(w);
  w.list_ = this;
  w.state_ = Waiter::State::waiting;
}

Waiter* WaitList::pop_waiter() noexcept {
  Waiter* w = waiting_.first;
  if (w == nullptr) return nullptr;
  waiting_.remove(*w);
  w->list_ = nullptr;
  return w;
}

Waiter* WaitList::wake_first(bool hold) noexcept {
  Waiter* w = pop_waiter();
  if (w == nullptr) return nullptr;
  w->state_ = Waiter::State::woken;
  if (hold) {
    held_.push_back(*w);
    w->list_ = this;
  }
  w->task_->wake();
  return w;
}

void WaitList::wake_all() noexcept {
  while (wake_first(false) != nullptr) {
  }
}

void WaitList::grant(Waiter& w) noexcept {
  held_.push_back(w);
  w.list_ = this;
  w.state_ = Waiter::State::woken;
  w.task_->wake();
}

void WaitList::unlink(Waiter& w) noexcept {
  (w.state_ == Waiter::State::waiting ? waiting_ : held_).remove(w);
  w.list_ = nullptr;
}

// --- LoopBinding ----------------------------------------------------------------

LoopBinding::~LoopBinding() {
  if (mailbox_ != nullptr) mailbox_->release();
}

TaskCore& LoopBinding::task_for_wait(const char* primitive, const char* operation) {
  TaskCore* task = t_current_task;
  if (task == nullptr) {
    throw RuntimeError(std::string(primitive) + "." + operation +
                       "() must be awaited inside a task");
  }
  LoopImpl* loop = task->loop();
  if (mailbox_ == nullptr) {
    loop_ = loop;
    mailbox_ = loop->mailbox_;
    mailbox_->add_ref();
  } else if (mailbox_ != loop->mailbox_) {
    // asyncio's _LoopBoundMixin wording.
    throw RuntimeError(std::string(primitive) + " is bound to a different event loop");
  }
  return *task;
}

LoopImpl* LoopBinding::loop() const noexcept {
  // A closed loop may be gone already; its mailbox is still ours.
  return mailbox_ != nullptr && !mailbox_->closed() ? loop_ : nullptr;
}

// --- awaiters -------------------------------------------------------------------

EventWait::~EventWait() {
  leave();
}

bool EventWait::await_suspend(std::coroutine_handle<> h) {
  return suspend_in(event_->waiters_, event_->binding_, "Event", "wait", h);
}

void EventWait::await_resume() {
  (void)finish_wait("Event");
}

LockAcquire::~LockAcquire() {
  leave();
}

bool LockAcquire::await_suspend(std::coroutine_handle<> h) {
  return suspend_in(lock_->waiters_, lock_->binding_, "Lock", "acquire", h);
}

// Immediate or granted, the lock is ours on return.
void LockAcquire::await_resume() {
  (void)finish_wait("Lock");
}

void LockAcquire::pass_on() noexcept {
  lock_->hand_on();
}

LockGuard LockScopedAcquire::await_resume() {
  LockAcquire::await_resume();
  return LockGuard(*lock_, std::adopt_lock);
}

SemaphoreAcquire::~SemaphoreAcquire() {
  leave();
}

bool SemaphoreAcquire::await_suspend(std::coroutine_handle<> h) {
  return suspend_in(semaphore_->waiters_, semaphore_->binding_, "Semaphore", "acquire", h);
}

void SemaphoreAcquire::await_resume() {
  (void)finish_wait("Semaphore");
}

void SemaphoreAcquire::pass_on() noexcept {
  semaphore_->hand_on();
}

SemaphoreGuard SemaphoreScopedAcquire::await_resume() {
  SemaphoreAcquire::await_resume();
  return SemaphoreGuard(*semaphore_, std::adopt_lock);
}

// --- ConditionWait --------------------------------------------------------------
//
// States (Waiter::State plus two flags):
//   waiting in condition_->waiters_   not notified yet
//   waiting in lock_->waiters_        notified (or cancelled): queued for the lock
//   woken, held by lock_->waiters_    the lock was handed to it
//   idle                              before suspending, or the lock was taken at
//                                     once in await_suspend (cancel pending)
//   orphaned                          the condition or the lock was destroyed

ConditionWait::ConditionWait(Condition& condition) noexcept
    : condition_(&condition), lock_(condition.lock_) {}

ConditionWait::~ConditionWait() {
  if (list() == nullptr) return;
  const bool held = state_ == State::woken;
  const bool queued_for_lock = list() == &lock_->waiters_;
  list()->unlink(*this);
  state_ = State::idle;
  if (held) lock_->hand_on();
  if (queued_for_lock) pass_notify_on();
}

bool ConditionWait::await_suspend(std::coroutine_handle<> h) {
  if (!lock_->locked()) throw RuntimeError("cannot wait on un-acquired lock");
  TaskCore& task = condition_->binding_.task_for_wait("Condition", "wait");
  (void)lock_->binding_.task_for_wait("Lock", "acquire");
  task_ = &task;
  lock_->hand_on();
  if (task.take_pending_cancel(message_)) {
    // asyncio: the wait is cancelled at once, and wait() re-acquires the lock
    // before it raises.
    cancelled_ = true;
    if (lock_->try_acquire()) return false;
    lock_->waiters_.push(*this);
  } else {
    condition_->waiters_.push(*this);
  }
  task.suspend_on(this, h);
  return true;
}

void ConditionWait::await_resume() {
  switch (state_) {
    case State::orphaned:
      state_ = State::idle;
      throw RuntimeError("Condition (or its Lock) was destroyed while a task waited on it");
    case State::woken:
      lock_->waiters_.unlink(*this);  // the lock is ours now
      state_ = State::idle;
      break;
    case State::idle:
      break;
    case State::waiting:
    case State::cancelled:
      // Only the lock's hand-off resumes this waiter.
      if (list() != nullptr) list()->unlink(*this);
      state_ = State::idle;
      throw RuntimeError("Condition: a waiting task was resumed without being woken");
  }
  if (cancelled_) {
    cancelled_ = false;
    throw CancelledError(std::move(message_));
  }
  if (task_ != nullptr && task_->cancel_pending()) {
    pass_notify_on();
    task_->throw_if_cancel_pending();
  }
}

bool ConditionWait::cancel(std::string message) {
  if (state_ == State::waiting && condition_ != nullptr && list() == &condition_->waiters_) {
    // Not notified: leave the condition and queue for the lock; the task
    // resumes once it holds the lock, and raises.
    condition_->waiters_.unlink(*this);
    cancelled_ = true;
    message_ = std::move(message);
    queue_for_lock();
    return true;
  }
  if (state_ == State::waiting || state_ == State::woken) {
    if (!cancelled_) {
      cancelled_ = true;
      message_ = std::move(message);
      // It was notified but will raise instead of acting on it: another
      // waiter gets the notification (asyncio's _notify(1) on error; we do it
      // only when a notification was actually consumed, so no spurious wake).
      pass_notify_on();
    }
    return true;
  }
  return false;
}

void ConditionWait::forget(const void* primitive) noexcept {
  if (primitive == condition_) condition_ = nullptr;
}

void ConditionWait::queue_for_lock() noexcept {
  if (lock_->try_acquire()) {
    lock_->waiters_.grant(*this);
  } else {
    lock_->waiters_.push(*this);
  }
}

void ConditionWait::pass_notify_on() noexcept {
  if (!notified_) return;
  notified_ = false;
  if (condition_ != nullptr) condition_->wake_waiters(1);
}

}  // namespace detail

// --- guards ---------------------------------------------------------------------

void LockGuard::release() {
  if (lock_ == nullptr) throw RuntimeError("LockGuard does not own a lock");
  std::exchange(lock_, nullptr)->release();
}

void LockGuard::reset() noexcept {
  // A destructor must not throw: if the lock was released behind the guard's
  // back there is nothing left to release.
  Lock* lock = std::exchange(lock_, nullptr);
  if (lock != nullptr && lock->locked_) lock->hand_on();
}

void SemaphoreGuard::release() {
  if (semaphore_ == nullptr) throw RuntimeError("SemaphoreGuard does not own a semaphore unit");
  std::exchange(semaphore_, nullptr)->release();
}

void SemaphoreGuard::reset() noexcept {
  Semaphore* semaphore = std::exchange(semaphore_, nullptr);
  if (semaphore == nullptr) return;
  // The guard's unit cannot exceed a bound, unless released behind its back.
  if (semaphore->bound_ >= 0 && semaphore->value_ >= semaphore->bound_) return;
  semaphore->hand_on();
}

// --- Event ----------------------------------------------------------------------

void Event::set() noexcept {
  if (set_) return;
  set_ = true;
  waiters_.wake_all();
}

// --- Lock -----------------------------------------------------------------------

void Lock::release() {
  if (!locked_) throw RuntimeError("Lock is not acquired.");
  hand_on();
}

void Lock::hand_on() noexcept {
  // Straight to the first waiter: the lock stays locked, so nobody can slip in
  // between the release and the waiter's resumption (asyncio's FIFO rule).
  if (waiters_.wake_first(true) == nullptr) locked_ = false;
}

// --- Semaphore ------------------------------------------------------------------

Semaphore::Semaphore(int value) : Semaphore(value, false) {}

Semaphore::Semaphore(int value, bool bounded) : value_(value), bound_(bounded ? value : -1) {
  if (value < 0) throw ValueError("Semaphore initial value must be >= 0");
}

void Semaphore::release() {
  if (bound_ >= 0 && value_ >= bound_) throw ValueError("BoundedSemaphore released too many times");
  if (value_ == INT_MAX) throw ValueError("Semaphore value would overflow");
  hand_on();
}

void Semaphore::hand_on() noexcept {
  // As asyncio's _wake_up_next: the unit goes to the first waiter, not to the
  // counter (waiters only exist while the counter is 0).
  if (waiters_.wake_first(true) == nullptr) ++value_;
}

// --- Condition ------------------------------------------------------------------

Condition::~Condition() {
  // Waiters already queued for the lock stay there (they will get it, as a
  // plain acquire would); with a shared lock they may outlive us.
  lock_->waiters_.for_each([this](detail::Waiter& w) { w.forget(this); });
}

void Condition::notify(std::size_t n) {
  if (!lock_->locked()) throw RuntimeError("cannot notify on un-acquired lock");
  wake_waiters(n);
}

void Condition::notify_all() {
  if (!lock_->locked()) throw RuntimeError("cannot notify on un-acquired lock");
  wake_waiters(static_cast<std::size_t>(-1));
}

void Condition::wake_waiters(std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    detail::Waiter* w = waiters_.pop_waiter();
    if (w == nullptr) break;
    // Only ConditionWait nodes are ever in waiters_.
    auto& waiter = static_cast<detail::ConditionWait&>(*w);
    waiter.notified_ = true;
    waiter.queue_for_lock();
  }
}

}  // namespace uvaio
