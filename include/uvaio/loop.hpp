#pragma once

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include <uv.h>

#include "uvaio/async.hpp"
#include "uvaio/detail/core.hpp"
#include "uvaio/detail/work_item.hpp"
#include "uvaio/executor.hpp"
#include "uvaio/export.hpp"
#include "uvaio/future.hpp"
#include "uvaio/handle.hpp"
#include "uvaio/task.hpp"

namespace uvaio {

struct LoopOptions {
  // Debug mode (thread checks, slow-callback reports). Unset: on when the
  // environment variable UVAIO_DEBUG is set to a non-empty value other than 0.
  std::optional<bool> debug{};
  // In debug mode, callbacks and task steps at least this slow are logged.
  Duration slow_callback_duration = std::chrono::milliseconds(100);
  // The size of libuv's threadpool (the default executor). libuv reads it once,
  // from UV_THREADPOOL_SIZE, when the pool first runs anything in the process;
  // set here, it is put in the environment before that. Once the pool has
  // started, a different size is too late: a warning says so. See
  // uvaio::libuv_threadpool_size().
  std::optional<unsigned> threadpool_size{};
};

// What the loop's exception handler receives (asyncio's context dict).
struct ExceptionContext {
  std::string message;
  std::exception_ptr exception;  // may be null
  std::string task_name;         // empty when no task is involved
  // Where the task or future involved was created (asyncio's
  // source_traceback); known only in debug mode, for tasks from create_task()
  // (Loop, free, TaskGroup), run_coroutine_threadsafe() and futures from
  // create_future(). Callbacks (call_soon, call_later) record none.
  SourceLocation created_at{};
};

using ExceptionHandler = std::function<void(Loop&, const ExceptionContext&)>;

// asyncio's event loop, owning one uv_loop_t. Not copyable, not movable; one
// thread runs it at a time, and only that thread may call its methods, except
// call_soon_threadsafe (any thread) -- in debug mode the others check. It owns
// every pending task, every timer and every libuv handle it opened.
// close() (or the destructor) destroys pending tasks, waits for work still
// running on libuv's threadpool, closes every handle and makes uv_loop_close
// succeed. Callbacks never let an exception through libuv: it goes to the
// exception handler (default: logged through spdlog).
class UVAIO_API Loop {
 public:
  Loop();
  explicit Loop(LoopOptions options);
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;
  ~Loop();

  // Runs the loop until the coroutine (wrapped in a task), task or future is
  // done, and returns its result or rethrows its exception. Throws
  // RuntimeError("Event loop stopped before Future completed.") if stop() came
  // first; the task then stays pending. A Task/Future passed as an lvalue has
  // its result copied out; as an rvalue, moved out.
  template <class T>
  T run_until_complete(Async<T> coro) {
    check_can_run();  // before a task exists, so that a refused call schedules nothing
    Task<T> task = create_task(std::move(coro));
    run_until_done(*task.state());
    return result_of<T, true>(task);
  }
  template <class T>
  T run_until_complete(const Task<T>& task) {
    run_until_done(checked_state(task));
    return result_of<T, false>(task);
  }
  template <class T>
  T run_until_complete(Task<T>&& task) {
    run_until_done(checked_state(task));
    return result_of<T, true>(task);
  }
  template <class T>
  T run_until_complete(const Future<T>& future) {
    run_until_done(checked_state(future));
    return result_of<T, false>(future);
  }
  template <class T>
  T run_until_complete(Future<T>&& future) {
    run_until_done(checked_state(future));
    return result_of<T, true>(future);
  }

  // Runs until stop(). stop() takes effect at the end of the current
  // iteration; called before run_forever(), it makes it run one iteration
  // whose poll does not block.
  void run_forever();
  void stop() noexcept;
  // Idempotent; RuntimeError("Cannot close a running event loop") while running.
  void close();
  bool is_running() const noexcept;
  bool is_closed() const noexcept;

  // Schedules fn() for the next iteration, after what is already queued (FIFO).
  template <class F>
    requires std::invocable<std::decay_t<F>&> && detail::not_a_coroutine<std::invoke_result_t<std::decay_t<F>&>>
  Handle call_soon(F&& fn) {
    detail::check_usable(impl_, "call_soon");
    auto* core = new detail::CallbackImpl<detail::CallbackCore, std::decay_t<F>>(impl_, std::forward<F>(fn));
    Handle handle(core);
    core->add_ref();
    detail::push_ready(*impl_, *core);
    return handle;
  }
  // call_soon from any thread; wakes the loop. Calls from one thread run in the
  // order they were made, in the same queue as call_soon. RuntimeError("Event
  // loop is closed") once closed.
  template <class F>
    requires std::invocable<std::decay_t<F>&> && detail::not_a_coroutine<std::invoke_result_t<std::decay_t<F>&>>
  Handle call_soon_threadsafe(F&& fn) {
    auto* core = new detail::CallbackImpl<detail::CallbackCore, std::decay_t<F>>(impl_, std::forward<F>(fn));
    Handle handle(core);
    core->add_ref();
    post_threadsafe(*core);
    return handle;
  }
  // fn() runs once `delay` has passed (never early: libuv's millisecond timers
  // are rounded up and checked against the steady clock), on a later iteration
  // even for a zero or negative delay; equal deadlines run in scheduling order.
  template <class F>
    requires std::invocable<std::decay_t<F>&> && detail::not_a_coroutine<std::invoke_result_t<std::decay_t<F>&>>
  TimerHandle call_later(Duration delay, F&& fn) {
    return call_at(detail::deadline_after(delay), std::forward<F>(fn));
  }
  template <class F>
    requires std::invocable<std::decay_t<F>&> && detail::not_a_coroutine<std::invoke_result_t<std::decay_t<F>&>>
  TimerHandle call_at(TimePoint when, F&& fn) {
    detail::check_usable(impl_, "call_at");
    auto* core = new detail::CallbackImpl<detail::TimerCore, std::decay_t<F>>(impl_, std::forward<F>(fn));
    TimerHandle handle(core);
    detail::add_timer(*impl_, *core, when);  // bad_alloc: the handle frees the callback
    core->add_ref();                         // the timer heap's
    return handle;
  }
  // asyncio's add_signal_handler: after each delivery of `signum`, callback()
  // runs on the loop thread through the ready queue (an exception goes to the
  // exception handler). Over libuv's uv_signal_t: any thread's signal reaches
  // every loop watching it; the kernel may merge deliveries that arrive
  // together. Replaces this loop's earlier handler for signum. ValueError for
  // a number outside 1..NSIG-1, RuntimeError("sig 9 cannot be caught") for
  // SIGKILL and SIGSTOP. While any libuv watcher has the signal, libuv owns its
  // disposition; when the last one goes, it is SIG_DFL again.
  template <class F>
    requires std::invocable<std::decay_t<F>&> && detail::not_a_coroutine<std::invoke_result_t<std::decay_t<F>&>>
  void add_signal_handler(int signum, F&& callback) {
    add_signal_handler_impl(signum, std::function<void()>(std::forward<F>(callback)));
  }
  // True if this loop had a handler for signum (it is gone now).
  bool remove_signal_handler(int signum);

