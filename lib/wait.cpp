#include "uvaio/wait.hpp"

#include <utility>

#include "loop_impl.hpp"

namespace uvaio::detail {

bool is_cancelled_error(const std::exception_ptr& error) noexcept { return Outcome<int>::is_cancelled(error); }

std::exception_ptr timeout_error_from(std::exception_ptr cancelled) {
  // TimeoutError nesting the CancelledError, as asyncio chains them (__cause__).
  try {
    std::rethrow_exception(cancelled);
  } catch (...) {
    try {
      std::throw_with_nested(TimeoutError());
    } catch (...) {
      return std::current_exception();
    }
  }
  return nullptr;
}

// --- DeadlineScope ----------------------------------------------------------------

DeadlineScope::DeadlineScope(TimePoint deadline) : task_(t_current_task) {
  if (task_ == nullptr) throw RuntimeError("a timeout must be used inside a task");
  loop_ = task_->loop();
  base_cancelling_ = task_->cancelling();
  loop_->add_timer(*this, deadline);
}

DeadlineScope::~DeadlineScope() {
  if (armed()) loop_->remove_timer(*this);
}

void DeadlineScope::on_timer() noexcept {
  // asyncio's Timeout._on_timeout: the task is cancelled, so that the
  // cancellation reaches whatever it awaits.
  expired_ = true;
  task_->cancel({});
}

std::exception_ptr DeadlineScope::exit(std::exception_ptr error) noexcept {
  if (armed()) loop_->remove_timer(*this);
  if (!expired_) return error;
  // Take our own request back; only if no other request remains is the
  // CancelledError ours to turn into TimeoutError (nested timeouts, an
  // outside cancel() at the same moment: items 72, 87-89).
  if (task_->uncancel() <= base_cancelling_ && error && is_cancelled_error(error)) {
    return timeout_error_from(std::move(error));
  }
  return error;
}

// --- ShieldAwaiter -------------------------------------------------------------

namespace {

// Reports a shielded task's failure that nobody will await any more.
class LateFailureReporter final : public DoneNode {
 public:
  void fire(FutureCore& future) noexcept override {
    if (future.status() == FutureStatus::exception && future.loop() != nullptr) {
      std::exception_ptr error = future.exception();  // retrieved: reported here, once
      std::string name;
      if (const auto* task = dynamic_cast<const TaskCore*>(&future)) name = task->name();
      future.loop()->report({"Exception in shielded " + future.describe_future(), std::move(error), name,
                             future.loop()->created_at(future)});
    }
    delete this;
  }
  void drop() noexcept override { delete this; }
};

}  // namespace

ShieldAwaiter::~ShieldAwaiter() {
  if (linked()) inner_.remove_waiter(*this);
}

bool ShieldAwaiter::await_suspend(std::coroutine_handle<> h) {
  task_ = &task_awaiting(inner_);
  std::string message;
  if (task_->take_pending_cancel(message)) {
    // Cancelled before it even waited: the inner task is left alone.
    cancelled_ = true;
    message_ = std::move(message);
    inner_.add_waiter(*new LateFailureReporter());
    return false;
  }
  inner_.add_waiter(*this);
  // What a cancel() of the task reaches is this awaiter, not the inner task.
  task_->suspend_on(this, h);
  return true;
}

void ShieldAwaiter::await_resume() {
  if (task_ != nullptr) task_->throw_if_cancel_pending();  // first: one CancelledError in all
  if (cancelled_) throw CancelledError(message_);
}

bool ShieldAwaiter::cancel(std::string message) {
  if (!linked()) return false;
  inner_.remove_waiter(*this);
  cancelled_ = true;
  message_ = std::move(message);
  inner_.add_waiter(*new LateFailureReporter());
  task_->wake();
  return true;
}

void ShieldAwaiter::fire(FutureCore& /*future*/) noexcept { task_->wake(); }

}  // namespace uvaio::detail
