#pragma once

// The machinery behind the loop-thread primitives (<uvaio/sync.hpp>,
// <uvaio/queue.hpp>): a waiter node that lives in the awaiting coroutine's
// frame, the intrusive FIFO of such nodes a primitive keeps, and the check that
// binds a primitive to one loop. Loop thread only; nothing here allocates.

#include <coroutine>
#include <cstdint>
#include <string>

#include "uvaio/detail/core.hpp"
#include "uvaio/export.hpp"

namespace uvaio::detail {

class LoopBinding;
class Mailbox;
class WaitList;

// One task waiting on a primitive. The awaiter *is* the node, so waiting
// allocates nothing. Task::cancel() reaches it through TaskCore::suspend_on.
//
// A wake-up may carry something the waiter now owns (the lock, a semaphore
// unit, a queue item or slot): the primitive then "holds" the node in its
// WaitList until the task resumes. A held waiter that is cancelled or
// destroyed before it resumes gives what it was woken with back through
// pass_on(), so no wake-up is ever lost (asyncio's _wake_up_first on
// cancellation).
class UVAIO_API Waiter : public Cancellable {
 public:
  enum class State : std::uint8_t {
    idle,       // not suspended (yet, or any more)
    waiting,    // in a WaitList, its task suspended
    woken,      // its task is on the ready queue
    cancelled,  // cancel() reached it; await_resume throws CancelledError
    orphaned,   // the primitive was destroyed; await_resume throws RuntimeError
  };
  // How the wait ended, for await_resume (see finish_wait).
  enum class Wake : std::uint8_t { immediate, granted, plain };

  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  State state() const noexcept { return state_; }
  bool cancel(std::string message) override;
  // A primitive this node refers to besides its list is being destroyed (a
  // Condition whose waiter already moved on to the Condition's lock).
  virtual void forget(const void* primitive) noexcept { (void)primitive; }

 protected:
  Waiter() noexcept = default;
  ~Waiter() override;

  // From await_suspend: suspends the current task at the back of `list`.
  // False when a cancellation was already pending (the awaiter resumes at once
  // and throws). Throws RuntimeError outside a task or for another loop's task.
  bool suspend_in(WaitList& list, LoopBinding& binding, const char* primitive,
                  const char* operation, std::coroutine_handle<> h);
  // From await_resume: throws CancelledError, or RuntimeError("<primitive> was
  // destroyed ..."), or returns how the waiter got here: `immediate` (never
  // suspended), `granted` (woken holding something, which is now the caller's
  // to consume) or `plain` (woken holding nothing).
  Wake finish_wait(const char* primitive);
  // From the derived destructor: a waiting node leaves its list, a held one
  // passes its wake-up on.
  void leave() noexcept;
  // A held waiter will not consume what it was woken with: give it on.
  virtual void pass_on() noexcept {}
  // The list this node is in (waiting or held), or null.
  WaitList* list() const noexcept { return list_; }

  TaskCore* task_ = nullptr;
  std::string message_;
  State state_ = State::idle;

 private:
  friend class WaitList;
  WaitList* list_ = nullptr;  // set while waiting, or woken and held
  Waiter* prev_ = nullptr;
  Waiter* next_ = nullptr;
};

// A primitive's waiters, in the order they started waiting, and the woken
// waiters it still holds. Destroying it while nodes are in it wakes their
// tasks with RuntimeError (destroying a primitive that is waited on is a
// programming error, made safe).
class UVAIO_API WaitList {
 public:
  WaitList() noexcept = default;
  WaitList(const WaitList&) = delete;
  WaitList& operator=(const WaitList&) = delete;
  ~WaitList();

  bool has_waiters() const noexcept { return waiting_.first != nullptr; }
  Waiter* first_waiter() const noexcept { return waiting_.first; }

  // Appends `w` (not in any list) and marks it waiting.
  void push(Waiter& w) noexcept;
  // Unlinks the first waiter without waking it (it is about to move to
  // another list); null if none.
  Waiter* pop_waiter() noexcept;
  // Wakes the first waiter; with `hold`, it stays held until it resumes.
  Waiter* wake_first(bool hold) noexcept;
  void wake_all() noexcept;
  // `w` (in no list) is woken and held: it got what it waited for directly.
  void grant(Waiter& w) noexcept;
  // Takes `w` out, waiting or held.
  void unlink(Waiter& w) noexcept;

  // Every node, waiting then held (f must not change the list).
  template <class F>
  void for_each(F&& f) const {
    for (Waiter* w = waiting_.first; w != nullptr; w = w->next_) f(*w);
    for (Waiter* w = held_.first; w != nullptr; w = w->next_) f(*w);
  }

 private:
  struct Fifo {
    Waiter* first = nullptr;
    Waiter* last = nullptr;
    void push_back(Waiter& w) noexcept;
    void remove(Waiter& w) noexcept;
  };
  void orphan(Fifo& fifo) noexcept;

  Fifo waiting_;
  Fifo held_;
};

// Which loop a primitive belongs to: the loop of the first task that waits on
// it, for good (asyncio's _LoopBoundMixin), also once that loop is closed. It
// keeps a reference to the loop's mailbox, whose address no later loop can
// reuse, so the check cannot be fooled by a new loop at the old one's address.
class UVAIO_API LoopBinding {
 public:
  LoopBinding() noexcept = default;
  LoopBinding(const LoopBinding&) = delete;
  LoopBinding& operator=(const LoopBinding&) = delete;
  ~LoopBinding();

  // The current task, once the primitive is bound to its loop. Throws
  // RuntimeError outside a task, or when bound to a different loop.
  TaskCore& task_for_wait(const char* primitive, const char* operation);
  // The loop it is bound to; null until bound, or once that loop is closed.
  LoopImpl* loop() const noexcept;

 private:
  LoopImpl* loop_ = nullptr;
  Mailbox* mailbox_ = nullptr;  // a reference, held until destruction
};

}  // namespace uvaio::detail
