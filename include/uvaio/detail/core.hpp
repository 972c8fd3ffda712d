#pragma once

// The non-template machinery that Future, Task, Handle and the awaiters share.
// Everything here lives on one loop's thread unless a comment says otherwise;
// the implementations are in lib/.

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <utility>

#include "uvaio/errors.hpp"
#include "uvaio/export.hpp"
#include "uvaio/source_location.hpp"

namespace uvaio {

class Loop;

using Clock = std::chrono::steady_clock;
using Duration = Clock::duration;
using TimePoint = Clock::time_point;

// Identifies one add_done_callback() registration on one future.
struct CallbackId {
  std::uint64_t value = 0;
  friend bool operator==(const CallbackId&, const CallbackId&) = default;
};

}  // namespace uvaio

namespace uvaio::detail {

class LoopImpl;
class FutureCore;
class TaskCore;

// An entry of the loop's ready queue (or of its thread-safe mailbox). The queue
// owns one reference to the entry: run() or discard() consumes it.
class UVAIO_API Runnable {
 public:
  virtual void run() noexcept = 0;
  virtual void discard() noexcept = 0;
  // For the slow-callback report in debug mode.
  virtual std::string describe() const;

  Runnable* next_runnable_ = nullptr;

 protected:
  Runnable() = default;
  Runnable(const Runnable&) = delete;
  Runnable& operator=(const Runnable&) = delete;
  virtual ~Runnable();
};

// What a task can be blocked on: cancel() is how Task::cancel reaches the
// innermost awaited thing (asyncio's Task._fut_waiter.cancel()).
class UVAIO_API Cancellable {
 public:
  virtual bool cancel(std::string message) = 0;

 protected:
  Cancellable() = default;
  Cancellable(const Cancellable&) = delete;
  Cancellable& operator=(const Cancellable&) = delete;
  virtual ~Cancellable();
};

// An entry in the loop's timer heap. deadline_ and seq_ order it: equal
// deadlines fire in the order they were scheduled.
class UVAIO_API TimerNode {
 public:
  static constexpr std::size_t not_armed = static_cast<std::size_t>(-1);

  // The deadline passed: put whatever should run onto the ready queue.
  virtual void on_timer() noexcept = 0;
  // The loop closed with the timer still armed: it will never fire.
  virtual void on_timer_dropped() noexcept {}
  bool armed() const noexcept { return heap_index_ != not_armed; }

  TimePoint deadline_{};
  std::uint64_t seq_ = 0;
  std::size_t heap_index_ = not_armed;

 protected:
  TimerNode() = default;
  TimerNode(const TimerNode&) = delete;
  TimerNode& operator=(const TimerNode&) = delete;
  virtual ~TimerNode();
};

// A registration in a future's done list, fired in registration order when the
// future completes. Awaiting coroutines put one in their frame (no allocation);
// add_done_callback() allocates one.
class UVAIO_API DoneNode {
 public:
  // The future completed; the node is already unlinked.
  virtual void fire(FutureCore& future) noexcept = 0;
  // The node was removed without firing (remove_done_callback, loop closing).
  virtual void drop() noexcept = 0;
  bool linked() const noexcept { return owner_ != nullptr; }

 protected:
  DoneNode() = default;
  DoneNode(const DoneNode&) = delete;
  DoneNode& operator=(const DoneNode&) = delete;
  virtual ~DoneNode();

 private:
  friend class FutureCore;
  DoneNode* prev_ = nullptr;
  DoneNode* next_ = nullptr;
  FutureCore* owner_ = nullptr;
  std::uint64_t id_ = 0;  // 0 for awaiters, which cannot be removed by id
};

enum class FutureStatus : std::uint8_t { pending, result, exception, cancelled };

// The shared state behind Future<T> and Task<T>, minus the value. Reference
// counted by the handles (not atomically: handles belong to the loop's thread).
class UVAIO_API FutureCore : public Cancellable {
 public:
  explicit FutureCore(LoopImpl* loop);

  void add_ref() noexcept { ++refs_; }
  void release() noexcept {
    if (--refs_ == 0) last_reference_gone();
  }

