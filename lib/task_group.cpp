#include "uvaio/task_group.hpp"

#include <string>
#include <utility>
#include <vector>

#include "intrusive.hpp"
#include "log_internal.hpp"
#include "loop_impl.hpp"

namespace uvaio {

namespace detail {

class TaskGroupCore;

// The group's registration on one child. Like asyncio's done callback, the
// group hears of the child's end through the ready queue, after the steps
// already queued in that iteration: a sibling that fails in the same iteration
// fails before the group cancels it, and both failures are reported.
class GroupChild final : public DoneNode, public Runnable {
 public:
  GroupChild(TaskGroupCore& group, TaskCore& task) noexcept : group_(&group), task_(task) { task_.add_ref(); }
  ~GroupChild() override { task_.release(); }
  void fire(FutureCore& future) noexcept override;
  void drop() noexcept override;
  void run() noexcept override;
  void discard() noexcept override;
  TaskCore& task() const noexcept { return task_; }
  bool queued() const noexcept { return queued_; }
  // The group is going away while this node waits in the ready queue.
  void orphan() noexcept { group_ = nullptr; }

  GroupChild* prev_ = nullptr;
  GroupChild* next_ = nullptr;

 private:
  TaskGroupCore* group_;
  TaskCore& task_;
  bool queued_ = false;
};

class JoinWaiter;

class TaskGroupCore {
 public:
  explicit TaskGroupCore(LoopImpl& loop) noexcept : loop_(loop) {}

  void adopt(TaskCore& task) {
    // Room for the error every child may add: child_done() is noexcept and
    // must not allocate (a bad_alloc there would terminate the program).
    errors_.reserve(errors_.size() + running_count_ + 1);
    auto* child = new GroupChild(*this, task);
    running_.push_front(*child);
    ++running_count_;
    task.add_waiter(*child);
  }

  void child_done(GroupChild& child) noexcept {
    std::exception_ptr error;
    if (child.task().status() == FutureStatus::exception) error = child.task().exception();  // join() reports it
    forget(child);  // may drop the last reference to the task
    if (error) {
      errors_.push_back(std::move(error));
      if (!aborting_) abort();
    }
    if (running_count_ == 0) wake_joiner();
  }

  // The loop closed while the child was pending: it will never finish.
  void child_dropped(GroupChild& child) noexcept {
    forget(child);
    if (running_count_ == 0) wake_joiner();
  }

  // asyncio's TaskGroup._abort: every child still running is cancelled.
  void abort() noexcept {
    aborting_ = true;
    for (GroupChild* c = running_.first(); c != nullptr;) {
      GroupChild* next = running_.next(*c);
      c->task().cancel({});
      c = next;
    }
  }

  // Unregisters from every child still running (the group is going away).
  std::size_t detach_all(const std::string& message) noexcept {
    std::size_t cancelled = 0;
    while (GroupChild* c = running_.first()) {
      TaskCore& task = c->task();
      task.remove_waiter(*c);
      if (task.cancel(message)) ++cancelled;
      running_.remove(*c);
      --running_count_;
      if (c->queued()) {
        c->orphan();  // the ready queue frees it
      } else {
        delete c;
      }
    }
    return cancelled;
  }

  void wake_joiner() noexcept;

  LoopImpl& loop_;
  std::size_t running_count_ = 0;
  std::vector<std::exception_ptr> errors_;
  bool aborting_ = false;
  bool joining_ = false;
  bool finished_ = false;
  JoinWaiter* joiner_ = nullptr;

 private:
  void forget(GroupChild& child) noexcept {
    running_.remove(child);
    --running_count_;
    delete &child;
  }

