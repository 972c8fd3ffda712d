#pragma once

#include <coroutine>
#include <cstdint>
#include <string>

#include "uvaio/detail/core.hpp"
#include "uvaio/export.hpp"

namespace uvaio {

namespace detail {

// The awaiter behind sleep(): it lives in the sleeping coroutine's frame and is
// itself the node in the loop's timer heap, so a pending sleep allocates
// nothing. Cancelling the task takes the timer out at once.
class UVAIO_API SleepAwaiter final : public Cancellable, public TimerNode {
 public:
  explicit SleepAwaiter(Duration delay) noexcept : delay_(delay) {}
  SleepAwaiter(const SleepAwaiter&) = delete;
  SleepAwaiter& operator=(const SleepAwaiter&) = delete;
  ~SleepAwaiter() override;

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h);
  void await_resume();

  bool cancel(std::string message) override;
  void on_timer() noexcept override;

 private:
  enum class State : std::uint8_t { idle, armed, yielded, fired, cancelled };
  Duration delay_;
  TaskCore* task_ = nullptr;
  LoopImpl* loop_ = nullptr;
  State state_ = State::idle;
  std::string message_;
};

}  // namespace detail

// asyncio.sleep: suspends the current task for at least `delay` (never early;
// libuv's millisecond timers are rounded up). sleep(0s), or any delay <= 0,
// yields to the loop exactly once: everything already queued runs first.
// Must be awaited inside a task (RuntimeError otherwise); cancellable.
inline detail::SleepAwaiter sleep(Duration delay) noexcept { return detail::SleepAwaiter(delay); }

}  // namespace uvaio