  // Null once the loop object was destroyed.
  LoopImpl* loop() const noexcept { return loop_; }
  FutureStatus status() const noexcept { return status_; }
  bool done() const noexcept { return status_ != FutureStatus::pending; }
  bool cancelled() const noexcept { return status_ == FutureStatus::cancelled; }
  const std::string& cancel_message() const noexcept { return cancel_message_; }

  // asyncio's Future.cancel(): true if it went from pending to cancelled.
  bool cancel(std::string message) override;
  // Throws InvalidStateError if the future is done.
  void set_exception(std::exception_ptr error);
  // Throws unless there is a result: the stored exception, CancelledError, or
  // InvalidStateError("Result is not set."). Marks an exception as retrieved.
  void check_result();
  // asyncio's Future.exception(): null when there is a result.
  std::exception_ptr exception();

  // Throws InvalidStateError if the future is done (before a value is stored).
  void check_can_set() const;
  // The value was stored by the template: mark the result and schedule callbacks.
  void mark_result_set() noexcept;

  CallbackId add_done_node(DoneNode& node);
  std::size_t remove_done_callback(CallbackId id) noexcept;
  void add_waiter(DoneNode& node) noexcept;
  void remove_waiter(DoneNode& node) noexcept;

  virtual const char* kind() const noexcept { return "Future"; }
  // "Future" or "Task 'name'", for messages.
  virtual std::string describe_future() const;

 protected:
  ~FutureCore() override;

  void set_exception_unchecked(std::exception_ptr error) noexcept;
  void set_cancelled_unchecked(std::string message) noexcept;
  // Hook for work items: the future was cancelled by cancel().
  virtual void on_cancelled() noexcept {}
  // Called once the last handle is gone (after the never-retrieved report).
  virtual void destroy() noexcept;

  bool exception_retrieved_ = false;

 private:
  friend class LoopImpl;
  void complete(FutureStatus status) noexcept;
  void last_reference_gone() noexcept;
  void drop_all_nodes() noexcept;

  LoopImpl* loop_;
  std::uint32_t refs_ = 1;
  FutureStatus status_ = FutureStatus::pending;
  std::exception_ptr exception_;
  std::string cancel_message_;
  DoneNode* first_node_ = nullptr;
  DoneNode* last_node_ = nullptr;
  FutureCore* prev_live_ = nullptr;
  FutureCore* next_live_ = nullptr;
};

// A scheduled coroutine. The loop holds a reference while the task is pending,
// so a task nobody else holds still runs to its end.
class UVAIO_API TaskCore : public FutureCore, public Runnable {
 public:
  TaskCore(LoopImpl* loop, std::coroutine_handle<> root, std::string name);

