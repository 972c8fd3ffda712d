#include "uvaio/handle.hpp"

#include <utility>

#include "loop_impl.hpp"

namespace uvaio {

namespace detail {

namespace {
// The callback running on this thread, so that a callback cancelling its own
// handle does not wait for itself.
UVAIO_TLS_MODEL thread_local const CallbackCore* t_running_callback = nullptr;
}  // namespace

CallbackCore::~CallbackCore() = default;

void CallbackCore::release() noexcept {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

void CallbackCore::run() noexcept {
  std::uint8_t expected = state_pending;
  if (state_.compare_exchange_strong(expected, state_running, std::memory_order_acq_rel)) {
    const CallbackCore* const previous = t_running_callback;
    t_running_callback = this;
    try {
      invoke();
    } catch (...) {
      report_callback_exception(loop_, std::current_exception(), "Exception in callback " + describe());
    }
    t_running_callback = previous;
    state_.store(state_finished, std::memory_order_release);
    state_.notify_all();
  }
  release();
}

void CallbackCore::discard() noexcept { release(); }

std::string CallbackCore::describe() const { return "Handle"; }

void CallbackCore::cancel() {
  std::uint8_t expected = state_pending;
  if (state_.compare_exchange_strong(expected, state_cancelled, std::memory_order_acq_rel)) return;
  if (expected == state_running) {
    if (t_running_callback == this) {
      cancelled_while_running_ = true;
      return;
    }
    // Another thread cancels while the loop runs the callback: wait for it to
    // return, as asyncio 3.14 does (gh-128340). It stays not cancelled.
    state_.wait(state_running, std::memory_order_acquire);
  }
}

bool CallbackCore::cancelled() const {
  std::uint8_t state = state_.load(std::memory_order_acquire);
  if (state == state_running) {
    if (t_running_callback == this) return cancelled_while_running_;
    state_.wait(state_running, std::memory_order_acquire);
    state = state_.load(std::memory_order_acquire);
  }
  return state == state_cancelled || cancelled_while_running_;
}

void TimerCore::cancel() {
  CallbackCore::cancel();
  if (armed() && loop() != nullptr) {
    remove_timer(*loop(), *this);
    release();  // the timer heap's reference
  }
}

void TimerCore::on_timer() noexcept {
  // The heap's reference moves to the ready queue.
  push_ready(*loop(), *this);
}

}  // namespace detail

Handle::Handle(const Handle& other) noexcept : core_(other.core_) {
  if (core_ != nullptr) core_->add_ref();
}

Handle& Handle::operator=(const Handle& other) noexcept {
  Handle copy(other);
  std::swap(core_, copy.core_);
  return *this;
}

Handle& Handle::operator=(Handle&& other) noexcept {
  Handle moved(std::move(other));
  std::swap(core_, moved.core_);
  return *this;
}

Handle::~Handle() {
  if (core_ != nullptr) core_->release();
}

void Handle::cancel() const {
  if (core_ == nullptr) detail::throw_empty_handle("Handle");
  core_->cancel();
}

bool Handle::cancelled() const {
  if (core_ == nullptr) detail::throw_empty_handle("Handle");
  return core_->cancelled();
}

TimePoint TimerHandle::when() const {
  if (core_ == nullptr) detail::throw_empty_handle("TimerHandle");
  return static_cast<detail::TimerCore*>(core_)->deadline_;
}

}  // namespace uvaio
