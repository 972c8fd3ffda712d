#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

using namespace std::chrono_literals;

TEST_SUITE_BEGIN("runner");

namespace {

// Sets (or unsets) an environment variable for its lifetime, then restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) previous_ = old;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  ~ScopedEnv() {
    if (previous_) {
      ::setenv(name_.c_str(), previous_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::optional<std::string> previous_;
};

// --- run(): results ------------------------------------------------------------

uvaio::Async<int> answer() {
  co_await uvaio::sleep(0s);
  co_return 42;
}

TEST_CASE("run returns main's value") {
  CHECK(uvaio::run(answer()) == 42);
}

struct MainFailed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

uvaio::Async<int> fail_in_main() {
  co_await uvaio::sleep(0s);
  throw MainFailed("main gave up");
}

struct Oops {
  int code;
};

uvaio::Async<void> throw_oops() {
  co_await uvaio::sleep(0s);
  throw Oops{5};
}

TEST_CASE("run rethrows main's exception with its type") {
  CHECK_THROWS_WITH_AS(uvaio::run(fail_in_main()), "main gave up", MainFailed);
  int code = 0;
  try {
    uvaio::run(throw_oops());
  } catch (const Oops& e) {
    code = e.code;
  }
  CHECK(code == 5);
}

uvaio::Async<void> set_flag(bool* flag) {
  co_await uvaio::sleep(0s);
  *flag = true;
}

TEST_CASE("run works for a void main") {
  bool flag = false;
  uvaio::run(set_flag(&flag));
  CHECK(flag);
}

// --- run(): shutdown -----------------------------------------------------------

uvaio::Async<void> unwind_slowly(bool* unwound) {
  std::exception_ptr cancelled;
  try {
    co_await uvaio::sleep(1h);
  } catch (const uvaio::CancelledError&) {
    cancelled = std::current_exception();
  }
  // Cleanup that itself awaits (not possible inside the handler).
  co_await uvaio::sleep(0s);
  *unwound = true;
  if (cancelled) std::rethrow_exception(cancelled);
}

uvaio::Async<void> leave_a_task_behind(bool* unwound) {
  uvaio::create_task(unwind_slowly(unwound));
  co_await uvaio::sleep(0s);  // the leftover starts (and suspends) before main returns
}

TEST_CASE("run cancels the tasks still pending when main returns and lets them unwind") {
  bool unwound = false;
  uvaio::run(leave_a_task_behind(&unwound));
  CHECK(unwound);
}

uvaio::Async<void> fail_while_unwinding() {
  try {
    co_await uvaio::sleep(1h);
  } catch (const uvaio::CancelledError&) {
    throw std::runtime_error("cleanup failed");
  }
}

uvaio::Async<void> leave_a_failing_task(std::vector<uvaio::ExceptionContext>* reported) {
  uvaio::get_running_loop().set_exception_handler(
      [reported](uvaio::Loop&, const uvaio::ExceptionContext& context) { reported->push_back(context); });
  uvaio::create_task(fail_while_unwinding(), "leftover");
  co_await uvaio::sleep(0s);
}

std::string message_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::runtime_error& e) {
    return e.what();
  } catch (...) {
    return "not a std::runtime_error";
  }
}

TEST_CASE("a leftover task that fails while unwinding is reported to the exception handler") {
  std::vector<uvaio::ExceptionContext> reported;
  uvaio::run(leave_a_failing_task(&reported));
  REQUIRE(reported.size() == 1);
  CHECK(reported[0].message == "unhandled exception during uvaio::run() shutdown");
  CHECK(reported[0].task_name == "leftover");
  REQUIRE(reported[0].exception);
  CHECK(message_of(reported[0].exception) == "cleanup failed");
}

uvaio::Async<void> start_unawaited_work(std::atomic<bool>* finished) {
  auto f = uvaio::to_thread([finished] {
    std::this_thread::sleep_for(50ms);
    finished->store(true);
  });
  co_return;
}

TEST_CASE("run waits for default-executor work still in flight at shutdown") {
  std::atomic<bool> finished{false};
  uvaio::run(start_unawaited_work(&finished));
  CHECK(finished.load());
}

uvaio::Async<int> never_run() { co_return 1; }

uvaio::Async<std::string> nested_run() {
  try {
    uvaio::run(never_run());
  } catch (const uvaio::RuntimeError& e) {
    co_return e.what();
  }
  co_return "no exception";
}

TEST_CASE("run called from inside a running loop throws RuntimeError") {
  CHECK(uvaio::run(nested_run()) == "uvaio::run() cannot be called from a running event loop");
}

// --- run(): debug mode -----------------------------------------------------------

uvaio::Async<bool> debug_of_running_loop() {
  co_return uvaio::get_running_loop().get_debug();
}

