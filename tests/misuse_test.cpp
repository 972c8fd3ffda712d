#include <doctest/doctest.h>

#include <chrono>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

// The misuse catalogue: each way of using uvaio wrongly that a user can hit,
// with the exact error type and message it gives (README, "Reliability").
// UV_THREADPOOL_SIZE set too late is in threadpool_size_test.cpp: it needs a
// process of its own.

using namespace std::chrono_literals;
using test_support::run_one_iteration;

namespace {

uvaio::Async<int> answer() { co_return 42; }

std::string id_of(std::thread::id id) {
  std::ostringstream out;
  out << id;
  return out.str();
}

// What awaiting `awaited` from inside a task threw, or "<no exception>".
template <class A>
uvaio::Async<std::string> error_of_await(A awaited) {
  std::string message = "<no exception>";
  try {
    auto value = co_await awaited;
    (void)value;
  } catch (const uvaio::RuntimeError& e) {
    message = std::string("RuntimeError: ") + e.what();
  }
  co_return message;
}

}  // namespace

TEST_SUITE_BEGIN("misuse");

TEST_CASE("awaiting a task of another loop throws RuntimeError naming both tasks") {
  uvaio::Loop other;
  uvaio::Loop loop;
  uvaio::Task<int> foreign = other.create_task(answer(), "foreign");
  auto waiter = loop.create_task(error_of_await(foreign), "waiter");
  CHECK(loop.run_until_complete(waiter) ==
        "RuntimeError: Task 'waiter' got Task 'foreign' attached to a different loop");
  // The foreign task is untouched and still runs on its own loop.
  CHECK(other.run_until_complete(foreign) == 42);
}

TEST_CASE("awaiting a future of another loop throws RuntimeError naming the task and the future") {
  uvaio::Loop other;
  uvaio::Loop loop;
  auto waiter = loop.create_task(error_of_await(other.create_future<int>()), "waiter");
  CHECK(loop.run_until_complete(waiter) == "RuntimeError: Task 'waiter' got Future attached to a different loop");
}

TEST_CASE("in debug mode, a loop method called from another thread throws RuntimeError naming it and both threads") {
  uvaio::Loop loop(uvaio::LoopOptions{.debug = true});
  std::string message = "<no exception>";
  std::string caller_id;
  bool foreign_ran = false;
  loop.call_soon([&] {
    std::thread other([&] {
      caller_id = id_of(std::this_thread::get_id());
      try {
        (void)loop.call_later(1ms, [&foreign_ran] { foreign_ran = true; });
      } catch (const uvaio::RuntimeError& e) {
        message = e.what();
      }
    });
    other.join();
  });
  run_one_iteration(loop);
  CHECK(message ==
        "Non-thread-safe operation invoked on an event loop other than the current one: call_at() called from thread " +
            caller_id + " while the loop runs in thread " + id_of(std::this_thread::get_id()));
  CHECK_FALSE(foreign_ran);
}

TEST_CASE("running a closed loop throws RuntimeError: Event loop is closed") {
  uvaio::Loop loop;
  loop.close();
  CHECK_THROWS_WITH_AS(loop.run_forever(), "Event loop is closed", uvaio::RuntimeError);
  CHECK_THROWS_WITH_AS(loop.run_until_complete(answer()), "Event loop is closed", uvaio::RuntimeError);
  CHECK_THROWS_WITH_AS((void)loop.call_soon([] {}), "Event loop is closed", uvaio::RuntimeError);
  CHECK_THROWS_WITH_AS((void)loop.create_task(answer()), "Event loop is closed", uvaio::RuntimeError);
}

TEST_CASE("running a loop that is already running throws RuntimeError") {
  uvaio::Loop loop;
  std::string message = "<no exception>";
  loop.call_soon([&] {
    try {
      loop.run_forever();
    } catch (const uvaio::RuntimeError& e) {
      message = e.what();
    }
  });
  run_one_iteration(loop);
  CHECK(message == "This event loop is already running");
}

TEST_CASE("closing a running loop throws RuntimeError") {
  uvaio::Loop loop;
  std::string message = "<no exception>";
  loop.call_soon([&] {
    try {
      loop.close();
    } catch (const uvaio::RuntimeError& e) {
      message = e.what();
    }
  });
  run_one_iteration(loop);
  CHECK(message == "Cannot close a running event loop");
  CHECK_FALSE(loop.is_closed());
}

TEST_CASE("awaiting a moved-from Async throws RuntimeError") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<std::string> {
    uvaio::Async<int> source = answer();
    uvaio::Async<int> taken = std::move(source);
    std::string message = "<no exception>";
    try {
      int v = co_await source;  // NOLINT(bugprone-use-after-move)
      (void)v;
    } catch (const uvaio::RuntimeError& e) {
      message = e.what();
    }
    int v = co_await taken;
    co_return message + " / " + std::to_string(v);
  };
  CHECK(loop.run_until_complete(body()) ==
        "co_await on an empty Async (moved from, or adopted by a task) / 42");
}

