#pragma once

// What Future<T> and Task<T> have in common: a counted handle to a state
// derived from FutureCore that also holds the value, done callbacks, and the
// awaiter that suspends a task until the state is done.

#include <concepts>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <string>
#include <type_traits>
#include <utility>

#include "uvaio/detail/core.hpp"

namespace uvaio::detail {

struct adopt_t {
  explicit adopt_t() = default;
};
struct share_t {
  explicit share_t() = default;
};
inline constexpr adopt_t adopt{};
inline constexpr share_t share{};

// Suspends the current task until `State` is done. Lives in the awaiting
// coroutine's frame, where it is also the node in the state's done list, so
// waiting allocates nothing. With Move, the result is moved out of the state
// (`co_await std::move(handle)`); otherwise a reference to it is returned.
template <class State, bool Move>
class FutureAwaiter final : public DoneNode {
  using value_type = typename State::value_type;

 public:
  explicit FutureAwaiter(State* state) noexcept : state_(state) {}
  FutureAwaiter(const FutureAwaiter&) = delete;
  FutureAwaiter& operator=(const FutureAwaiter&) = delete;
  ~FutureAwaiter() override {
    if (linked()) state_->remove_waiter(*this);
  }

  bool await_ready() const noexcept { return state_->done(); }
  bool await_suspend(std::coroutine_handle<> h) { return suspend_on_future(*state_, *this, h, task_); }
  decltype(auto) await_resume() {
    if (task_ != nullptr) task_->throw_if_cancel_pending();
    state_->check_result();
    if constexpr (std::is_void_v<value_type>) {
      return;
    } else if constexpr (Move) {
      return value_type(std::move(state_->value_.get()));
    } else {
      return static_cast<value_type&>(state_->value_.get());
    }
  }

  void fire(FutureCore& /*future*/) noexcept override { task_->wake(); }
  void drop() noexcept override {}

 private:
  State* state_;
  TaskCore* task_ = nullptr;
};

// A done callback added with add_done_callback(): fired in registration order
// through the ready queue (never inline), with a handle to the future.
template <class Handle, class F>
class CallbackNode final : public DoneNode, public Runnable {
 public:
  explicit CallbackNode(F&& fn) : fn_(std::move(fn)) {}
  explicit CallbackNode(const F& fn) : fn_(fn) {}

  void fire(FutureCore& future) noexcept override {
    handle_ = Handle(share, static_cast<typename Handle::state_type*>(&future));
    push_ready(*future.loop(), *this);
  }
  void drop() noexcept override { delete this; }
  void run() noexcept override {
    try {
      fn_(std::as_const(handle_));
    } catch (...) {
      report_callback_exception(handle_.state()->loop(), std::current_exception(),
                                "Exception in done callback of " + handle_.state()->describe_future());
    }
    delete this;
  }
  void discard() noexcept override { delete this; }
  std::string describe() const override {
    return "done callback of " + handle_.state()->describe_future();
  }

 private:
  F fn_;
  Handle handle_;
};

// The handle part of Future<T> and Task<T> (CRTP: Self is the handle type).
template <class Self, class State>
class FutureHandle {
 public:
  using state_type = State;
  using value_type = typename State::value_type;
  using result_ref = std::add_lvalue_reference_t<value_type>;

  bool done() const { return core().done(); }
  bool cancelled() const { return core().cancelled(); }

  // The value, the stored exception rethrown, CancelledError if cancelled, or
  // InvalidStateError("Result is not set.") while pending.
  result_ref result() const {
    State& s = core();
    s.check_result();
    return static_cast<result_ref>(s.value_.get());
  }
  // Null after a result; the exception after a failure; throws CancelledError
  // if cancelled and InvalidStateError("Exception is not set.") while pending.
  std::exception_ptr exception() const { return core().exception(); }

  // fn(const Self&) runs on the loop thread, through the ready queue, after the
  // future completes (at once -- on the next iteration -- if it already has).
  template <class F>
    requires std::invocable<std::decay_t<F>&, const Self&>
  CallbackId add_done_callback(F&& fn) const {
    State& s = core();
    check_usable(s.loop(), "add_done_callback");
    auto* node = new CallbackNode<Self, std::decay_t<F>>(std::forward<F>(fn));
    return s.add_done_node(*node);
  }
  std::size_t remove_done_callback(CallbackId id) const { return core().remove_done_callback(id); }

  Loop& get_loop() const {
    LoopImpl* loop = core().loop();
    if (loop == nullptr) throw RuntimeError("Event loop is closed");
    return owner_of(*loop);
  }

  explicit operator bool() const noexcept { return state_ != nullptr; }
  friend bool operator==(const FutureHandle& a, const FutureHandle& b) noexcept {
    return a.state_ == b.state_;
  }

  // `co_await f` yields a reference to the stored value (valid while a handle
  // lives); `co_await std::move(f)` moves the value out of the state.
  FutureAwaiter<State, false> operator co_await() const& { return FutureAwaiter<State, false>(&core()); }
  FutureAwaiter<State, true> operator co_await() && { return FutureAwaiter<State, true>(&core()); }

  State* state() const noexcept { return state_; }

 protected:
  FutureHandle() noexcept = default;
  FutureHandle(adopt_t, State* state) noexcept : state_(state) {}
  FutureHandle(share_t, State* state) noexcept : state_(state) {
    if (state_ != nullptr) state_->add_ref();
  }
  FutureHandle(const FutureHandle& other) noexcept : state_(other.state_) {
    if (state_ != nullptr) state_->add_ref();
  }
  FutureHandle(FutureHandle&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  FutureHandle& operator=(const FutureHandle& other) noexcept {
    FutureHandle copy(other);
    std::swap(state_, copy.state_);
    return *this;
  }
  FutureHandle& operator=(FutureHandle&& other) noexcept {
    FutureHandle moved(std::move(other));
    std::swap(state_, moved.state_);
    return *this;
  }
  ~FutureHandle() {
    if (state_ != nullptr) state_->release();
  }

  State& core() const {
    if (state_ == nullptr) throw_empty_handle(State::handle_name);
    return *state_;
  }

 private:
  State* state_ = nullptr;
};

}  // namespace uvaio::detail
