#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "uvaio/detail/core.hpp"
#include "uvaio/errors.hpp"

namespace uvaio {

template <class T = void>
class Async;

namespace detail {

// How control passes between Async frames without growing the stack. Inside a
// task, a frame that starts a child or finishes does not resume the next frame
// itself: it writes it into its task's trampoline slot (next_slot_) and
// returns to the task's step loop, which resumes it. The stack stays flat
// however long the chain of awaits that complete at once, whatever the
// compiler does with tail calls (g++ makes symmetric transfer a tail call only
// when optimising, and never under ASan or TSan). Frames awaited from outside a
// uvaio task fall back to plain symmetric transfer.
class AsyncPromiseBase {
 public:
  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
      AsyncPromiseBase& self = h.promise();
      if (self.continuation_) {
        if (self.next_slot_ == nullptr) return self.continuation_;
        *self.next_slot_ = self.continuation_;
        return std::noop_coroutine();
      }
      if (self.task_ != nullptr) self.task_->on_root_complete();
      return std::noop_coroutine();
    }
    void await_resume() const noexcept {}
  };

  std::suspend_always initial_suspend() const noexcept { return {}; }
  FinalAwaiter final_suspend() const noexcept { return {}; }
  void unhandled_exception() noexcept { exception_ = std::current_exception(); }

  std::coroutine_handle<> continuation_;
  TaskCore* task_ = nullptr;                        // set when this frame is the root of a task
  std::coroutine_handle<>* next_slot_ = nullptr;  // the trampoline slot of the task running us
  std::exception_ptr exception_;
  bool started_ = false;
  bool taken_ = false;

 protected:
  void check_take() {
    if (taken_) throw RuntimeError("this Async was already awaited: its result was taken");
    taken_ = true;
    if (exception_) std::rethrow_exception(exception_);
  }
};

template <class T>
class AsyncPromise final : public AsyncPromiseBase {
 public:
  Async<T> get_return_object() noexcept;
  template <class U = T>
    requires std::is_constructible_v<T, U&&>
  void return_value(U&& value) {
    value_.emplace(std::forward<U>(value));
  }
  T take() {
    check_take();
    return std::move(*value_);
  }
  // For a task: the outcome stays here until the task moves it out.
  std::optional<T>& value() noexcept { return value_; }

 private:
  std::optional<T> value_;
};

template <>
class AsyncPromise<void> final : public AsyncPromiseBase {
 public:
  Async<void> get_return_object() noexcept;
  void return_void() const noexcept {}
  void take() { check_take(); }
};

}  // namespace detail

// A lazy coroutine, asyncio's `async def f() -> T`. Nothing runs until it is
// awaited (the awaiting coroutine resumes it on the same thread, by symmetric
// transfer) or handed to create_task. Move-only; its frame is one heap block,
// owned by this object until a task adopts it; destroying an Async destroys the
// frame and, with it, the locals of a suspended body. It can be awaited once:
// `co_await` yields the returned value or rethrows what the body threw.
template <class T>
class [[nodiscard]] Async {
 public:
  using promise_type = detail::AsyncPromise<T>;
  using value_type = T;

  Async() noexcept = default;
  explicit Async(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
  Async(Async&& other) noexcept : h_(std::exchange(other.h_, {})) {}
  Async& operator=(Async&& other) noexcept {
    if (this != &other) {
      if (h_) h_.destroy();
      h_ = std::exchange(other.h_, {});
    }
    return *this;
  }
  Async(const Async&) = delete;
  Async& operator=(const Async&) = delete;
  ~Async() {
    if (h_) h_.destroy();
  }

  // False for a moved-from Async, or one whose frame a task adopted.
  bool valid() const noexcept { return static_cast<bool>(h_); }

  class Awaiter {
   public:
    explicit Awaiter(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
    bool await_ready() const noexcept { return !h_ || h_.done(); }
    template <class AwaitingPromise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<AwaitingPromise> awaiting) {
      auto& promise = h_.promise();
      if (promise.started_) throw RuntimeError("this Async is already being awaited");
      promise.started_ = true;
      promise.continuation_ = awaiting;
      if constexpr (std::is_base_of_v<detail::AsyncPromiseBase, AwaitingPromise>) {
        std::coroutine_handle<>* slot = awaiting.promise().next_slot_;
        if (slot != nullptr) {
          promise.next_slot_ = slot;
          *slot = h_;
          return std::noop_coroutine();  // back to the task's step loop, which resumes h_
        }
      }
      return h_;
    }
    T await_resume() {
      if (!h_) throw RuntimeError("co_await on an empty Async (moved from, or adopted by a task)");
      return h_.promise().take();
    }

   private:
    std::coroutine_handle<promise_type> h_;
  };

  Awaiter operator co_await() & noexcept { return Awaiter(h_); }
  Awaiter operator co_await() && noexcept { return Awaiter(h_); }

  // Gives up ownership of the frame (used by create_task).
  std::coroutine_handle<promise_type> release() noexcept { return std::exchange(h_, {}); }

 private:
  std::coroutine_handle<promise_type> h_;
};

namespace detail {
template <class T>
Async<T> AsyncPromise<T>::get_return_object() noexcept {
  return Async<T>(std::coroutine_handle<AsyncPromise<T>>::from_promise(*this));
}
inline Async<void> AsyncPromise<void>::get_return_object() noexcept {
  return Async<void>(std::coroutine_handle<AsyncPromise<void>>::from_promise(*this));
}
}  // namespace detail

namespace detail {
template <class T>
inline constexpr bool is_async_v = false;
template <class T>
inline constexpr bool is_async_v<Async<T>> = true;

// What call_soon, call_later, call_at, call_soon_threadsafe and
// run_in_executor accept: a callable whose result is not an Async. Calling a
// coroutine function there would create the coroutine and destroy it unrun;
// asyncio raises TypeError("coroutines cannot be used with call_soon()") in
// debug mode (item 94), uvaio refuses to compile. Use create_task().
template <class R>
concept not_a_coroutine = !is_async_v<std::remove_cvref_t<R>>;
}  // namespace detail

}  // namespace uvaio