  IntrusiveList<GroupChild, &GroupChild::prev_, &GroupChild::next_> running_;
};

void GroupChild::fire(FutureCore& future) noexcept {
  queued_ = true;
  push_ready(*future.loop(), *this);
}

void GroupChild::run() noexcept {
  queued_ = false;
  if (group_ == nullptr) {
    delete this;
    return;
  }
  group_->child_done(*this);
}

void GroupChild::discard() noexcept {
  queued_ = false;
  if (group_ == nullptr) {
    delete this;
    return;
  }
  group_->child_dropped(*this);
}

void GroupChild::drop() noexcept { group_->child_dropped(*this); }

// join()'s wait for the last child; cancellable.
class JoinWaiter final : public Cancellable {
 public:
  explicit JoinWaiter(TaskGroupCore& group) noexcept : group_(group) {}
  JoinWaiter(const JoinWaiter&) = delete;
  JoinWaiter& operator=(const JoinWaiter&) = delete;
  ~JoinWaiter() override {
    if (group_.joiner_ == this) group_.joiner_ = nullptr;
  }

  bool await_ready() const noexcept { return group_.running_count_ == 0; }
  bool await_suspend(std::coroutine_handle<> h) {
    task_ = t_current_task;
    if (task_ == nullptr) throw RuntimeError("TaskGroup::join() must be awaited inside a task");
    if (task_->loop() != &group_.loop_) throw RuntimeError("TaskGroup::join() awaited from a task of another loop");
    if (task_->take_pending_cancel(message_)) {
      cancelled_ = true;
      return false;
    }
    group_.joiner_ = this;
    task_->suspend_on(this, h);
    return true;
  }
  void await_resume() {
    if (task_ != nullptr) task_->throw_if_cancel_pending();  // first: one CancelledError in all
    if (cancelled_) throw CancelledError(message_);
  }
  bool cancel(std::string message) override {
    if (group_.joiner_ != this) return false;
    group_.joiner_ = nullptr;
    cancelled_ = true;
    message_ = std::move(message);
    task_->wake();
    return true;
  }
  void done() noexcept {
    group_.joiner_ = nullptr;
    task_->wake();
  }

 private:
  TaskGroupCore& group_;
  TaskCore* task_ = nullptr;
  bool cancelled_ = false;
  std::string message_;
};

void TaskGroupCore::wake_joiner() noexcept {
  if (joiner_ != nullptr) joiner_->done();
}

}  // namespace detail

TaskGroup::TaskGroup() {
  detail::LoopImpl* loop = detail::t_running_loop;
  if (loop == nullptr) throw RuntimeError("no running event loop");
  core_ = new detail::TaskGroupCore(*loop);
}

TaskGroup::~TaskGroup() {
  detail::TaskGroupCore& group = *core_;
  if (!group.finished_) {
    const std::size_t cancelled = group.detach_all("TaskGroup destroyed without join()");
    if (cancelled > 0) {
      group.loop_.report({"TaskGroup destroyed without join(): cancelled " + std::to_string(cancelled) +
                              " task(s) still running",
                          nullptr,
                          {},
                          {}});
    }
    for (const std::exception_ptr& error : group.errors_) {
      group.loop_.report({"TaskGroup destroyed without join(): a child failed", error, {}, {}});
    }
  }
  delete core_;
}

detail::LoopImpl& TaskGroup::check_can_add() {
  if (core_->finished_) throw RuntimeError("TaskGroup is finished");
  if (core_->aborting_) throw RuntimeError("TaskGroup is shutting down");
  return core_->loop_;
}

void TaskGroup::adopt(detail::TaskCore& task) { core_->adopt(task); }

std::size_t TaskGroup::running() const noexcept { return core_->running_count_; }

Async<void> TaskGroup::join() {
  detail::TaskGroupCore& group = *core_;
  if (group.joining_ || group.finished_) throw RuntimeError("TaskGroup::join() was already called");
  group.joining_ = true;
  std::exception_ptr cancellation;
  // A cancelled join goes on waiting: the children are cancelled and awaited
  // first, as asyncio's __aexit__ does, however often the parent is cancelled.
  while (group.running_count_ > 0) {
    try {
      detail::JoinWaiter waiter(group);
      co_await waiter;
    } catch (const CancelledError&) {
      cancellation = std::current_exception();
      if (!group.aborting_) group.abort();
    }
  }
  group.finished_ = true;
  if (!group.errors_.empty()) throw ExceptionGroup("unhandled errors in a TaskGroup", group.errors_);
  if (cancellation) std::rethrow_exception(cancellation);
}

}  // namespace uvaio