  // The loop's clock: std::chrono::steady_clock, read fresh at every call.
  TimePoint time() const noexcept { return Clock::now(); }

  // In debug mode the loop remembers `where` (the caller's position by
  // default) as the place the task or future was created, and its reports
  // name it; outside debug mode nothing is stored.
  template <class T>
  Task<T> create_task(Async<T> coro, std::string name = {}, SourceLocation where = SourceLocation::current()) {
    return detail::make_task(*impl_, std::move(coro), std::move(name), where);
  }
  template <class T = void>
  Future<T> create_future(SourceLocation where = SourceLocation::current()) {
    detail::check_usable(impl_, "create_future");
    Future<T> future(detail::adopt, new detail::FutureState<T>(impl_));
    detail::remember_creation(*impl_, *future.state(), where);
    return future;
  }

  // Runs fn(args...) on `executor` (null: the default executor, libuv's
  // threadpool) and returns a future for its result, completed on this loop's
  // thread. If fn's first parameter is a std::stop_token it receives one, and
  // cancelling the future requests stop. Cancelling before the work started
  // means fn never runs. Exceptions of any type arrive intact at the awaiter.
  // RuntimeError("Executor shutdown has been called") for the default executor
  // after shutdown_default_executor().
  template <class F, class... Args>
    requires detail::not_a_coroutine<detail::work_result_t<std::decay_t<F>, std::decay_t<Args>...>>
  [[nodiscard]] Future<detail::work_result_t<std::decay_t<F>, std::decay_t<Args>...>> run_in_executor(
      Executor* executor, F&& fn, Args&&... args) {
    using R = detail::work_result_t<std::decay_t<F>, std::decay_t<Args>...>;
    detail::check_usable(impl_, "run_in_executor");
    auto* item = new detail::WorkItem<R, std::decay_t<F>, std::decay_t<Args>...>(
        *impl_, std::forward<F>(fn), std::forward<Args>(args)...);
    Future<R> future(detail::adopt, item);
    detail::submit_work(*impl_, executor, *item);
    return future;
  }
  // Replaces the default executor (the old one is not shut down).
  void set_default_executor(std::shared_ptr<Executor> executor);
  // The default executor, created on first use (a UvWorkExecutor).
  std::shared_ptr<Executor> default_executor();
  // Waits (without blocking the loop) until the work submitted to the default
  // executor has finished, then shuts that executor down. With a timeout that
  // expires it logs a warning and returns. Afterwards, default-executor
  // submissions throw; calling it again is a no-op.
  Async<void> shutdown_default_executor(std::optional<Duration> timeout = std::nullopt);

  void set_debug(bool enabled) noexcept;
  bool get_debug() const noexcept;
  void set_slow_callback_duration(Duration duration) noexcept;
  Duration slow_callback_duration() const noexcept;

  // nullptr restores the default handler (log through spdlog).
  void set_exception_handler(ExceptionHandler handler);
  const ExceptionHandler& get_exception_handler() const noexcept;
  // Calls the handler; if it throws, logs that and the original context.
  void call_exception_handler(const ExceptionContext& context) noexcept;
  void default_exception_handler(const ExceptionContext& context) noexcept;

  // The underlying libuv loop, for handles uvaio does not wrap. close() closes
  // every handle still open on it.
  uv_loop_t* native() noexcept;
  detail::LoopImpl& impl() noexcept { return *impl_; }

 private:
  void check_can_run() const;
  void run_until_done(detail::FutureCore& future);
  void add_signal_handler_impl(int signum, std::function<void()> callback);
  void post_threadsafe(detail::CallbackCore& core);
  template <class T, bool Move, class H>
  static T result_of(const H& handle) {
    if constexpr (std::is_void_v<T>) {
      handle.result();
    } else if constexpr (Move) {
      return T(std::move(handle.result()));
    } else {
      return T(handle.result());
    }
  }
  template <class H>
  static detail::FutureCore& checked_state(const H& handle) {
    if (!handle) detail::throw_empty_handle("Future");
    return *handle.state();
  }

  detail::LoopImpl* impl_;
};

// The loop running on this thread; RuntimeError("no running event loop") if none.
UVAIO_API Loop& get_running_loop();

}  // namespace uvaio
