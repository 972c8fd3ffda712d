#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>

#include "uvaio/detail/core.hpp"
#include "uvaio/export.hpp"

namespace uvaio {

namespace detail {

// A callback scheduled with call_soon / call_later / call_at /
// call_soon_threadsafe. Its count of references is atomic because the handle of
// a thread-safe call may be used from another thread.
class UVAIO_API CallbackCore : public Runnable {
 public:
  enum State : std::uint8_t { state_pending, state_running, state_finished, state_cancelled };

  explicit CallbackCore(LoopImpl* loop) noexcept : loop_(loop) {}

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept;
  virtual void cancel();
  bool cancelled() const;
  LoopImpl* loop() const noexcept { return loop_; }

  void run() noexcept override;
  void discard() noexcept override;
  std::string describe() const override;

 protected:
  ~CallbackCore() override;
  virtual void invoke() = 0;

 private:
  LoopImpl* loop_;
  std::atomic<std::uint32_t> refs_{1};
  std::atomic<std::uint8_t> state_{state_pending};
  bool cancelled_while_running_ = false;
};

class UVAIO_API TimerCore : public CallbackCore, public TimerNode {
 public:
  using CallbackCore::CallbackCore;
  void cancel() override;
  void on_timer() noexcept override;
  void on_timer_dropped() noexcept override { release(); }
  std::string describe() const override { return "TimerHandle"; }
};

template <class Base, class F>
class CallbackImpl final : public Base {
 public:
  template <class G>
  CallbackImpl(LoopImpl* loop, G&& fn) : Base(loop), fn_(std::forward<G>(fn)) {}

 private:
  void invoke() override { fn_(); }
  F fn_;
};

}  // namespace detail

// asyncio.Handle: what call_soon and call_soon_threadsafe return. cancel()
// before the callback starts means it never runs; cancel() is idempotent.
// The handle of a call_soon_threadsafe callback may be cancelled from any
// thread: if the callback is running at that moment on the loop thread,
// cancel() and cancelled() wait until it returns (asyncio 3.14, gh-128340).
// Other handles belong to the loop's thread. Copies share one callback.
class UVAIO_API Handle {
 public:
  Handle() noexcept = default;
  explicit Handle(detail::CallbackCore* adopt) noexcept : core_(adopt) {}
  Handle(const Handle& other) noexcept;
  Handle(Handle&& other) noexcept : core_(std::exchange(other.core_, nullptr)) {}
  Handle& operator=(const Handle& other) noexcept;
  Handle& operator=(Handle&& other) noexcept;
  ~Handle();

  void cancel() const;
  bool cancelled() const;
  explicit operator bool() const noexcept { return core_ != nullptr; }

 protected:
  detail::CallbackCore* core_ = nullptr;
};

// asyncio.TimerHandle: what call_later and call_at return. cancel() takes the
// timer out of the loop at once (nothing accumulates). Loop thread only.
class UVAIO_API TimerHandle : public Handle {
 public:
  TimerHandle() noexcept = default;
  explicit TimerHandle(detail::TimerCore* adopt) noexcept : Handle(adopt) {}
  // The absolute deadline, on the loop.time() clock.
  TimePoint when() const;
};

}  // namespace uvaio
