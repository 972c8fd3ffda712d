#include "uvaio/runner.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <csignal>
#include <utility>
#include <vector>

#include "log_internal.hpp"
#include "loop_impl.hpp"

namespace uvaio {

namespace {

// Suspends the current task until a task is done, without looking at its result.
class DoneAwaiter final : public detail::DoneNode {
 public:
  explicit DoneAwaiter(detail::FutureCore& future) noexcept : future_(future) {}
  ~DoneAwaiter() override {
    if (linked()) future_.remove_waiter(*this);
  }
  bool await_ready() const noexcept { return future_.done(); }
  bool await_suspend(std::coroutine_handle<> h) { return detail::suspend_on_future(future_, *this, h, task_); }
  void await_resume() {
    if (task_ != nullptr) task_->throw_if_cancel_pending();
  }
  void fire(detail::FutureCore& /*future*/) noexcept override { task_->wake(); }
  void drop() noexcept override {}

 private:
  detail::FutureCore& future_;
  detail::TaskCore* task_ = nullptr;
};

Async<void> wait_until_done(std::vector<TaskRef> tasks) {
  for (TaskRef& task : tasks) {
    co_await DoneAwaiter(*task.core());
  }
}

// asyncio.runners._cancel_all_tasks, then the executor and the loop.
void finalize(Loop& loop, const RunOptions& options) {
  std::vector<TaskRef> tasks;
  for (detail::TaskCore* task : loop.impl().pending_tasks()) tasks.emplace_back(task);
  if (!tasks.empty()) {
    for (const TaskRef& task : tasks) task.cancel();
    loop.run_until_complete(wait_until_done(tasks));
    for (const TaskRef& task : tasks) {
      if (task.cancelled()) continue;
      if (std::exception_ptr error = task.exception()) {
        loop.call_exception_handler({"unhandled exception during uvaio::run() shutdown", error, task.name()});
      }
    }
  }
  loop.run_until_complete(loop.shutdown_default_executor(options.executor_shutdown_timeout));
  loop.close();
}

}  // namespace

namespace detail {

struct SigintGuard::State {
  Loop* loop = nullptr;
  TaskRef main_task;
  int interrupts = 0;
  bool installed = false;
};

namespace {

bool on_main_thread() noexcept { return static_cast<pid_t>(::syscall(SYS_gettid)) == ::getpid(); }

bool sigint_has_default_action() noexcept {
  struct sigaction current {};
  if (::sigaction(SIGINT, nullptr, &current) != 0) return false;
  return (current.sa_flags & SA_SIGINFO) == 0 && current.sa_handler == SIG_DFL;
}

}  // namespace

SigintGuard::SigintGuard(Loop& loop, TaskRef main_task) : state_(std::make_shared<State>()) {
  state_->loop = &loop;
  state_->main_task = std::move(main_task);
  if (!on_main_thread() || !sigint_has_default_action()) return;
  // The callback holds the state weakly: it runs from the ready queue, which
  // may hold it after this guard is gone.
  std::weak_ptr<State> weak = state_;
  try {
    loop.add_signal_handler(SIGINT, [weak] {
      std::shared_ptr<State> state = weak.lock();
      if (!state || !state->installed) return;
      // Only a SIGINT that cancelled the task counts: one handled after the
      // task ended (cancelled by someone else) must not turn that
      // CancelledError into KeyboardInterrupt (found under valgrind, whose
      // slowness let the signal in between the task's end and run()'s).
      if (!state->main_task.done() && state->main_task.cancel()) ++state->interrupts;
      // The default action again: the next Ctrl-C ends the process even if
      // the task never lets the loop turn again.
      state->installed = false;
      state->loop->remove_signal_handler(SIGINT);
    });
    state_->installed = true;
  } catch (...) {
    // As asyncio: not being able to install the handler is not an error.
  }
}

SigintGuard::~SigintGuard() {
  if (state_->installed && !state_->loop->is_closed()) state_->loop->remove_signal_handler(SIGINT);
  state_->installed = false;
}

void SigintGuard::throw_if_interrupted() {
  if (state_->interrupts > 0 && state_->main_task.uncancel() == 0) throw KeyboardInterrupt();
}

}  // namespace detail

Runner::Runner(RunOptions options) : options_(std::move(options)) {}

Runner::~Runner() {
  try {
    close();
  } catch (...) {
    detail::log_error("Exception while closing a Runner: " + detail::describe_exception(std::current_exception()));
    if (loop_) {
      try {
        loop_->close();
      } catch (...) {
      }
    }
  }
}

Loop& Runner::get_loop() {
  if (closed_) throw RuntimeError("Runner is closed");
  if (!loop_) {
    LoopOptions loop_options;
    loop_options.debug = options_.debug;
    loop_options.slow_callback_duration = options_.slow_callback_duration;
    loop_options.threadpool_size = options_.threadpool_size;
    loop_ = std::make_unique<Loop>(loop_options);
  }
  return *loop_;
}

Loop& Runner::loop_for_run() {
  if (closed_) throw RuntimeError("Runner is closed");
  if (detail::running_loop_impl() != nullptr) {
    throw RuntimeError("Runner::run() cannot be called from a running event loop");
  }
  return get_loop();
}

void Runner::close() {
  if (closed_) return;
  closed_ = true;
  if (!loop_) return;
  if (!loop_->is_closed()) finalize(*loop_, options_);
}

}  // namespace uvaio