  // asyncio's Task.cancel(): a request, delivered at the task's suspension point.
  bool cancel(std::string message) override;
  int cancelling() const noexcept { return static_cast<int>(cancels_requested_); }
  int uncancel() noexcept;
  const std::string& name() const noexcept { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  const char* kind() const noexcept override { return "Task"; }
  std::string describe_future() const override;
  std::string describe() const override;

  // --- used by awaiters, from inside this task's step -------------------------
  // A cancel() arrived while the task was running: the awaiter about to suspend
  // cancels what it awaits at once (asyncio bpo-34872). True if one was pending.
  bool take_pending_cancel(std::string& message) noexcept;
  bool cancel_pending() const noexcept { return must_cancel_; }
  // Throws CancelledError if a cancellation arrived after the wake-up.
  void throw_if_cancel_pending() {
    if (must_cancel_) throw_pending_cancel();
  }
  void suspend_on(Cancellable* waiting_on, std::coroutine_handle<> resume_point) noexcept;
  // Put the task's next step on the ready queue.
  void wake() noexcept;

  // The root coroutine finished (called from its final suspend point).
  virtual void on_root_complete() noexcept = 0;
  // Where Async frames of this task leave the next frame to resume (see async.hpp).
  std::coroutine_handle<>* trampoline_slot() noexcept { return &next_to_run_; }

  void run() noexcept override;
  void discard() noexcept override;

 protected:
  ~TaskCore() override;
  // Completes the task from the root's outcome: a null `error` means the
  // value was already stored by the template.
  void finish(std::exception_ptr error) noexcept;
  std::coroutine_handle<> root() const noexcept { return root_; }

 private:
  friend class LoopImpl;
  [[noreturn]] void throw_pending_cancel();
  void step() noexcept;
  void destroy_frame() noexcept;

  std::coroutine_handle<> root_;
  std::coroutine_handle<> resume_point_;
  std::coroutine_handle<> next_to_run_;
  Cancellable* waiting_on_ = nullptr;
  std::string name_;
  std::string must_cancel_message_;
  std::uint32_t cancels_requested_ = 0;
  bool must_cancel_ = false;
  bool started_ = false;
  bool queued_ = false;
  TaskCore* prev_pending_ = nullptr;
  TaskCore* next_pending_ = nullptr;
};

// --- entry points into the loop for header templates ---------------------------

// The loop running on this thread, or null.
UVAIO_API LoopImpl* running_loop_impl() noexcept;
UVAIO_API LoopImpl& impl_of(Loop& loop) noexcept;
UVAIO_API Loop& owner_of(LoopImpl& impl) noexcept;
// The task whose step runs on this thread, or null.
UVAIO_API TaskCore* current_task_core() noexcept;
// Throws RuntimeError("Event loop is closed") or, in debug mode, the wrong-thread error.
UVAIO_API void check_usable(LoopImpl* loop, const char* method);
UVAIO_API void push_ready(LoopImpl& loop, Runnable& entry) noexcept;
// May throw std::bad_alloc when the timer heap has to grow; the node is then not armed.
UVAIO_API void add_timer(LoopImpl& loop, TimerNode& node, TimePoint deadline);
UVAIO_API void remove_timer(LoopImpl& loop, TimerNode& node) noexcept;
// A registered task starts: the loop takes its reference and schedules step one.
UVAIO_API void start_task(LoopImpl& loop, TaskCore& task) noexcept;
// In debug mode the loop remembers where `future` was created, for its reports;
// otherwise (and if remembering cannot allocate) nothing happens.
UVAIO_API void remember_creation(LoopImpl& loop, const FutureCore& future, SourceLocation where) noexcept;
// An exception escaped a callback: hand it to the loop's exception handler.
UVAIO_API void report_callback_exception(LoopImpl* loop, std::exception_ptr error,
                                         const std::string& what) noexcept;
[[noreturn]] UVAIO_API void throw_empty_handle(const char* type);

// A reference to a loop's thread-safe mailbox, which outlives the loop: other
// threads post through it without knowing whether the loop still exists.
class Mailbox;
UVAIO_API Mailbox* acquire_mailbox(LoopImpl& loop) noexcept;
UVAIO_API void release_mailbox(Mailbox* mailbox) noexcept;
// False once the loop closed (the entry is then not taken).
UVAIO_API bool post_to_mailbox(Mailbox* mailbox, Runnable& entry) noexcept;

// --- awaiting a future from a task ---------------------------------------------
// The task about to await `future`; throws RuntimeError outside a task, for a
// task awaiting itself, or for a future of another loop.
UVAIO_API TaskCore& task_awaiting(const FutureCore& future);
// Registers `node` on `future` for the current task; false if the future became
// done meanwhile (the caller resumes at once). Throws on misuse.
UVAIO_API bool suspend_on_future(FutureCore& future, DoneNode& node, std::coroutine_handle<> h,
                                 TaskCore*& task);

// now + delay, saturating instead of overflowing for huge delays.
inline TimePoint deadline_after(Duration delay) noexcept {
  const TimePoint now = Clock::now();
  if (delay > Duration::zero() && now > TimePoint::max() - delay) return TimePoint::max();
  return now + delay;
}

// Storage for a result: a value, or nothing for void.
template <class T>
struct ValueSlot {
  std::optional<T> value;
  template <class... A>
  void emplace(A&&... args) {
    value.emplace(std::forward<A>(args)...);
  }
  T& get() noexcept { return *value; }
};

template <>
struct ValueSlot<void> {
  void emplace() noexcept {}
  void get() noexcept {}
};

}  // namespace uvaio::detail
