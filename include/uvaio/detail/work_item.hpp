#pragma once

// One submitted run_in_executor / to_thread call: the future the caller awaits,
// the uv_work_t, the callable, its arguments and the result slot, in one heap
// block.
//
// Ownership. Two sides own the block: the loop side (every Future handle,
// counted by FutureCore, released on the loop thread) and the executor side
// (libuv from uv_queue_work until after_work, or the Work object and then the
// loop's mailbox). Whichever side lets go last frees it, so nothing is freed
// while a worker may still touch it. While the item is in flight the loop also
// holds one reference to the future, so that done callbacks still run when
// nobody keeps a handle (asyncio keeps such a future alive the same way).
//
// Threads. A worker touches only the callable, the arguments, the value slot
// and error_, and flips phase_ queued -> running -> finished. The loop thread
// reads them only after the completion reached it (after_work, or the mailbox's
// mutex), which orders the worker's writes before its reads.

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <utility>

#include <uv.h>

#include "uvaio/detail/core.hpp"
#include "uvaio/future.hpp"

namespace uvaio {
class Executor;
}

namespace uvaio::detail {

class Mailbox;

class UVAIO_API WorkItemBase : public Runnable {
 public:
  enum Phase : std::uint8_t { queued, running, finished, dropped };

  explicit WorkItemBase(LoopImpl& loop);

  // Worker thread: runs the callable unless the item was cancelled first.
  void invoke_on_worker() noexcept;
  // Any thread (Work): the executor is done with the item; hand it back to the
  // loop through its mailbox, or let go of it if that loop is gone.
  void post_completion() noexcept;
  // Loop thread: the executor side is done. Delivers the outcome to the future
  // unless it was cancelled or the loop is closing, then lets go of the item.
  void complete_on_loop() noexcept;
  // Loop thread: the future was cancelled (or the loop closes). Work that has
  // not started never runs; running work is asked to stop through its token.
  void cancel_work() noexcept;
  // Loop thread, loop closing: the future ends cancelled (no callback runs
  // any more) and the work is cancelled as above.
  void abandon() noexcept;
  // One side is done with the item; the last one frees it.
  void release_owner() noexcept;

  void run() noexcept override { complete_on_loop(); }
  void discard() noexcept override { complete_on_loop(); }
  std::string describe() const override;

  Phase phase() const noexcept { return static_cast<Phase>(phase_.load(std::memory_order_acquire)); }
  virtual FutureCore& future_core() noexcept = 0;

  uv_work_t uv_req_{};
  LoopImpl* work_loop_;
  Executor* executor_ = nullptr;
  bool uv_queued_ = false;
  bool via_default_ = false;
  bool in_flight_ = false;
  WorkItemBase* prev_in_flight_ = nullptr;
  WorkItemBase* next_in_flight_ = nullptr;

 protected:
  ~WorkItemBase() override;
  virtual void call() noexcept = 0;
  virtual void deliver() noexcept = 0;
  // The outcome will never be delivered: destroy it now, on the loop thread.
  virtual void discard_outcome() noexcept = 0;
  virtual void request_stop() noexcept = 0;
  virtual void delete_item() noexcept = 0;

 private:
  std::atomic<std::uint8_t> phase_{queued};
  std::atomic<std::uint8_t> owners_{2};
  Mailbox* mailbox_;
};

template <class F, class... Args>
inline constexpr bool takes_stop_token_v = std::is_invocable_v<F, std::stop_token, Args...>;

template <class F, class... Args>
struct work_result {
  using type = std::decay_t<std::invoke_result_t<F, Args...>>;
};
template <class F, class... Args>
  requires takes_stop_token_v<F, Args...>
struct work_result<F, Args...> {
  using type = std::decay_t<std::invoke_result_t<F, std::stop_token, Args...>>;
};
template <class F, class... Args>
using work_result_t = typename work_result<F, Args...>::type;

template <class R, class F, class... Args>
class WorkItem final : public FutureState<R>, public WorkItemBase {
 public:
  template <class G, class... A>
  WorkItem(LoopImpl& loop, G&& fn, A&&... args)
      : FutureState<R>(&loop),
        WorkItemBase(loop),
        fn_(std::forward<G>(fn)),
        args_(std::forward<A>(args)...),
        stop_(make_stop_source()) {}

 private:
  static constexpr bool with_token = takes_stop_token_v<F, Args...>;

  static std::stop_source make_stop_source() {
    if constexpr (with_token) {
      return std::stop_source();
    } else {
      return std::stop_source(std::nostopstate);  // allocates nothing
    }
  }

  decltype(auto) invoke() {
    return std::apply(
        [this](Args&... args) -> decltype(auto) {
          if constexpr (with_token) {
            return std::invoke(std::move(fn_), stop_.get_token(), std::move(args)...);
          } else {
            return std::invoke(std::move(fn_), std::move(args)...);
          }
        },
        args_);
  }

  void call() noexcept override {
    // A callable that mirrors another future (wrap_future) reports that the
    // source was cancelled: the item then ends cancelled, not failed.
    try {
      if constexpr (requires(const F& f) { f.source_cancelled(); }) {
        if (fn_.source_cancelled()) {
          source_cancelled_ = true;
          return;
        }
      }
      if constexpr (std::is_void_v<R>) {
        invoke();
      } else {
        this->value_.emplace(invoke());
      }
    } catch (...) {
      error_ = std::current_exception();
    }
  }
  void deliver() noexcept override {
    if (source_cancelled_) {
      this->set_cancelled_unchecked({});
    } else if (error_) {
      this->set_exception_unchecked(std::move(error_));
    } else {
      this->mark_result_set();
    }
  }
  void discard_outcome() noexcept override {
    if constexpr (!std::is_void_v<R>) this->value_.value.reset();
    error_ = nullptr;
  }
  FutureCore& future_core() noexcept override { return *this; }
  void request_stop() noexcept override {
    if constexpr (with_token) stop_.request_stop();
  }
  void on_cancelled() noexcept override {
    cancel_work();
    // A callable may want to hear of it (wrap_future cancels its source).
    if constexpr (requires(F& f) { f.on_cancel(); }) fn_.on_cancel();
  }
  void destroy() noexcept override { release_owner(); }
  void delete_item() noexcept override { delete this; }

  F fn_;
  std::tuple<Args...> args_;
  std::exception_ptr error_;
  std::stop_source stop_;
  bool source_cancelled_ = false;
};

// Hands a new item to `executor` (null: the loop's default executor).
UVAIO_API void submit_work(LoopImpl& loop, Executor* executor, WorkItemBase& item);
// Registers an item that no executor runs (wrap_future: the source completes it).
UVAIO_API void link_unexecuted_work(LoopImpl& loop, WorkItemBase& item) noexcept;

}  // namespace uvaio::detail
