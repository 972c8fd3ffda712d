#pragma once

#include <cstddef>
#include <string>
#include <utility>

#include "uvaio/async.hpp"
#include "uvaio/export.hpp"
#include "uvaio/task.hpp"

namespace uvaio {

namespace detail {
class TaskGroupCore;
}

// asyncio.TaskGroup, with an explicit join instead of `async with`:
//   TaskGroup g;  g.create_task(a());  g.create_task(b());  co_await g.join();
// Use it on the loop's thread, from a task. join() waits for every child,
// including children added while it waits. The first child that fails with an
// exception cancels every other child; join() then throws ExceptionGroup
// ("unhandled errors in a TaskGroup") holding every failure, in the order they
// happened (a failing inner group nests as one element). Cancelling the task
// that waits in join() cancels the children and, once they are done, throws
// CancelledError -- an ExceptionGroup instead if a child failed meanwhile.
// create_task() after a failure throws RuntimeError("TaskGroup is shutting
// down"), after join() returned RuntimeError("TaskGroup is finished"); the
// Async is destroyed without running. Destroying a group that was not joined
// cancels the children still running and logs it, with any failures.
//
// Unlike asyncio, a failing child does not cancel the code between the group's
// creation and join(): C++ has no `async with`, so that code could unwind past
// join() and lose the failure. It learns of the failure at join().
class UVAIO_API TaskGroup {
 public:
  // RuntimeError("no running event loop") outside a running loop.
  TaskGroup();
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;
  ~TaskGroup();

  template <class T>
  Task<T> create_task(Async<T> coro, std::string name = {}, SourceLocation where = SourceLocation::current()) {
    detail::LoopImpl& loop = check_can_add();
    Task<T> task = detail::make_task(loop, std::move(coro), std::move(name), where);
    try {
      adopt(*task.state());
    } catch (...) {
      // Not in the group (bad_alloc): it must not run outside it. Cancelled
      // before its first step, its body never runs.
      task.cancel();
      throw;
    }
    return task;
  }

  Async<void> join();

  // Children not finished yet.
  std::size_t running() const noexcept;

 private:
  detail::LoopImpl& check_can_add();
  void adopt(detail::TaskCore& task);

  detail::TaskGroupCore* core_;
};

}  // namespace uvaio
