#pragma once

// Between the two worlds (asyncio items 36-37): a ThreadFuture awaited by a
// task, and a coroutine scheduled on a loop from any thread.

#include <exception>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "uvaio/async.hpp"
#include "uvaio/detail/core.hpp"
#include "uvaio/detail/work_item.hpp"
#include "uvaio/future.hpp"
#include "uvaio/handle.hpp"
#include "uvaio/loop.hpp"
#include "uvaio/task.hpp"
#include "uvaio/thread_future.hpp"

namespace uvaio {

namespace detail {

// The callable of wrap_future's work item: runs on the thread that completes
// the ThreadFuture and copies its outcome; cancelling the loop future cancels it.
template <class T>
struct CopyOutcome {
  ThreadFuture<T> source;
  T operator()() {
    if constexpr (std::is_void_v<T>) {
      source.result();
    } else if constexpr (std::is_copy_constructible_v<T>) {
      return source.result();
    } else {
      return source.take_result();
    }
  }
  void on_cancel() noexcept { source.cancel(); }
  bool source_cancelled() const { return source.cancelled(); }
};

// A loop, as seen from any thread: posting runs a function on the loop thread,
// or reports false if the loop has closed. Copies share one mailbox reference.
class LoopRef {
 public:
  explicit LoopRef(LoopImpl& loop) noexcept : loop_(&loop), mailbox_(acquire_mailbox(loop)) {}
  LoopRef(const LoopRef& other) noexcept : LoopRef(*other.loop_, other.mailbox_) {}
  LoopRef& operator=(const LoopRef&) = delete;
  ~LoopRef() { release_mailbox(mailbox_); }

  template <class F>
  bool post(F&& fn) const {
    auto* entry = new CallbackImpl<CallbackCore, std::decay_t<F>>(loop_, std::forward<F>(fn));
    if (post_to_mailbox(mailbox_, *entry)) return true;
    entry->discard();
    return false;
  }

 private:
  LoopRef(LoopImpl& loop, Mailbox* mailbox) noexcept : loop_(&loop), mailbox_(mailbox) {
    acquire_mailbox(loop);
  }
  LoopImpl* loop_;  // touched only by what runs on the loop thread
  Mailbox* mailbox_;
};

// run_coroutine_threadsafe's task, as the loop thread sees it.
struct TaskLink {
  TaskCore* task = nullptr;  // valid while pending: the loop owns it then
  bool done = false;
};

// Mirrors a task into a ThreadFuture, on the loop thread. If the loop closes
// with the task pending, the node is dropped and the ThreadFuture cancelled,
// so that no thread waits forever.
template <class T>
class MirrorNode final : public DoneNode {
 public:
  MirrorNode(ThreadFuture<T> target, std::shared_ptr<TaskLink> link)
      : target_(std::move(target)), link_(std::move(link)) {}
  void fire(FutureCore& future) noexcept override {
    link_->done = true;
    auto& task = static_cast<TaskState<T>&>(future);
    try {
      if (task.status() == FutureStatus::cancelled) {
        target_.cancel();
      } else if (task.status() == FutureStatus::exception) {
        target_.set_exception(task.exception());
      } else if constexpr (std::is_void_v<T>) {
        target_.set_result();
      } else if constexpr (std::is_copy_constructible_v<T>) {
        target_.set_result(task.value_.get());
      } else {
        target_.set_result(std::move(task.value_.get()));
      }
    } catch (...) {
      // The ThreadFuture was cancelled meanwhile (InvalidStateError): nothing to copy.
    }
    delete this;
  }
  void drop() noexcept override {
    link_->done = true;
    target_.cancel();
    delete this;
  }

 private:
  ThreadFuture<T> target_;
  std::shared_ptr<TaskLink> link_;
};

}  // namespace detail

// asyncio.wrap_future: an awaitable Future<T> on the running loop that
// completes with the ThreadFuture's result, exception or cancellation. The copy
// is made on the thread that completes the ThreadFuture and delivered to the
// loop thread through its thread-safe mailbox (never inline; dropped if the
// loop has closed meanwhile). Cancelling the Future cancels the ThreadFuture
// (which succeeds only before it started running). Loop thread only;
// RuntimeError("no running event loop") outside a loop.
template <class T>
Future<T> wrap_future(ThreadFuture<T> source) {
  detail::LoopImpl* loop = detail::running_loop_impl();
  if (loop == nullptr) throw RuntimeError("no running event loop");
  detail::check_usable(loop, "wrap_future");
  auto* item = new detail::WorkItem<T, detail::CopyOutcome<T>>(*loop, detail::CopyOutcome<T>{source});
  Future<T> future(detail::adopt, item);
  detail::link_unexecuted_work(*loop, *item);
  // The Work is shared (the callback must be copyable) and run once, by the
  // thread that completes the source -- at once, here, if it is already done.
  auto work = std::make_shared<Work>(item);
  source.add_done_callback([work](const ThreadFuture<T>&) { (*work)(); });
  return future;
}

// asyncio.run_coroutine_threadsafe: from any thread, schedules `coro` as a task
// on `loop` and returns a ThreadFuture for its outcome. Cancelling the
// ThreadFuture cancels the task; if the loop closes before the task finishes,
// the ThreadFuture is cancelled. If the task cannot be created, the exception is
// set on the ThreadFuture and reported to the loop's exception handler. Throws
// RuntimeError("Event loop is closed") at once for a closed loop.
template <class T>
ThreadFuture<T> run_coroutine_threadsafe(Async<T> coro, Loop& loop,
                                         SourceLocation created_at = SourceLocation::current()) {
  ThreadFuture<T> result;
  auto link = std::make_shared<detail::TaskLink>();
  detail::LoopRef where(detail::impl_of(loop));
  if (!where.post([result, link, created_at, coro = std::move(coro)]() mutable {
        if (result.done()) return;  // cancelled before it was scheduled: never started
        detail::LoopImpl* loop = detail::running_loop_impl();
        try {
          Task<T> task = detail::make_task(*loop, std::move(coro), {}, created_at);
          link->task = task.state();
          task.state()->add_waiter(*new detail::MirrorNode<T>(result, link));
        } catch (...) {
          const std::exception_ptr error = std::current_exception();
          try {
            result.set_exception(error);
          } catch (...) {
          }
          detail::owner_of(*loop).call_exception_handler(
              {"run_coroutine_threadsafe(): the task could not be created", error, {}});
        }
      })) {
    throw RuntimeError("Event loop is closed");
  }
  // Cancelling the ThreadFuture (from any thread) cancels the task on the loop thread.
  result.add_done_callback([link, where](const ThreadFuture<T>& f) {
    if (!f.cancelled()) return;
    where.post([link] {
      if (link->task != nullptr && !link->done) link->task->cancel({});
    });
  });
  return result;
}

}  // namespace uvaio
