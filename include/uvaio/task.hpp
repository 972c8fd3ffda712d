#pragma once

#include <coroutine>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "uvaio/async.hpp"
#include "uvaio/detail/core.hpp"
#include "uvaio/detail/future_handle.hpp"

namespace uvaio {

namespace detail {
template <class T>
class TaskState final : public TaskCore {
 public:
  using value_type = T;
  static constexpr const char* handle_name = "Task";

  TaskState(LoopImpl* loop, std::coroutine_handle<AsyncPromise<T>> root, std::string name)
      : TaskCore(loop, root, std::move(name)) {
    root.promise().task_ = this;
    root.promise().next_slot_ = trampoline_slot();
  }

  void on_root_complete() noexcept override {
    auto& promise = std::coroutine_handle<AsyncPromise<T>>::from_address(root().address()).promise();
    if (promise.exception_) {
      finish(promise.exception_);
      return;
    }
    if constexpr (!std::is_void_v<T>) {
      try {
        value_.emplace(std::move(*promise.value()));
      } catch (...) {
        finish(std::current_exception());
        return;
      }
    }
    finish(nullptr);
  }

  ValueSlot<T> value_;
};

UVAIO_API std::string next_task_name();
}  // namespace detail

class TaskRef;

// asyncio.Task: an Async<T> scheduled on a loop. create_task() does not run
// anything inline; the first step runs on a later loop iteration. The loop owns
// the task while it is pending, so dropping every handle does not stop it.
// Use it from the loop's thread only. cancel() is a request: CancelledError is
// raised at the task's current or next suspension point, and reaches the
// innermost thing it awaits. Awaitable by many tasks; each resumes on the loop
// thread. A failure nobody retrieved is logged ("Task exception was never
// retrieved") when the last handle goes.
template <class T = void>
class Task : public detail::FutureHandle<Task<T>, detail::TaskState<T>> {
  using Base = detail::FutureHandle<Task<T>, detail::TaskState<T>>;

 public:
  Task() noexcept = default;
  Task(detail::adopt_t tag, detail::TaskState<T>* state) noexcept : Base(tag, state) {}
  Task(detail::share_t tag, detail::TaskState<T>* state) noexcept : Base(tag, state) {}

  bool cancel(std::string message = {}) const { return this->core().cancel(std::move(message)); }
  int cancelling() const { return this->core().cancelling(); }
  int uncancel() const { return this->core().uncancel(); }
  const std::string& name() const { return this->core().name(); }
  void set_name(std::string name) const { this->core().set_name(std::move(name)); }

  operator TaskRef() const noexcept;  // NOLINT(google-explicit-constructor)
};

// A handle to a task whose result type is not known here (current_task(),
// all_tasks()). Same threading rules as Task.
class UVAIO_API TaskRef {
 public:
  TaskRef() noexcept = default;
  explicit TaskRef(detail::TaskCore* core) noexcept;
  TaskRef(const TaskRef& other) noexcept;
  TaskRef(TaskRef&& other) noexcept;
  TaskRef& operator=(const TaskRef& other) noexcept;
  TaskRef& operator=(TaskRef&& other) noexcept;
  ~TaskRef();

  bool done() const;
  bool cancelled() const;
  bool cancel(std::string message = {}) const;
  int cancelling() const;
  int uncancel() const;
  const std::string& name() const;
  void set_name(std::string name) const;
  std::exception_ptr exception() const;

  explicit operator bool() const noexcept { return core_ != nullptr; }
  friend bool operator==(const TaskRef& a, const TaskRef& b) noexcept { return a.core_ == b.core_; }
  detail::TaskCore* core() const noexcept { return core_; }

 private:
  detail::TaskCore& checked() const;
  detail::TaskCore* core_ = nullptr;
};

template <class T>
Task<T>::operator TaskRef() const noexcept {
  return TaskRef(this->state());
}

namespace detail {
template <class T>
Task<T> make_task(LoopImpl& loop, Async<T> coro, std::string name, SourceLocation where) {
  check_usable(&loop, "create_task");
  if (!coro.valid()) {
    throw RuntimeError("create_task() needs a coroutine: this Async is empty (moved from?)");
  }
  if (name.empty()) name = next_task_name();
  auto* state = new TaskState<T>(&loop, coro.release(), std::move(name));
  Task<T> task(adopt, state);
  remember_creation(loop, *state, where);
  start_task(loop, *state);
  return task;
}
}  // namespace detail

// Schedules `coro` on the running loop (RuntimeError "no running event loop"
// outside one). Unnamed tasks are called "Task-N". `where` (the caller's
// position by default) is what debug-mode reports name as its origin.
template <class T>
Task<T> create_task(Async<T> coro, std::string name = {}, SourceLocation where = SourceLocation::current()) {
  detail::LoopImpl* loop = detail::running_loop_impl();
  if (loop == nullptr) throw RuntimeError("no running event loop");
  return detail::make_task(*loop, std::move(coro), std::move(name), where);
}

// The task whose step is running on this thread; empty outside any task.
UVAIO_API TaskRef current_task();
// The pending tasks of the running loop (RuntimeError outside one).
UVAIO_API std::vector<TaskRef> all_tasks();

}  // namespace uvaio
