#include "uvaio/detail/wait_set.hpp"

#include <utility>

#include "loop_impl.hpp"

namespace uvaio::detail {

class WaitSet::Node final : public DoneNode {
 public:
  void fire(FutureCore& /*future*/) noexcept override { set->child_done(index); }
  void drop() noexcept override {}

  WaitSet* set = nullptr;
  std::size_t index = 0;
};

WaitSet::WaitSet(std::vector<FutureCore*> children, Until until, OnCancel on_cancel,
                 std::optional<TimePoint> deadline)
    : children_(std::move(children)),
      nodes_(std::make_unique<Node[]>(children_.size())),
      until_(until),
      on_cancel_(on_cancel),
      deadline_(deadline) {
  for (std::size_t i = 0; i < children_.size(); ++i) {
    nodes_[i].set = this;
    nodes_[i].index = i;
  }
}

WaitSet::~WaitSet() {
  unlink_all();
  if (armed() && loop_ != nullptr) remove_timer(*loop_, *this);
}

void WaitSet::unlink_all() noexcept {
  for (std::size_t i = 0; i < children_.size(); ++i) {
    if (nodes_[i].linked()) children_[i]->remove_waiter(nodes_[i]);
  }
}

bool WaitSet::condition_met() const noexcept {
  if (done_ == children_.size()) return true;
  switch (until_) {
    case Until::all_completed:
      return false;
    case Until::first_completed:
      return done_ > 0;
    case Until::first_exception:
      return any_exception_;
    case Until::first_failure:
      return first_failure_.has_value();
  }
  return false;
}

void WaitSet::child_done(std::size_t index) noexcept {
  ++done_;
  const FutureStatus status = children_[index]->status();
  if (status == FutureStatus::exception) any_exception_ = true;
  if ((status == FutureStatus::exception || status == FutureStatus::cancelled) && !first_failure_) {
    first_failure_ = index;
  }
  if (state_ == State::waiting && condition_met()) {
    finish(State::satisfied);
  } else if (state_ == State::cancelling && done_ == children_.size()) {
    finish(State::cancelled);
  }
}

bool WaitSet::await_ready() noexcept {
  if (state_ != State::idle) return true;
  for (std::size_t i = 0; i < children_.size(); ++i) {
    if (children_[i]->done()) child_done(i);
  }
  if (condition_met()) {
    state_ = State::satisfied;
    return true;
  }
  return false;
}

bool WaitSet::await_suspend(std::coroutine_handle<> h) {
  TaskCore* task = t_current_task;
  if (task == nullptr) throw RuntimeError("waiting on several futures must happen inside a task");
  for (FutureCore* child : children_) {
    if (child == static_cast<FutureCore*>(task)) {
      throw RuntimeError("Task cannot await on itself: " + task->describe_future());
    }
    if (child->loop() != task->loop()) {
      throw RuntimeError(task->describe_future() + " got " + child->describe_future() +
                         " attached to a different loop");
    }
  }
  task_ = task;
  loop_ = task->loop();
  if (deadline_) add_timer(*loop_, *this, *deadline_);  // first: it may throw bad_alloc
  for (std::size_t i = 0; i < children_.size(); ++i) {
    if (!children_[i]->done()) children_[i]->add_waiter(nodes_[i]);
  }
  state_ = State::waiting;
  task->suspend_on(this, h);
  std::string message;
  if (task->take_pending_cancel(message)) cancel(std::move(message));
  return true;
}

void WaitSet::await_resume() {
  if (task_ != nullptr) task_->throw_if_cancel_pending();  // first: one CancelledError in all
  if (state_ == State::cancelled) throw CancelledError(cancel_message_);
}

bool WaitSet::cancel(std::string message) {
  if (state_ == State::cancelling) return true;
  if (state_ != State::waiting) return false;
  cancel_message_ = std::move(message);
  if (on_cancel_ == OnCancel::stop_waiting) {
    finish(State::cancelled);
    return true;
  }
  // asyncio's gather: cancel every child, and finish once all are done.
  state_ = State::cancelling;
  if (armed()) remove_timer(*loop_, *this);
  for (FutureCore* child : children_) {
    if (!child->done()) child->cancel(cancel_message_);
  }
  if (state_ == State::cancelling && done_ == children_.size()) finish(State::cancelled);
  return true;
}

void WaitSet::on_timer() noexcept {
  if (state_ != State::waiting) return;
  timed_out_ = true;
  finish(State::satisfied);
}

void WaitSet::finish(State state) noexcept {
  state_ = state;
  unlink_all();
  if (armed()) remove_timer(*loop_, *this);
  task_->wake();
}

}  // namespace uvaio::detail