TEST_CASE("RunOptions debug = true gives a loop in debug mode") {
  ScopedEnv env("UVAIO_DEBUG", nullptr);
  CHECK(uvaio::run(debug_of_running_loop(), uvaio::RunOptions{.debug = true}));
}

TEST_CASE("with debug unset, UVAIO_DEBUG in the environment decides") {
  {
    ScopedEnv env("UVAIO_DEBUG", "1");
    CHECK(uvaio::run(debug_of_running_loop()));
    // An explicit option wins over the environment.
    CHECK_FALSE(uvaio::run(debug_of_running_loop(), uvaio::RunOptions{.debug = false}));
  }
  {
    ScopedEnv env("UVAIO_DEBUG", nullptr);
    CHECK_FALSE(uvaio::run(debug_of_running_loop()));
  }
}

// --- Runner ----------------------------------------------------------------------

uvaio::Async<uvaio::Loop*> running_loop() {
  co_await uvaio::sleep(0s);
  co_return &uvaio::get_running_loop();
}

TEST_CASE("several Runner::run calls share one loop, the one get_loop returns") {
  uvaio::Runner runner;
  uvaio::Loop& loop = runner.get_loop();
  uvaio::Loop* first = runner.run(running_loop());
  uvaio::Loop* second = runner.run(running_loop());
  CHECK(first == &loop);
  CHECK(second == &loop);
  CHECK(&runner.get_loop() == &loop);
}

struct Carried {
  bool started = false;
  bool finished = false;
};

uvaio::Async<int> wait_for_gate(uvaio::Future<int> gate, Carried* state) {
  state->started = true;
  int v = co_await gate;
  state->finished = true;
  co_return v + 1;
}

struct FirstRun {
  uvaio::Future<int> gate;
  uvaio::Task<int> task;
};

uvaio::Async<FirstRun> first_run(Carried* state) {
  FirstRun out;
  out.gate = uvaio::get_running_loop().create_future<int>();
  out.task = uvaio::create_task(wait_for_gate(out.gate, state));
  co_await uvaio::sleep(0s);
  co_return out;
}

uvaio::Async<int> second_run(FirstRun first) {
  first.gate.set_result(41);
  int v = co_await first.task;
  co_return v;
}

TEST_CASE("a task created in one Runner::run and still pending continues in the next") {
  Carried state;
  uvaio::Runner runner;
  FirstRun first = runner.run(first_run(&state));
  CHECK(state.started);
  CHECK_FALSE(state.finished);
  CHECK_FALSE(first.task.done());
  CHECK(runner.run(second_run(first)) == 42);
  CHECK(state.finished);
}

TEST_CASE("Runner::close is idempotent, and run and get_loop afterwards throw RuntimeError") {
  uvaio::Runner runner;
  CHECK(runner.run(answer()) == 42);
  uvaio::Loop& loop = runner.get_loop();
  runner.close();
  CHECK(loop.is_closed());
  CHECK_NOTHROW(runner.close());
  CHECK_THROWS_WITH_AS(runner.run(answer()), "Runner is closed", uvaio::RuntimeError);
  CHECK_THROWS_WITH_AS(runner.get_loop(), "Runner is closed", uvaio::RuntimeError);
}

TEST_CASE("a Runner closed before any use never creates a loop and refuses run") {
  uvaio::Runner runner;
  runner.close();
  CHECK_THROWS_WITH_AS(runner.run(answer()), "Runner is closed", uvaio::RuntimeError);
}

uvaio::Async<std::string> nested_runner_run(uvaio::Runner* runner) {
  try {
    runner->run(never_run());
  } catch (const uvaio::RuntimeError& e) {
    co_return e.what();
  }
  co_return "no exception";
}

TEST_CASE("Runner::run inside a running loop throws RuntimeError") {
  uvaio::Runner runner;
  CHECK(runner.run(nested_runner_run(&runner)) == "Runner::run() cannot be called from a running event loop");
  uvaio::Runner other;
  CHECK(runner.run(nested_runner_run(&other)) == "Runner::run() cannot be called from a running event loop");
}

TEST_CASE("a Runner's loop follows RunOptions debug, else UVAIO_DEBUG") {
  {
    ScopedEnv env("UVAIO_DEBUG", nullptr);
    uvaio::Runner debug_runner(uvaio::RunOptions{.debug = true});
    CHECK(debug_runner.get_loop().get_debug());
    uvaio::Runner plain_runner;
    CHECK_FALSE(plain_runner.get_loop().get_debug());
  }
  {
    ScopedEnv env("UVAIO_DEBUG", "1");
    uvaio::Runner runner;
    CHECK(runner.get_loop().get_debug());
  }
}

}  // namespace

TEST_SUITE_END();
