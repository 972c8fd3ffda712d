#include "uvaio/sleep.hpp"

#include <utility>

#include "loop_impl.hpp"

namespace uvaio::detail {

SleepAwaiter::~SleepAwaiter() {
  // The frame is being destroyed while the task sleeps (loop closing, or the
  // owner of an unfinished Async dropped it).
  if (armed() && loop_ != nullptr) loop_->remove_timer(*this);
}

bool SleepAwaiter::await_suspend(std::coroutine_handle<> h) {
  TaskCore* task = t_current_task;
  if (task == nullptr) throw RuntimeError("uvaio::sleep() must be awaited inside a task");
  task_ = task;
  loop_ = task->loop();
  if (task->take_pending_cancel(message_)) {
    state_ = State::cancelled;
    return false;
  }
  if (delay_ <= Duration::zero()) {
    task->suspend_on(this, h);
    state_ = State::yielded;
    task->wake();
  } else {
    // First, as it may throw bad_alloc: the exception then comes out of the
    // co_await with the task still running, not recorded as suspended.
    loop_->add_timer(*this, deadline_after(delay_));
    task->suspend_on(this, h);
    state_ = State::armed;
  }
  return true;
}

void SleepAwaiter::await_resume() {
  // A second cancel() while the first was being delivered is consumed here
  // too: the task gets one CancelledError, as in asyncio.
  if (task_ != nullptr) task_->throw_if_cancel_pending();
  if (state_ == State::cancelled) throw CancelledError(std::move(message_));
}

bool SleepAwaiter::cancel(std::string message) {
  switch (state_) {
    case State::armed:
      loop_->remove_timer(*this);
      state_ = State::cancelled;
      message_ = std::move(message);
      task_->wake();
      return true;
    case State::yielded:
      // Already on the ready queue: it will see the cancellation when it resumes.
      state_ = State::cancelled;
      message_ = std::move(message);
      return true;
    default:
      return false;
  }
}

void SleepAwaiter::on_timer() noexcept {
  state_ = State::fired;
  task_->wake();
}

}  // namespace uvaio::detail