TEST_CASE("create_task with a moved-from Async throws RuntimeError") {
  uvaio::Loop loop;
  uvaio::Async<int> source = answer();
  uvaio::Async<int> taken = std::move(source);
  CHECK_THROWS_WITH_AS((void)loop.create_task(std::move(source)),  // NOLINT(bugprone-use-after-move)
                       "create_task() needs a coroutine: this Async is empty (moved from?)", uvaio::RuntimeError);
  CHECK(loop.run_until_complete(std::move(taken)) == 42);
}

TEST_CASE("setting a future twice throws InvalidStateError and keeps the first outcome") {
  uvaio::Loop loop;
  auto done = loop.create_future<int>();
  done.set_result(1);
  CHECK_THROWS_WITH_AS(done.set_result(2), "invalid state: the Future is already done", uvaio::InvalidStateError);
  CHECK_THROWS_WITH_AS(done.set_exception(std::runtime_error("late")), "invalid state: the Future is already done",
                       uvaio::InvalidStateError);
  CHECK(done.result() == 1);

  auto cancelled = loop.create_future<int>();
  CHECK(cancelled.cancel());
  CHECK_THROWS_WITH_AS(cancelled.set_result(2), "invalid state: the Future is already cancelled",
                       uvaio::InvalidStateError);
  CHECK(cancelled.cancelled());
}

TEST_CASE("set_exception with an empty exception_ptr throws ValueError") {
  uvaio::Loop loop;
  auto future = loop.create_future<int>();
  CHECK_THROWS_WITH_AS(future.set_exception(std::exception_ptr{}),
                       "set_exception() needs an exception, got an empty exception_ptr", uvaio::ValueError);
  CHECK_FALSE(future.done());
}

TEST_CASE("reading a future that is not done throws InvalidStateError") {
  uvaio::Loop loop;
  auto future = loop.create_future<int>();
  CHECK_THROWS_WITH_AS(future.result(), "Result is not set.", uvaio::InvalidStateError);
  CHECK_THROWS_WITH_AS(future.exception(), "Exception is not set.", uvaio::InvalidStateError);
}

TEST_CASE("a negative delay is treated as zero, as in asyncio") {
  uvaio::Loop loop;
  // call_later: runs on the next iteration, like call_later(0).
  std::vector<std::string> order;
  (void)loop.call_later(-5s, [&] { order.push_back("call_later(-5s)"); });
  (void)loop.call_later(0s, [&] { order.push_back("call_later(0)"); });
  CHECK(order.empty());
  run_one_iteration(loop);
  CHECK(order == std::vector<std::string>{"call_later(-5s)", "call_later(0)"});

  // sleep: takes as many iterations as sleep(0).
  auto iterations_to_finish = [&loop](uvaio::Duration delay) {
    auto sleeper = [](uvaio::Duration d) -> uvaio::Async<void> { co_await uvaio::sleep(d); };
    auto task = loop.create_task(sleeper(delay));
    int iterations = 0;
    while (!task.done() && iterations < 100) {
      run_one_iteration(loop);
      ++iterations;
    }
    return iterations;
  };
  const int zero = iterations_to_finish(0s);
  CHECK(zero < 100);
  CHECK(iterations_to_finish(-5s) == zero);
}

TEST_CASE("an uvaio function that needs a running loop throws RuntimeError outside one") {
  CHECK_THROWS_WITH_AS((void)uvaio::create_task(answer()), "no running event loop", uvaio::RuntimeError);
  CHECK_THROWS_WITH_AS((void)uvaio::get_running_loop(), "no running event loop", uvaio::RuntimeError);
}

namespace {
template <class F>
constexpr bool call_soon_accepts = requires(uvaio::Loop& loop, F fn) { loop.call_soon(fn); };
template <class F>
constexpr bool call_later_accepts = requires(uvaio::Loop& loop, F fn) { loop.call_later(uvaio::Duration{}, fn); };
template <class F>
constexpr bool call_soon_threadsafe_accepts = requires(uvaio::Loop& loop, F fn) { loop.call_soon_threadsafe(fn); };
template <class F>
constexpr bool run_in_executor_accepts = requires(uvaio::Loop& loop, F fn) { loop.run_in_executor(nullptr, fn); };

using CoroutineFunction = uvaio::Async<int> (*)();
using PlainFunction = int (*)();
}  // namespace

TEST_CASE("a coroutine function passed as a callback does not compile (asyncio: TypeError in debug mode)") {
  // A callback returning an Async would create the coroutine and destroy it
  // unrun. These are compile-time facts, checked here as values.
  CHECK_FALSE(call_soon_accepts<CoroutineFunction>);
  CHECK_FALSE(call_later_accepts<CoroutineFunction>);
  CHECK_FALSE(call_soon_threadsafe_accepts<CoroutineFunction>);
  CHECK_FALSE(run_in_executor_accepts<CoroutineFunction>);
  CHECK(call_soon_accepts<PlainFunction>);
  CHECK(call_later_accepts<PlainFunction>);
  CHECK(call_soon_threadsafe_accepts<PlainFunction>);
  CHECK(run_in_executor_accepts<PlainFunction>);
}

TEST_SUITE_END();
