#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "uvaio/async.hpp"
#include "uvaio/export.hpp"
#include "uvaio/loop.hpp"
#include "uvaio/task.hpp"

namespace uvaio {

struct RunOptions {
  // Debug mode; unset: from the environment variable UVAIO_DEBUG.
  std::optional<bool> debug{};
  Duration slow_callback_duration = std::chrono::milliseconds(100);
  // How long closing waits for the default executor's work before it warns and
  // goes on; unset: no limit. asyncio uses five minutes.
  std::optional<Duration> executor_shutdown_timeout = std::chrono::minutes(5);
  // libuv's threadpool size, as LoopOptions::threadpool_size.
  std::optional<unsigned> threadpool_size{};
};

namespace detail {
// Runner::run's SIGINT handler, installed for the length of one run().
class UVAIO_API SigintGuard {
 public:
  SigintGuard(Loop& loop, TaskRef main_task);
  SigintGuard(const SigintGuard&) = delete;
  SigintGuard& operator=(const SigintGuard&) = delete;
  ~SigintGuard();
  // KeyboardInterrupt if a SIGINT cancelled the main task and no one else did.
  void throw_if_interrupted();

 private:
  struct State;
  std::shared_ptr<State> state_;
};
}  // namespace detail

// asyncio.Runner: one loop, created on first use, reused by several run()
// calls, finalized by close() or the destructor as uvaio::run() does. Use it
// from one thread; run() cannot be called from inside a running loop.
class UVAIO_API Runner {
 public:
  explicit Runner(RunOptions options = {});
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;
  ~Runner();

  // Runs coro to completion on the runner's loop and returns its result or
  // rethrows its exception. RuntimeError("Runner is closed") after close().
  // Ctrl-C, as asyncio.Runner: on the main thread, and only if SIGINT has its
  // default action, a SIGINT during run() cancels the main task and restores
  // the default action (so a second SIGINT ends the process even if the loop
  // is stuck). If the task then ends cancelled, run() throws KeyboardInterrupt
  // -- unless it was also cancelled by someone else (uncancel() stays above
  // 0): then CancelledError. The default action is back when run() returns.
  template <class T>
  T run(Async<T> coro) {
    Loop& loop = loop_for_run();
    Task<T> task = loop.create_task(std::move(coro));
    detail::SigintGuard sigint(loop, task);
    try {
      return loop.run_until_complete(std::move(task));
    } catch (const CancelledError&) {
      sigint.throw_if_interrupted();
      throw;
    }
  }
  Loop& get_loop();
  // Cancels the tasks still pending and lets them unwind, reports those that
  // failed, shuts the default executor down, closes the loop. Idempotent.
  void close();

 private:
  Loop& loop_for_run();
  RunOptions options_;
  std::unique_ptr<Loop> loop_;
  bool closed_ = false;
};

// asyncio.run: a new loop runs main; then, in asyncio's order, the tasks still
// pending are cancelled and awaited, the default executor is shut down (with
// options.executor_shutdown_timeout), and the loop is closed. Returns main's
// value or rethrows its exception. RuntimeError("uvaio::run() cannot be called
// from a running event loop") inside a loop.
template <class T>
T run(Async<T> main, RunOptions options = {}) {
  if (detail::running_loop_impl() != nullptr) {
    throw RuntimeError("uvaio::run() cannot be called from a running event loop");
  }
  Runner runner(std::move(options));
  if constexpr (std::is_void_v<T>) {
    runner.run(std::move(main));
    runner.close();
  } else {
    T result = runner.run(std::move(main));
    runner.close();
    return result;
  }
}

}  // namespace uvaio
