#pragma once

// Waiting for several futures at once: the machinery under gather, wait,
// wait_for and TaskGroup. A WaitSet lives in the awaiting coroutine's frame; it
// puts one DoneNode on each child (one allocation for all of them) and an
// optional deadline in the loop's timer heap.

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "uvaio/detail/core.hpp"
#include "uvaio/export.hpp"

namespace uvaio::detail {

class UVAIO_API WaitSet final : public Cancellable, public TimerNode {
 public:
  // When the wait is over.
  enum class Until : std::uint8_t {
    all_completed,    // every child is done
    first_completed,  // one child is done
    first_exception,  // one child failed with an exception (not a cancellation), or all are done
    first_failure,    // one child failed or was cancelled, or all are done (gather)
  };
  // What cancelling the waiting task does.
  enum class OnCancel : std::uint8_t {
    stop_waiting,            // the children go on; the waiter gets CancelledError at once (wait)
    cancel_children_and_wait,  // every child is cancelled; CancelledError once all are done (gather)
  };

  WaitSet(std::vector<FutureCore*> children, Until until, OnCancel on_cancel,
          std::optional<TimePoint> deadline = std::nullopt);
  WaitSet(const WaitSet&) = delete;
  WaitSet& operator=(const WaitSet&) = delete;
  ~WaitSet() override;

  bool await_ready() noexcept;
  bool await_suspend(std::coroutine_handle<> h);
  // Throws CancelledError if the waiting task was cancelled.
  void await_resume();

  bool cancel(std::string message) override;
  void on_timer() noexcept override;

  bool timed_out() const noexcept { return timed_out_; }
  // The child that failed first (exception or cancellation), if any did.
  std::optional<std::size_t> first_failure() const noexcept { return first_failure_; }
  std::size_t size() const noexcept { return children_.size(); }

 private:
  class Node;
  enum class State : std::uint8_t { idle, waiting, satisfied, cancelling, cancelled };

  void child_done(std::size_t index) noexcept;
  bool condition_met() const noexcept;
  void finish(State state) noexcept;
  void unlink_all() noexcept;

  std::vector<FutureCore*> children_;
  std::unique_ptr<Node[]> nodes_;
  Until until_;
  OnCancel on_cancel_;
  std::optional<TimePoint> deadline_;
  TaskCore* task_ = nullptr;
  LoopImpl* loop_ = nullptr;
  State state_ = State::idle;
  std::size_t done_ = 0;
  bool any_exception_ = false;
  bool timed_out_ = false;
  std::optional<std::size_t> first_failure_;
  std::string cancel_message_;
};

}  // namespace uvaio::detail
