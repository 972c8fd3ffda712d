#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>

#include "support.hpp"

using namespace std::chrono_literals;
using test_support::Counted;
using test_support::LogCapture;

TEST_SUITE_BEGIN("executor");

namespace {

// Polls `token` until stop is requested, giving up after a generous deadline
// so that a broken library makes the test fail instead of hang. Returns
// whether stop was requested.
bool wait_for_stop(const std::stop_token& token) {
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (!token.stop_requested() && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(1ms);
  }
  return token.stop_requested();
}

std::shared_ptr<uvaio::UvWorkExecutor> default_uv_executor(uvaio::Loop& loop) {
  return std::dynamic_pointer_cast<uvaio::UvWorkExecutor>(loop.default_executor());
}

// --- run_in_executor ------------------------------------------------------------

struct Threads {
  std::thread::id worker;
  std::thread::id resumed;
  std::thread::id callback;
};

uvaio::Async<void> record_threads(uvaio::Loop& loop, Threads* seen) {
  auto f = loop.run_in_executor(nullptr, [] { return std::this_thread::get_id(); });
  f.add_done_callback([seen](const uvaio::Future<std::thread::id>&) { seen->callback = std::this_thread::get_id(); });
  std::thread::id worker = co_await f;
  seen->worker = worker;
  seen->resumed = std::this_thread::get_id();
  co_await uvaio::sleep(0s);  // the done callback was queued with the wake-up; let it run
}

uvaio::Async<int> call_with_three_arguments(uvaio::Loop& loop) {
  auto f = loop.run_in_executor(
      nullptr, [](int a, const std::string& b, double c) { return a * 100 + static_cast<int>(b.size()) * 10 + static_cast<int>(c); },
      1, std::string("ab"), 3.5);
  int v = co_await f;
  co_return v;
}

uvaio::Async<bool> call_void(uvaio::Loop& loop, std::atomic<bool>* ran) {
  auto f = loop.run_in_executor(nullptr, [ran] { ran->store(true); });
  co_await f;
  co_return f.done() && !f.cancelled();
}

uvaio::Async<int> move_only_through(uvaio::Loop& loop) {
  auto f = loop.run_in_executor(
      nullptr, [](std::unique_ptr<int> p) { return std::make_unique<int>(*p + 1); }, std::make_unique<int>(41));
  std::unique_ptr<int> result = co_await std::move(f);
  co_return result ? *result : -1;
}

uvaio::Async<int> counted_call(uvaio::Loop& loop, std::atomic<int>* calls) {
  Counted captured(1);
  auto f = loop.run_in_executor(
      nullptr,
      [captured, calls](Counted arg) {
        calls->fetch_add(1);
        return Counted(captured.value + arg.value);
      },
      Counted(2));
  const Counted& result = co_await f;
  co_return result.value;
}

struct Oops {
  int code;
};

uvaio::Async<int> catch_oops(uvaio::Loop& loop) {
  auto f = loop.run_in_executor(nullptr, []() -> int { throw Oops{17}; });
  int code = 0;
  try {
    int v = co_await f;
    (void)v;
  } catch (const Oops& e) {
    code = e.code;
  }
  co_return code;
}

TEST_CASE("run_in_executor runs the function on a worker thread and completes the future on the loop thread") {
  uvaio::Loop loop;
  Threads seen;
  loop.run_until_complete(record_threads(loop, &seen));
  CHECK(seen.worker != std::thread::id());
  CHECK(seen.worker != std::this_thread::get_id());
  CHECK(seen.resumed == std::this_thread::get_id());
  CHECK(seen.callback == std::this_thread::get_id());
}

TEST_CASE("run_in_executor passes several arguments and returns the function's value") {
  uvaio::Loop loop;
  CHECK(loop.run_until_complete(call_with_three_arguments(loop)) == 123);
}

TEST_CASE("run_in_executor of a void function completes the future with no value") {
  uvaio::Loop loop;
  std::atomic<bool> ran{false};
  CHECK(loop.run_until_complete(call_void(loop, &ran)));
  CHECK(ran.load());
}

TEST_CASE("run_in_executor moves a move-only argument in and a move-only result out") {
  uvaio::Loop loop;
  CHECK(loop.run_until_complete(move_only_through(loop)) == 42);
}

TEST_CASE("run_in_executor calls the function once and frees the callable, arguments and result") {
  Counted::reset();
  std::atomic<int> calls{0};
  {
    uvaio::Loop loop;
    CHECK(loop.run_until_complete(counted_call(loop, &calls)) == 3);
    CHECK(calls.load() == 1);
    // The coroutine, and with it the only handle to the future, is gone.
    CHECK(Counted::alive() == 0);
  }
  CHECK(calls.load() == 1);
  CHECK(Counted::alive() == 0);
}

TEST_CASE("an exception of a type not derived from std::exception arrives at the co_await of run_in_executor") {
  uvaio::Loop loop;
  CHECK(loop.run_until_complete(catch_oops(loop)) == 17);
}

// --- the default executor --------------------------------------------------------

uvaio::Async<std::size_t> in_flight_while_running(uvaio::Loop& loop, std::latch* release) {
  auto executor = default_uv_executor(loop);
  auto f = loop.run_in_executor(nullptr, [release] {
    release->wait();
    return 5;
  });
  const std::size_t during = executor->in_flight();
  release->count_down();
  int v = co_await f;
  CHECK(v == 5);
  CHECK(executor->in_flight() == 0);
  co_return during;
}

TEST_CASE("the default executor is one UvWorkExecutor per loop that counts the work in flight") {
  uvaio::Loop loop;
  std::shared_ptr<uvaio::Executor> first = loop.default_executor();
  std::shared_ptr<uvaio::Executor> second = loop.default_executor();
  CHECK(first == second);
  REQUIRE(dynamic_cast<uvaio::UvWorkExecutor*>(first.get()) != nullptr);

  uvaio::Loop other;
  CHECK(other.default_executor() != first);

  std::latch release(1);
  CHECK(loop.run_until_complete(in_flight_while_running(loop, &release)) == 1);
}

uvaio::Async<int> run_on(uvaio::Loop& loop, uvaio::Executor* executor, std::size_t* in_flight) {
  auto f = loop.run_in_executor(executor, [](int x) { return x * 2; }, 21);
  *in_flight = dynamic_cast<uvaio::UvWorkExecutor&>(*executor).in_flight();
  int v = co_await f;
  co_return v;
}

TEST_CASE("a UvWorkExecutor passed explicitly runs the work and counts it until its completion") {
  uvaio::Loop loop;
  uvaio::UvWorkExecutor executor(loop);
  std::size_t in_flight = 0;
  CHECK(loop.run_until_complete(run_on(loop, &executor, &in_flight)) == 42);
  CHECK(in_flight == 1);
  CHECK(executor.in_flight() == 0);
}

uvaio::Async<void> one_iteration() { co_await uvaio::sleep(0s); }

TEST_CASE("a UvWorkExecutor that was shut down refuses new work") {
  uvaio::Loop loop;
  uvaio::UvWorkExecutor executor(loop);
  executor.shutdown();
  CHECK_THROWS_WITH_AS((void)loop.run_in_executor(&executor, [] { return 1; }),
                       "cannot schedule new futures after shutdown", uvaio::RuntimeError);
  loop.run_until_complete(one_iteration());
  CHECK(executor.in_flight() == 0);
}

uvaio::Async<int> shutdown_on_loop_thread(uvaio::Loop& loop, std::latch* release, std::string* message) {
  auto f = loop.run_in_executor(nullptr, [release] {
    release->wait();
    return 9;
  });
  try {
    loop.default_executor()->shutdown(true);
  } catch (const uvaio::RuntimeError& e) {
    *message = e.what();
  }
  release->count_down();
  int v = co_await f;
  co_return v;
}

TEST_CASE("UvWorkExecutor::shutdown(wait) on the loop thread with work in flight throws instead of deadlocking") {
  uvaio::Loop loop;
  std::latch release(1);
  std::string message;
  CHECK(loop.run_until_complete(shutdown_on_loop_thread(loop, &release, &message)) == 9);
  CHECK(message.find("deadlock") != std::string::npos);
}

// --- shutdown_default_executor ---------------------------------------------------

struct ShutdownWait {
  std::atomic<bool> finished{false};
  bool future_done_after = false;
  int value_after = 0;
  uvaio::Duration took{};
};

uvaio::Async<void> shutdown_while_work_runs(uvaio::Loop& loop, std::latch* release, ShutdownWait* out) {
  auto f = loop.run_in_executor(nullptr, [release, out] {
    release->wait();
    out->finished.store(true);
    return 11;
  });
  // The loop keeps running while shutdown waits: a timer releases the work.
  loop.call_later(20ms, [release] { release->count_down(); });
  const auto start = uvaio::Clock::now();
  co_await loop.shutdown_default_executor();
  out->took = uvaio::Clock::now() - start;
  out->future_done_after = f.done();
  if (f.done()) out->value_after = f.result();
}

TEST_CASE("shutdown_default_executor waits for the work in flight without blocking the loop") {
  uvaio::Loop loop;
  std::latch release(1);
  ShutdownWait out;
  loop.run_until_complete(shutdown_while_work_runs(loop, &release, &out));
  CHECK(out.finished.load());
  CHECK(out.future_done_after);
  CHECK(out.value_after == 11);
  CHECK(out.took >= 20ms);
}

struct AfterShutdown {
  std::string run_in_executor_error;
  std::string to_thread_error;
  std::string after_new_default_error;
  int explicit_executor_value = 0;
};

uvaio::Async<void> submit_after_shutdown(uvaio::Loop& loop, AfterShutdown* out) {
  auto warm = loop.run_in_executor(nullptr, [] { return 1; });
  int v = co_await warm;
  CHECK(v == 1);
  co_await loop.shutdown_default_executor();
  try {
    (void)loop.run_in_executor(nullptr, [] { return 2; });
  } catch (const uvaio::RuntimeError& e) {
    out->run_in_executor_error = e.what();
  }
  try {
    (void)uvaio::to_thread([] { return 3; });
  } catch (const uvaio::RuntimeError& e) {
    out->to_thread_error = e.what();
  }
  // An explicit executor is not affected by the default executor's shutdown (item 32).
  uvaio::UvWorkExecutor executor(loop);
  auto f = loop.run_in_executor(&executor, [] { return 4; });
  int w = co_await f;
  out->explicit_executor_value = w;
  // Installing a new default does not clear the flag (item 32).
  loop.set_default_executor(std::make_shared<uvaio::UvWorkExecutor>(loop));
  try {
    (void)loop.run_in_executor(nullptr, [] { return 5; });
  } catch (const uvaio::RuntimeError& e) {
    out->after_new_default_error = e.what();
  }
}

TEST_CASE("after shutdown_default_executor the default executor refuses work with asyncio's message") {
  uvaio::Loop loop;
  AfterShutdown out;
  loop.run_until_complete(submit_after_shutdown(loop, &out));
  CHECK(out.run_in_executor_error == "Executor shutdown has been called");
  CHECK(out.to_thread_error == "Executor shutdown has been called");
  CHECK(out.explicit_executor_value == 4);
  CHECK(out.after_new_default_error == "Executor shutdown has been called");
}

uvaio::Async<std::string> shutdown_twice(uvaio::Loop& loop) {
  auto f = loop.run_in_executor(nullptr, [] { return 1; });
  int v = co_await f;
  CHECK(v == 1);
  co_await loop.shutdown_default_executor();
  co_await loop.shutdown_default_executor();
  std::string error;
  try {
    (void)loop.run_in_executor(nullptr, [] { return 2; });
  } catch (const uvaio::RuntimeError& e) {
    error = e.what();
  }
  co_return error;
}

TEST_CASE("calling shutdown_default_executor a second time is a no-op") {
  uvaio::Loop loop;
  CHECK(loop.run_until_complete(shutdown_twice(loop)) == "Executor shutdown has been called");
}

struct NoExecutor {
  bool callback_ran = false;
  bool callback_ran_before_return = true;
  std::string error_after;
};

uvaio::Async<void> shutdown_unused(uvaio::Loop& loop, NoExecutor* out) {
  loop.call_soon([out] { out->callback_ran = true; });
  co_await loop.shutdown_default_executor();
  // Returning at once means without a trip through the loop.
  out->callback_ran_before_return = out->callback_ran;
  try {
    (void)uvaio::to_thread([] { return 1; });
  } catch (const uvaio::RuntimeError& e) {
    out->error_after = e.what();
  }
}

TEST_CASE("shutdown_default_executor returns at once when no default executor was used, and still sets the flag") {
  uvaio::Loop loop;
  NoExecutor out;
  loop.run_until_complete(shutdown_unused(loop, &out));
  CHECK_FALSE(out.callback_ran_before_return);
  CHECK(out.error_after == "Executor shutdown has been called");
}

struct TimedOut {
  std::atomic<bool> finished{false};
  bool finished_when_shutdown_returned = true;
  uvaio::Duration took{};
  int value = 0;
};

uvaio::Async<void> shutdown_with_timeout(uvaio::Loop& loop, std::latch* release, TimedOut* out) {
  auto f = loop.run_in_executor(nullptr, [release, out] {
    release->wait();
    out->finished.store(true);
    return 8;
  });
  const auto start = uvaio::Clock::now();
  co_await loop.shutdown_default_executor(20ms);
  out->took = uvaio::Clock::now() - start;
  out->finished_when_shutdown_returned = out->finished.load();
  release->count_down();
  int v = co_await f;
  out->value = v;
}

TEST_CASE("shutdown_default_executor with a timeout that expires logs a warning and returns normally") {
  LogCapture log;
  uvaio::Loop loop;
  std::latch release(1);
  TimedOut out;
  loop.run_until_complete(shutdown_with_timeout(loop, &release, &out));
  CHECK_FALSE(out.finished_when_shutdown_returned);
  CHECK(out.took >= 20ms);
  CHECK(log.contains("did not finish"));
  CHECK(out.finished.load());
  CHECK(out.value == 8);
}

// --- closing with work in flight -------------------------------------------------

struct Running {
  std::latch started{1};
  std::atomic<bool> finished{false};
  bool callback_ran = false;
};

// Returns as soon as the work runs on a worker thread; the work then takes a
// while, so that a close() that did not wait would return before it finished.
uvaio::Async<uvaio::Future<Counted>> start_slow_work(uvaio::Loop& loop, Running* state) {
  auto f = loop.run_in_executor(nullptr, [state] {
    state->started.count_down();
    std::this_thread::sleep_for(100ms);
    state->finished.store(true);
    return Counted(7);
  });
  f.add_done_callback([state](const uvaio::Future<Counted>&) { state->callback_ran = true; });
  state->started.wait();
  co_return f;
}

TEST_CASE("closing a loop while work is running waits for it, runs no callback and drops the result") {
  Counted::reset();
  Running state;
  uvaio::Loop loop;
  uvaio::Future<Counted> f = loop.run_until_complete(start_slow_work(loop, &state));
  CHECK_FALSE(state.finished.load());
  loop.close();
  CHECK(state.finished.load());
  CHECK_FALSE(state.callback_ran);
  CHECK_FALSE((f.done() && !f.cancelled()));  // the result was never delivered
  CHECK(Counted::alive() == 0);
  f = uvaio::Future<Counted>();
  CHECK(Counted::alive() == 0);
}

TEST_CASE("destroying a loop while work is running waits for it, runs no callback and drops the result") {
  Counted::reset();
  Running state;
  uvaio::Future<Counted> f;
  {
    uvaio::Loop loop;
    f = loop.run_until_complete(start_slow_work(loop, &state));
    CHECK_FALSE(state.finished.load());
  }
  CHECK(state.finished.load());
  CHECK_FALSE(state.callback_ran);
  CHECK(Counted::alive() == 0);
  f = uvaio::Future<Counted>();
  CHECK(Counted::alive() == 0);
}

struct StopAtClose {
  std::latch started{1};
  std::atomic<bool> saw_stop{false};
};

uvaio::Async<void> start_stoppable(uvaio::Loop& loop, StopAtClose* state) {
  auto f = loop.run_in_executor(nullptr, [state](std::stop_token token) {
    state->started.count_down();
    state->saw_stop.store(wait_for_stop(token));
  });
  state->started.wait();
  co_return;
}

TEST_CASE("closing a loop requests stop through the stop_token of work still running") {
  uvaio::Loop loop;
  StopAtClose state;
  loop.run_until_complete(start_stoppable(loop, &state));
  loop.close();
  CHECK(state.saw_stop.load());
}

uvaio::Async<void> callback_without_handle(uvaio::Loop& loop, int* seen) {
  {
    auto f = loop.run_in_executor(nullptr, [] { return 6; });
    f.add_done_callback([seen](const uvaio::Future<int>& done) { *seen = done.result(); });
  }
  // Once shutdown returns, the completion has been processed and the callback
  // queued; two yields let it run.
  co_await loop.shutdown_default_executor();
  co_await uvaio::sleep(0s);
  co_await uvaio::sleep(0s);
}

TEST_CASE("a done callback on a run_in_executor future runs even when no handle to the future is kept") {
  uvaio::Loop loop;
  int seen = 0;
  loop.run_until_complete(callback_without_handle(loop, &seen));
  CHECK(seen == 6);
}

}  // namespace

TEST_SUITE_END();
