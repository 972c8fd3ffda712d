#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <uv.h>

#include "intrusive.hpp"
#include "io_resource.hpp"
#include "mailbox.hpp"
#include "uvaio/detail/core.hpp"
#include "uvaio/detail/work_item.hpp"
#include "uvaio/executor.hpp"
#include "uvaio/future.hpp"
#include "uvaio/loop.hpp"

namespace uvaio::detail {

// Everything behind uvaio::Loop. One iteration follows asyncio's _run_once:
// poll libuv (blocking only when nothing is ready), move the timers that are due
// onto the ready queue in deadline order, then run exactly the entries that were
// ready at that point. libuv callbacks (the wake-up async, after_work, the wake
// timer) only move things onto the ready queue; user code runs in one place.
class LoopImpl {
 public:
  LoopImpl(Loop& owner, const LoopOptions& options);
  LoopImpl(const LoopImpl&) = delete;
  LoopImpl& operator=(const LoopImpl&) = delete;
  ~LoopImpl();

  void run_forever();
  // The refusals of run_forever/run_until_complete, asyncio's wording.
  void check_can_run() const;
  void run_until_done(FutureCore& future);
  void stop() noexcept { stopping_ = true; }
  void close();

  void push_ready(Runnable& entry) noexcept;
  void post_threadsafe(Runnable& entry);
  // May throw std::bad_alloc (the heap grows); then nothing changed.
  void add_timer(TimerNode& node, TimePoint deadline);
  void remove_timer(TimerNode& node) noexcept;

  void link_future(FutureCore& future) noexcept;
  void unlink_future(FutureCore& future) noexcept;
  void link_pending(TaskCore& task) noexcept;
  void unlink_pending(TaskCore& task) noexcept;
  std::vector<TaskCore*> pending_tasks() const;

  // I/O objects with open handles (io.hpp); close() closes them first.
  void register_io(IoResource& resource) noexcept { io_.push_front(resource); }
  void unregister_io(IoResource& resource) noexcept { io_.remove(resource); }

  // add_signal_handler's watchers, one per signal (lib/signal.cpp).
  std::unordered_map<int, class SignalWatcher*> signal_watchers_;

  void link_work(WorkItemBase& item) noexcept;
  void unlink_work(WorkItemBase& item) noexcept;
  std::size_t in_flight_for(const Executor* executor) const noexcept;
  void cancel_work_for(const Executor* executor) noexcept;
  std::shared_ptr<Executor>& default_executor();

  // Throws if the loop cannot take new work (closed; wrong thread in debug mode).
  void check_usable(const char* method) const;
  void report(const ExceptionContext& context) noexcept;
  // Debug mode's record of where futures and tasks were created.
  void remember_creation(const FutureCore& future, SourceLocation where) noexcept;
  SourceLocation created_at(const FutureCore& future) const noexcept;
  bool on_loop_thread() const noexcept;
  bool accepting() const noexcept { return !closed_; }
  bool closing() const noexcept { return closing_ || closed_; }

  Loop& owner_;
  uv_loop_t uv_{};
  Mailbox* mailbox_ = nullptr;

  // Read by other threads (debug-mode thread checks, executors): atomic.
  std::atomic<bool> running_{false};
  bool stopping_ = false;
  bool closing_ = false;
  bool closed_ = false;
  bool debug_ = false;
  Duration slow_callback_duration_;
  std::atomic<std::thread::id> thread_{};
  ExceptionHandler handler_;

  std::shared_ptr<Executor> default_executor_;
  bool executor_shutdown_called_ = false;
  std::size_t default_in_flight_ = 0;
  std::vector<Future<bool>> drain_waiters_;
  // Filled only in debug mode, so that other loops pay nothing per future;
  // an entry goes when its future is unlinked.
  std::unordered_map<const FutureCore*, SourceLocation> created_at_;

 private:
  // Stops run_until_done's loop one iteration after the future completed, as
  // asyncio's done callback does; ignored if that run already returned.
  class StopEntry final : public Runnable {
   public:
    explicit StopEntry(LoopImpl& loop) noexcept : loop_(loop) {}
    void run() noexcept override;
    void discard() noexcept override { queued_ = false; }
    const void* target_ = nullptr;
    bool queued_ = false;

   private:
    LoopImpl& loop_;
  };

  void run_once() noexcept;
  void run_ready() noexcept;
  void run_entry(Runnable& entry) noexcept;
  void move_due_timers() noexcept;
  void drain_mailbox() noexcept;
  void discard_ready() noexcept;
  void drop_timers() noexcept;
  void destroy_pending_tasks() noexcept;
  void wait_for_work_in_flight() noexcept;
  void close_io() noexcept;
  void close_handles() noexcept;

  bool timer_less(const TimerNode* a, const TimerNode* b) const noexcept;
  void sift_up(std::size_t index) noexcept;
  void sift_down(std::size_t index) noexcept;
  void place(std::size_t index, TimerNode* node) noexcept;

  static void on_wakeup(uv_async_t* handle);
  static void on_wake_timer(uv_timer_t* handle);

  uv_async_t wakeup_{};
  uv_timer_t wake_timer_{};
  bool wake_timer_armed_ = false;
  // While callbacks are ready, libuv is polled (without blocking) on one
  // iteration in kPollEvery, and at least every kMaxPollGap (see run_once).
  static constexpr std::uint32_t kPollEvery = 32;
  static constexpr Duration kMaxPollGap = std::chrono::microseconds(500);
  std::uint32_t polls_skipped_ = 0;
  TimePoint last_poll_{};

  RunnableFifo ready_;

  std::vector<TimerNode*> timers_;
  std::uint64_t next_timer_seq_ = 0;

  StopEntry stop_entry_{*this};
  const void* until_token_ = nullptr;

  IntrusiveList<FutureCore, &FutureCore::prev_live_, &FutureCore::next_live_> live_;
  IntrusiveList<TaskCore, &TaskCore::prev_pending_, &TaskCore::next_pending_> pending_;
  IntrusiveList<WorkItemBase, &WorkItemBase::prev_in_flight_, &WorkItemBase::next_in_flight_> in_flight_;
  IntrusiveList<IoResource, &IoResource::prev_io_, &IoResource::next_io_> io_;
};

#if defined(__GNUC__) && !defined(_WIN32)
#define UVAIO_TLS_MODEL __attribute__((tls_model("initial-exec")))
#else
#define UVAIO_TLS_MODEL
#endif

// The thread's running loop and current task.
extern UVAIO_TLS_MODEL thread_local LoopImpl* t_running_loop;
extern UVAIO_TLS_MODEL thread_local TaskCore* t_current_task;

std::string describe_exception(const std::exception_ptr& error);
// LoopOptions::threadpool_size: sets UV_THREADPOOL_SIZE if libuv's pool has not
// started, warns if it has with another size. ValueError outside 1..1024.
void request_threadpool_size(unsigned size);
std::string format_seconds(Duration d);

}  // namespace uvaio::detail
