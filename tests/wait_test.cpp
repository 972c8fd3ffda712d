#include <doctest/doctest.h>

#include <chrono>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support.hpp"
using test_support::starts_with;
using test_support::yield_times;
using test_support::value_after;

using test_support::run_one_iteration;
using test_support::run_iterations;
using test_support::cancelled_message;
using test_support::what_of;

using namespace std::chrono_literals;
using test_support::Counted;
using test_support::HandlerCapture;

namespace {

using Clock = std::chrono::steady_clock;

// What a TimeoutError nests: asyncio chains the CancelledError as its cause.
std::string nested_in(const std::exception& e) {
  try {
    std::rethrow_if_nested(e);
  } catch (const uvaio::CancelledError&) {
    return "CancelledError";
  } catch (...) {
    return "<something else>";
  }
  return "<nothing>";
}

std::string listed(const std::vector<int>& values) {
  std::string text;
  for (int v : values) text += (text.empty() ? "" : " ") + std::to_string(v);
  return text;
}

std::string joined(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ", ") + item;
  return text;
}

uvaio::Async<int> value_after_sleep(uvaio::Duration delay, int value) {
  co_await uvaio::sleep(delay);
  co_return value;
}

uvaio::Async<int> fail_after(int yields, const char* message) {
  co_await yield_times(yields);
  throw std::invalid_argument(message);
}

uvaio::Async<int> sleep_forever() {
  co_await uvaio::sleep(1h);
  co_return 0;
}

uvaio::Async<int> await_future(uvaio::Future<int> future) {
  int v = co_await future;
  co_return v;
}

uvaio::Async<int> mark_started(bool* started, Counted held) {
  *started = true;
  co_return held.value;
}

// Completes futures[order[0]] with order[0] * 10, then futures[order[1]], ...
// one yield apart.
uvaio::Async<void> complete_in_order(std::vector<uvaio::Future<int>> futures, std::vector<std::size_t> order) {
  for (std::size_t index : order) {
    co_await uvaio::sleep(0s);
    futures[index].set_result(static_cast<int>(index) * 10);
  }
}

// Cancels `task` and waits until it is done, so that a test leaves no task behind.
uvaio::Async<void> cancel_and_finish(uvaio::Task<int> task) {
  task.cancel();
  try {
    co_await task;
  } catch (const uvaio::CancelledError&) {
  }
}

struct Cleanup {
  bool saw_cancel = false;
  bool cleaned_up = false;  // set after an awaited step of clean-up
  std::string ran_in;       // the task the body ran in
};

// Sleeps an hour holding a Counted; when cancelled, it cleans up with one
// awaited step (outside the catch handler: co_await is not allowed there) and
// rethrows.
uvaio::Async<int> sleeper(Cleanup* cleanup) {
  Counted local(1);
  cleanup->ran_in = uvaio::current_task().name();
  std::exception_ptr cancelled;
  try {
    co_await uvaio::sleep(1h);
  } catch (const uvaio::CancelledError&) {
    cleanup->saw_cancel = true;
    cancelled = std::current_exception();
  }
  if (cancelled) {
    co_await uvaio::sleep(0s);
    cleanup->cleaned_up = true;
    std::rethrow_exception(cancelled);
  }
  co_return local.value;
}

// Swallows the cancellation and returns 99.
uvaio::Async<int> swallows_cancel() {
  try {
    co_await uvaio::sleep(1h);
  } catch (const uvaio::CancelledError&) {
  }
  co_return 99;
}

// Fails with another exception when cancelled.
uvaio::Async<int> fails_when_cancelled() {
  bool cancelled = false;
  try {
    co_await uvaio::sleep(1h);
  } catch (const uvaio::CancelledError&) {
    cancelled = true;
  }
  if (cancelled) throw std::runtime_error("clean-up failed");
  co_return 0;
}

}  // namespace

TEST_SUITE_BEGIN("wait");

// --- wait ----------------------------------------------------------------------------------

TEST_CASE("wait with all_completed returns once every task is done, the same handles in input order") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<bool> {
    std::vector<uvaio::Task<int>> tasks{uvaio::create_task(value_after(3, 1)), uvaio::create_task(value_after(1, 2)),
                                        uvaio::create_task(value_after(2, 3))};
    auto result = co_await uvaio::wait(tasks, uvaio::ReturnWhen::all_completed);
    CHECK(result.pending.empty());
    REQUIRE(result.done.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
      CHECK(result.done[i] == tasks[i]);
      CHECK(result.done[i].done());
    }
    CHECK(result.done[0].result() == 1);
    co_return true;
  };
  CHECK(loop.run_until_complete(body()));
}

TEST_CASE("wait with first_completed returns as soon as one is done, and the others keep running") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<bool> {
    auto fa = uvaio::get_running_loop().create_future<int>();
    auto fb = uvaio::get_running_loop().create_future<int>();
    std::vector<uvaio::Task<int>> tasks{uvaio::create_task(await_future(fa)), uvaio::create_task(await_future(fb)),
                                        uvaio::create_task(value_after(1, 3))};
    auto result = co_await uvaio::wait(tasks, uvaio::ReturnWhen::first_completed);
    REQUIRE(result.done.size() == 1);
    CHECK(result.done[0] == tasks[2]);
    REQUIRE(result.pending.size() == 2);
    CHECK(result.pending[0] == tasks[0]);
    CHECK(result.pending[1] == tasks[1]);
    for (const auto& t : result.pending) {
      CHECK_FALSE(t.done());
      CHECK(t.cancelling() == 0);
    }
    fa.set_result(1);
    fb.set_result(2);
    int a = co_await tasks[0];
    int b = co_await tasks[1];
    CHECK(a == 1);
    CHECK(b == 2);
    co_return true;
  };
  CHECK(loop.run_until_complete(body()));
}

TEST_CASE("wait with first_exception returns when a task fails, and a cancellation does not count") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<bool> {
    auto never = uvaio::get_running_loop().create_future<int>();
    std::vector<uvaio::Task<int>> tasks{uvaio::create_task(await_future(never)),
                                        uvaio::create_task(fail_after(4, "failed")),
                                        uvaio::create_task(sleep_forever())};
    co_await uvaio::sleep(0s);
    tasks[2].cancel("cancelled early");  // done (cancelled) well before tasks[1] fails
    auto result = co_await uvaio::wait(tasks, uvaio::ReturnWhen::first_exception);
    REQUIRE(result.done.size() == 2);
    CHECK(result.done[0] == tasks[1]);
    CHECK(result.done[1] == tasks[2]);
    REQUIRE(result.pending.size() == 1);
    CHECK(result.pending[0] == tasks[0]);
    CHECK_THROWS_WITH_AS(tasks[1].result(), "failed", std::invalid_argument);
    CHECK(tasks[2].cancelled());
    CHECK_FALSE(tasks[0].done());
    never.set_result(0);
    co_await tasks[0];
    co_return true;
  };
  CHECK(loop.run_until_complete(body()));
}

TEST_CASE("wait with first_exception returns when everything is done if nothing fails") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<bool> {
    std::vector<uvaio::Task<int>> tasks{uvaio::create_task(value_after(2, 1)), uvaio::create_task(value_after(1, 2))};
    auto result = co_await uvaio::wait(tasks, uvaio::ReturnWhen::first_exception);
    CHECK(result.done.size() == 2);
    CHECK(result.pending.empty());
    co_return true;
  };
  CHECK(loop.run_until_complete(body()));
}

TEST_CASE("wait with a timeout that passes returns normally, with the unfinished tasks pending and not cancelled") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<bool> {
    std::vector<uvaio::Task<int>> tasks{uvaio::create_task(sleep_forever()), uvaio::create_task(value_after(1, 2))};
    const auto start = Clock::now();
    auto result = co_await uvaio::wait(tasks, uvaio::ReturnWhen::all_completed, 20ms);
    CHECK(Clock::now() - start >= 20ms);
    REQUIRE(result.done.size() == 1);
    CHECK(result.done[0] == tasks[1]);
    REQUIRE(result.pending.size() == 1);
    CHECK(result.pending[0] == tasks[0]);
    CHECK_FALSE(tasks[0].done());
    CHECK(tasks[0].cancelling() == 0);
    co_await uvaio::sleep(0s);
    CHECK_FALSE(tasks[0].done());  // still sleeping, nobody cancelled it
    co_await cancel_and_finish(tasks[0]);
    co_return true;
  };
  CHECK(loop.run_until_complete(body()));
}

TEST_CASE("wait collapses duplicates") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<bool> {
    auto a = uvaio::create_task(value_after(1, 1));
    auto b = uvaio::create_task(value_after(2, 2));
    std::vector<uvaio::Task<int>> tasks{a, b, a, a, b};
    auto result = co_await uvaio::wait(tasks);
    REQUIRE(result.done.size() == 2);
    CHECK(result.done[0] == a);
    CHECK(result.done[1] == b);
    CHECK(result.pending.empty());
    co_return true;
  };
  CHECK(loop.run_until_complete(body()));
}

TEST_CASE("wait on an empty range throws ValueError") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<std::string> {
    std::vector<uvaio::Task<int>> none;
    std::string message = "<no exception>";
    try {
      auto result = co_await uvaio::wait(none);
      (void)result;
    } catch (const uvaio::ValueError& e) {
      message = e.what();
    }
    co_return message;
  };
  std::string message = loop.run_until_complete(body());
  CHECK(message == "Set of Tasks/Futures is empty.");
}

TEST_CASE("cancelling the task inside wait() throws CancelledError there and does not cancel the watched tasks") {
  uvaio::Loop loop;
  auto body = [](uvaio::Task<int> watched, std::string* seen) -> uvaio::Async<void> {
    std::vector<uvaio::Task<int>> tasks{watched};
    try {
      auto result = co_await uvaio::wait(tasks);
      (void)result;
    } catch (const uvaio::CancelledError& e) {
      *seen = e.message();
      throw;
    }
  };
  auto watched = loop.create_task(sleep_forever());
  std::string seen = "<not cancelled>";
  auto task = loop.create_task(body(watched, &seen));
  run_iterations(loop, 2);
  REQUIRE_FALSE(task.done());
  CHECK(task.cancel("stop waiting"));
  CHECK(cancelled_message([&] { loop.run_until_complete(task); }) == "stop waiting");
  CHECK(seen == "stop waiting");
  CHECK(task.cancelled());
  CHECK_FALSE(watched.done());
  CHECK(watched.cancelling() == 0);
  watched.cancel();
  CHECK(cancelled_message([&] { loop.run_until_complete(watched); }).empty());
}

// --- wait_for: results and time-outs --------------------------------------------------------

TEST_CASE("wait_for returns the value of an Async, a Task or a Future that finishes in time") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<std::vector<int>> {
    std::vector<int> values;
    int a = co_await uvaio::wait_for(value_after(2, 1), 1h);
    values.push_back(a);
    auto task = uvaio::create_task(value_after(2, 2));
    int b = co_await uvaio::wait_for(task, 1h);
    values.push_back(b);
    auto future = uvaio::get_running_loop().create_future<int>();
    uvaio::get_running_loop().call_soon([future] { future.set_result(3); });
    int c = co_await uvaio::wait_for(future, 1h);
    values.push_back(c);
    values.push_back(uvaio::current_task().cancelling());
    co_return values;
  };
  CHECK(listed(loop.run_until_complete(body())) == "1 2 3 0");
}

TEST_CASE("wait_for on time-out cancels an Async running in the current task, waits for its clean-up, then throws "
          "TimeoutError nesting the CancelledError") {
  Counted::reset();
  uvaio::Loop loop;
  auto body = [](Cleanup* cleanup) -> uvaio::Async<std::string> {
    std::string seen = "<no exception>";
    const auto start = Clock::now();
    try {
      int v = co_await uvaio::wait_for(sleeper(cleanup), 20ms);
      seen = "value " + std::to_string(v);
    } catch (const uvaio::TimeoutError& e) {
      seen = std::string("TimeoutError '") + e.what() + "' nesting " + nested_in(e);
      CHECK(cleanup->saw_cancel);
      CHECK(cleanup->cleaned_up);
      CHECK(Counted::alive() == 0);
    }
    CHECK(Clock::now() - start >= 20ms);
    CHECK(cleanup->ran_in == uvaio::current_task().name());  // inline, not a task of its own
    CHECK(uvaio::current_task().cancelling() == 0);
    co_return seen;
  };
  Cleanup cleanup;
  auto task = loop.create_task(body(&cleanup), "waiter");
  std::string seen = loop.run_until_complete(task);
  CHECK(seen == "TimeoutError 'timed out' nesting CancelledError");
  CHECK_FALSE(task.cancelled());
}

TEST_CASE("wait_for on time-out cancels a Task, waits until it is done with its clean-up, then throws "
          "TimeoutError") {
  Counted::reset();
  uvaio::Loop loop;
  auto body = [](Cleanup* cleanup, uvaio::Task<int> inner) -> uvaio::Async<std::string> {
    std::string seen = "<no exception>";
    try {
      int v = co_await uvaio::wait_for(inner, 20ms);
      seen = "value " + std::to_string(v);
    } catch (const uvaio::TimeoutError& e) {
      seen = "TimeoutError nesting " + nested_in(e);
      CHECK(inner.done());
      CHECK(inner.cancelled());
      CHECK(cleanup->cleaned_up);
      CHECK(Counted::alive() == 0);
    }
    CHECK(uvaio::current_task().cancelling() == 0);
    co_return seen;
  };
  Cleanup cleanup;
  auto inner = loop.create_task(sleeper(&cleanup), "inner");
  std::string seen = loop.run_until_complete(body(&cleanup, inner));
  CHECK(seen == "TimeoutError nesting CancelledError");
  CHECK(cleanup.ran_in == "inner");
  CHECK(inner.cancelled());
}

TEST_CASE("wait_for on time-out cancels a Future and throws TimeoutError") {
  uvaio::Loop loop;
  auto body = [](uvaio::Future<int> future) -> uvaio::Async<std::string> {
    std::string seen = "<no exception>";
    try {
      int v = co_await uvaio::wait_for(future, 20ms);
      seen = "value " + std::to_string(v);
    } catch (const uvaio::TimeoutError& e) {
      seen = "TimeoutError nesting " + nested_in(e);
      CHECK(future.cancelled());
    }
    co_return seen;
  };
  auto future = loop.create_future<int>();
  std::string seen = loop.run_until_complete(body(future));
  CHECK(seen == "TimeoutError nesting CancelledError");
  CHECK(future.cancelled());
}

TEST_CASE("wait_for returns the value of an inner that swallows the cancellation, and raises no TimeoutError") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<std::vector<int>> {
    std::vector<int> values;
    int a = co_await uvaio::wait_for(swallows_cancel(), 20ms);
    values.push_back(a);
    auto inner = uvaio::create_task(swallows_cancel());
    int b = co_await uvaio::wait_for(inner, 20ms);
    values.push_back(b);
    values.push_back(uvaio::current_task().cancelling());
    co_await uvaio::sleep(1ms);  // the task is not left cancelled
    co_return values;
  };
  auto task = loop.create_task(body());
  CHECK(listed(loop.run_until_complete(task)) == "99 99 0");
  CHECK_FALSE(task.cancelled());
}

TEST_CASE("wait_for lets another exception that the inner raises while cancelled propagate instead of "
          "TimeoutError") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<std::vector<std::string>> {
    std::vector<std::string> seen;
    try {
      int v = co_await uvaio::wait_for(fails_when_cancelled(), 20ms);
      (void)v;
      seen.push_back("<no exception>");
    } catch (const uvaio::TimeoutError&) {
      seen.push_back("TimeoutError");
    } catch (const std::runtime_error& e) {
      seen.push_back(e.what());
    }
    auto inner = uvaio::create_task(fails_when_cancelled());
    try {
      int v = co_await uvaio::wait_for(inner, 20ms);
      (void)v;
      seen.push_back("<no exception>");
    } catch (const uvaio::TimeoutError&) {
      seen.push_back("TimeoutError");
    } catch (const std::runtime_error& e) {
      seen.push_back(e.what());
    }
    co_return seen;
  };
  auto seen = loop.run_until_complete(body());
  CHECK(joined(seen) == "clean-up failed, clean-up failed");
}

// --- wait_for: timeout <= 0, no timeout ---------------------------------------------------------

TEST_CASE("wait_for with a timeout <= 0 returns the result of a Task that is already done") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<std::vector<int>> {
    auto task = uvaio::create_task(value_after(0, 6));
    int v = co_await task;
    int zero = co_await uvaio::wait_for(task, 0s);
    int negative = co_await uvaio::wait_for(task, -1s);
    auto future = uvaio::get_running_loop().create_future<int>();
    future.set_result(7);
    int from_future = co_await uvaio::wait_for(future, 0s);
    co_return std::vector<int>{v, zero, negative, from_future};
  };
  CHECK(listed(loop.run_until_complete(body())) == "6 6 6 7");
}

// Found by fuzz/scheduler_fuzz.cpp (fuzz/regressions/wait_for-zero-timeout-on-cancelled-task):
// the task had finished -- cancelled -- before wait_for saw it, so no time ran
// out on it and asyncio's `return fut.result()` raises CancelledError.
TEST_CASE("wait_for with a timeout <= 0 on a Task or Future cancelled earlier raises CancelledError, not "
          "TimeoutError") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<std::string> {
    std::vector<std::string> seen;
    auto task = uvaio::create_task(value_after(3, 6));
    task.cancel("early");
    co_await test_support::settle(task);
    auto future = uvaio::get_running_loop().create_future<int>();
    future.cancel("also early");
    for (int i = 0; i < 4; ++i) {
      const uvaio::Duration timeout = (i % 2 == 0) ? uvaio::Duration(0s) : uvaio::Duration(-1s);
      try {
        int v = 0;
        if (i < 2) {
          v = co_await uvaio::wait_for(task, timeout);
        } else {
          v = co_await uvaio::wait_for(future, timeout);
        }
        seen.push_back("value " + std::to_string(v));
      } catch (const uvaio::TimeoutError&) {
        seen.push_back("TimeoutError");
      } catch (const uvaio::CancelledError& e) {
        seen.push_back("CancelledError: " + e.message());
      }
    }
    CHECK(uvaio::current_task().cancelling() == 0);
    co_return joined(seen);
  };
  CHECK(loop.run_until_complete(body()) ==
        "CancelledError: early, CancelledError: early, CancelledError: also early, CancelledError: also early");
}

TEST_CASE("wait_for with a timeout <= 0 never starts an Async, frees it, and throws TimeoutError") {
  Counted::reset();
  uvaio::Loop loop;
  auto body = [](bool* started) -> uvaio::Async<std::string> {
    std::vector<std::string> seen;
    for (uvaio::Duration timeout : {uvaio::Duration(0s), uvaio::Duration(-1s)}) {
      try {
        auto never = mark_started(started, Counted(1));
        int v = co_await uvaio::wait_for(std::move(never), timeout);
        seen.push_back("value " + std::to_string(v));
      } catch (const uvaio::TimeoutError&) {
        seen.push_back("TimeoutError");
      }
      CHECK(Counted::alive() == 0);
    }
    co_return seen.at(0) + ", " + seen.at(1);
  };
  bool started = false;
  std::string seen = loop.run_until_complete(body(&started));
  CHECK(seen == "TimeoutError, TimeoutError");
  CHECK_FALSE(started);
  CHECK(Counted::alive() == 0);
}

TEST_CASE("wait_for with a timeout <= 0 cancels a pending Task, waits for its clean-up, then throws "
          "TimeoutError") {
  uvaio::Loop loop;
  auto body = [](Cleanup* cleanup) -> uvaio::Async<std::string> {
    auto inner = uvaio::create_task(sleeper(cleanup));
    co_await uvaio::sleep(0s);  // it is sleeping now
    std::string seen = "<no exception>";
    try {
      int v = co_await uvaio::wait_for(inner, 0s);
      seen = "value " + std::to_string(v);
    } catch (const uvaio::TimeoutError& e) {
      seen = "TimeoutError nesting " + nested_in(e);
      CHECK(inner.cancelled());
      CHECK(cleanup->cleaned_up);
    }
    CHECK(uvaio::current_task().cancelling() == 0);
    co_return seen;
  };
  Cleanup cleanup;
  std::string seen = loop.run_until_complete(body(&cleanup));
  CHECK(seen == "TimeoutError nesting CancelledError");
}

TEST_CASE("wait_for without a timeout waits as long as it takes") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<std::vector<int>> {
    const auto start = Clock::now();
    int a = co_await uvaio::wait_for(value_after_sleep(30ms, 1), std::nullopt);
    const bool waited = Clock::now() - start >= 30ms;
    auto task = uvaio::create_task(value_after(10, 2));
    int b = co_await uvaio::wait_for(task, std::nullopt);
    co_return std::vector<int>{a, b, waited ? 1 : 0};
  };
  CHECK(listed(loop.run_until_complete(body())) == "1 2 1");
}

// --- wait_for: cancellation from outside -----------------------------------------------------

TEST_CASE("cancelling the task running wait_for cancels the inner Async and throws CancelledError, not "
          "TimeoutError") {
  uvaio::Loop loop;
  auto body = [](Cleanup* cleanup, std::string* seen) -> uvaio::Async<int> {
    try {
      int v = co_await uvaio::wait_for(sleeper(cleanup), 1h);
      co_return v;
    } catch (const uvaio::CancelledError& e) {
      *seen = "CancelledError: " + e.message();
      throw;
    } catch (const uvaio::TimeoutError&) {
      *seen = "TimeoutError";
      throw;
    }
  };
  Cleanup cleanup;
  std::string seen = "<nothing>";
  auto task = loop.create_task(body(&cleanup, &seen));
  run_iterations(loop, 2);
  REQUIRE_FALSE(task.done());
  task.cancel("outer");
  CHECK(cancelled_message([&] { loop.run_until_complete(task); }) == "outer");
  CHECK(seen == "CancelledError: outer");
  CHECK(cleanup.cleaned_up);
  CHECK(task.cancelled());
}

TEST_CASE("cancelling the task running wait_for on a Task cancels that Task and throws CancelledError") {
  uvaio::Loop loop;
  auto body = [](uvaio::Task<int> inner) -> uvaio::Async<int> {
    int v = co_await uvaio::wait_for(inner, 1h);
    co_return v;
  };
  Cleanup cleanup;
  auto inner = loop.create_task(sleeper(&cleanup));
  auto task = loop.create_task(body(inner));
  run_iterations(loop, 2);
  task.cancel("outer");
  CHECK(cancelled_message([&] { loop.run_until_complete(task); }) == "outer");
  CHECK(inner.cancelled());
  CHECK(cleanup.cleaned_up);
}

TEST_CASE("cancelling the task running wait_for in the iteration where the inner finished still throws "
          "CancelledError") {
  uvaio::Loop loop;
  auto body = [](uvaio::Future<int> future) -> uvaio::Async<int> {
    int v = co_await uvaio::wait_for(future, 1h);
    co_return v;
  };
  auto future = loop.create_future<int>();
  auto task = loop.create_task(body(future));
  run_iterations(loop, 2);
  REQUIRE_FALSE(task.done());
  // Both happen before the task runs again: its wake-up for the result is
  // already queued when the cancellation arrives.
  future.set_result(1);
  task.cancel("outer");
  CHECK(cancelled_message([&] { loop.run_until_complete(task); }) == "outer");
  CHECK(task.cancelled());
}

TEST_CASE("after a wait_for time-out the task is not left cancelled, also when it was cancelling before") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<std::vector<int>> {
    std::vector<int> counts;
    // A cancellation the task caught earlier and did not uncancel().
    uvaio::current_task().cancel("earlier");
    try {
      co_await uvaio::sleep(0s);
    } catch (const uvaio::CancelledError&) {
    }
    counts.push_back(uvaio::current_task().cancelling());
    bool timed_out = false;
    try {
      int v = co_await uvaio::wait_for(sleep_forever(), 20ms);
      (void)v;
    } catch (const uvaio::TimeoutError&) {
      timed_out = true;
    }
    counts.push_back(timed_out ? 1 : 0);
    counts.push_back(uvaio::current_task().cancelling());
    co_await uvaio::sleep(1ms);  // not interrupted
    co_return counts;
  };
  auto task = loop.create_task(body());
  CHECK(listed(loop.run_until_complete(task)) == "1 1 1");
  CHECK_FALSE(task.cancelled());
}

// --- nested time-outs ------------------------------------------------------------------------------

uvaio::Async<int> inner_times_out(bool* caught) {
  try {
    int v = co_await uvaio::wait_for(sleep_forever(), 20ms);
    (void)v;
  } catch (const uvaio::TimeoutError&) {
    *caught = true;
  }
  co_await uvaio::sleep(1ms);  // the outer time-out is still running
  co_return 5;
}

TEST_CASE("nested wait_for: an inner time-out is caught inside while the outer goes on") {
  uvaio::Loop loop;
  auto body = [](bool* caught) -> uvaio::Async<int> {
    int v = co_await uvaio::wait_for(inner_times_out(caught), 1h);
    co_return v;
  };
  bool caught = false;
  auto task = loop.create_task(body(&caught));
  CHECK(loop.run_until_complete(task) == 5);
  CHECK(caught);
  CHECK(task.cancelling() == 0);
}

uvaio::Async<int> inner_until(uvaio::TimePoint deadline, bool* caught) {
  try {
    int v = co_await uvaio::timeout_at(deadline, sleep_forever());
    co_return v;
  } catch (const uvaio::TimeoutError&) {
    *caught = true;
  }
  co_return -1;
}

TEST_CASE("nested time-outs expiring at once give the outer TimeoutError and let the inner pass the cancellation") {
  uvaio::Loop loop;
  auto body = [](bool* caught) -> uvaio::Async<std::string> {
    const uvaio::TimePoint deadline = Clock::now() + 20ms;
    std::string seen = "<no exception>";
    try {
      int v = co_await uvaio::timeout_at(deadline, inner_until(deadline, caught));
      seen = "value " + std::to_string(v);
    } catch (const uvaio::TimeoutError&) {
      seen = "TimeoutError";
    }
    CHECK(uvaio::current_task().cancelling() == 0);
    co_return seen;
  };
  bool caught = false;
  std::string seen = loop.run_until_complete(body(&caught));
  CHECK(seen == "TimeoutError");
  CHECK_FALSE(caught);
}

uvaio::Async<int> block_then_sleep_forever() {
  // Blocks the loop past both deadlines before it first suspends.
  std::this_thread::sleep_for(60ms);
  co_await uvaio::sleep(1h);
  co_return 0;
}

uvaio::Async<int> inner_blocks(bool* caught) {
  try {
    int v = co_await uvaio::wait_for(block_then_sleep_forever(), 10ms);
    co_return v;
  } catch (const uvaio::TimeoutError&) {
    *caught = true;
  }
  co_return -1;
}

TEST_CASE("nested wait_for whose deadlines both passed while the loop was blocked gives the outer TimeoutError") {
  uvaio::Loop loop;
  auto body = [](bool* caught) -> uvaio::Async<std::string> {
    std::string seen = "<no exception>";
    try {
      int v = co_await uvaio::wait_for(inner_blocks(caught), 30ms);
      seen = "value " + std::to_string(v);
    } catch (const uvaio::TimeoutError&) {
      seen = "TimeoutError";
    }
    CHECK(uvaio::current_task().cancelling() == 0);
    co_return seen;
  };
  bool caught = false;
  std::string seen = loop.run_until_complete(body(&caught));
  CHECK(seen == "TimeoutError");
  CHECK_FALSE(caught);
}

// --- timeout_at, timeout ---------------------------------------------------------------------------

TEST_CASE("timeout_at with a deadline in the past never starts an Async and throws TimeoutError, but returns a done "
          "Task's result") {
  Counted::reset();
  uvaio::Loop loop;
  auto body = [](bool* started) -> uvaio::Async<std::string> {
    std::string seen = "<no exception>";
    try {
      auto never = mark_started(started, Counted(1));
      int v = co_await uvaio::timeout_at(Clock::now() - 1s, std::move(never));
      seen = "value " + std::to_string(v);
    } catch (const uvaio::TimeoutError&) {
      seen = "TimeoutError";
    }
    auto done = uvaio::create_task(value_after(0, 4));
    co_await done;
    int v = co_await uvaio::timeout_at(Clock::now() - 1s, done);
    int in_time = co_await uvaio::timeout_at(Clock::now() + 1h, value_after(1, 5));
    co_return seen + " " + std::to_string(v) + " " + std::to_string(in_time);
  };
  bool started = false;
  CHECK(loop.run_until_complete(body(&started)) == "TimeoutError 4 5");
  CHECK_FALSE(started);
  CHECK(Counted::alive() == 0);
}

TEST_CASE("timeout(delay, aw) behaves as wait_for") {
  uvaio::Loop loop;
  auto body = [](Cleanup* cleanup) -> uvaio::Async<std::string> {
    std::string seen = "<no exception>";
    try {
      int v = co_await uvaio::timeout(20ms, sleeper(cleanup));
      seen = "value " + std::to_string(v);
    } catch (const uvaio::TimeoutError& e) {
      seen = "TimeoutError nesting " + nested_in(e);
    }
    int v = co_await uvaio::timeout(1h, value_after(1, 3));
    co_return seen + ", then " + std::to_string(v);
  };
  Cleanup cleanup;
  CHECK(loop.run_until_complete(body(&cleanup)) == "TimeoutError nesting CancelledError, then 3");
  CHECK(cleanup.cleaned_up);
}

// --- as_completed ---------------------------------------------------------------------------------

TEST_CASE("as_completed yields the results in completion order") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<std::vector<int>> {
    std::vector<uvaio::Async<int>> work;
    work.push_back(value_after_sleep(30ms, 30));
    work.push_back(value_after_sleep(10ms, 10));
    work.push_back(value_after_sleep(20ms, 20));
    std::vector<int> order;
    for (auto next : uvaio::as_completed(std::move(work))) {
      int v = co_await next;
      order.push_back(v);
    }
    co_return order;
  };
  CHECK(listed(loop.run_until_complete(body())) == "10 20 30");
}

TEST_CASE("as_completed over futures completed in a chosen order yields in that order") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<std::vector<int>> {
    std::vector<uvaio::Future<int>> futures;
    for (int i = 0; i < 4; ++i) futures.push_back(uvaio::get_running_loop().create_future<int>());
    auto completer = uvaio::create_task(complete_in_order(futures, {2, 0, 3, 1}));
    auto completed = uvaio::as_completed(futures);
    std::vector<int> order{static_cast<int>(completed.size())};
    for (auto next : completed) {
      int v = co_await next;
      order.push_back(v);
    }
    co_await completer;
    co_return order;
  };
  CHECK(listed(loop.run_until_complete(body())) == "4 20 0 30 10");
}

TEST_CASE("as_completed rethrows a failed input's exception from the corresponding awaitable") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<std::vector<std::string>> {
    std::vector<uvaio::Task<int>> tasks{uvaio::create_task(fail_after(2, "late failure")),
                                        uvaio::create_task(value_after(1, 1))};
    std::vector<std::string> seen;
    for (auto next : uvaio::as_completed(tasks)) {
      try {
        int v = co_await next;
        seen.push_back(std::to_string(v));
      } catch (const std::invalid_argument& e) {
        seen.push_back(e.what());
      }
    }
    co_return seen;
  };
  CHECK(joined(loop.run_until_complete(body())) == "1, late failure");
}

TEST_CASE("as_completed with a timeout makes the remaining awaitables throw TimeoutError and cancels nothing") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<std::vector<std::string>> {
    std::vector<uvaio::Task<int>> tasks{uvaio::create_task(sleep_forever()), uvaio::create_task(value_after(1, 1)),
                                        uvaio::create_task(sleep_forever())};
    std::vector<std::string> seen;
    const auto start = Clock::now();
    for (auto next : uvaio::as_completed(tasks, 20ms)) {
      try {
        int v = co_await next;
        seen.push_back(std::to_string(v));
      } catch (const uvaio::TimeoutError&) {
        seen.push_back("TimeoutError");
      }
    }
    CHECK(Clock::now() - start >= 20ms);
    for (std::size_t i : {0, 2}) {
      CHECK_FALSE(tasks[i].done());
      CHECK(tasks[i].cancelling() == 0);
    }
    co_await cancel_and_finish(tasks[0]);
    co_await cancel_and_finish(tasks[2]);
    co_return seen;
  };
  CHECK(joined(loop.run_until_complete(body())) == "1, TimeoutError, TimeoutError");
}

TEST_CASE("as_completed collapses duplicates") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<std::vector<int>> {
    auto a = uvaio::create_task(value_after(2, 1));
    auto b = uvaio::create_task(value_after(1, 2));
    std::vector<uvaio::Task<int>> tasks{a, b, a, b, a};
    auto completed = uvaio::as_completed(tasks);
    std::vector<int> seen{static_cast<int>(completed.size())};
    for (auto next : completed) {
      int v = co_await next;
      seen.push_back(v);
    }
    co_return seen;
  };
  CHECK(listed(loop.run_until_complete(body())) == "2 2 1");
}

// --- shield ----------------------------------------------------------------------------------------

TEST_CASE("shield passes the result or the exception of the shielded task through") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<std::string> {
    auto task = uvaio::create_task(value_after(1, 4));
    int a = co_await uvaio::shield(task);
    int b = co_await uvaio::shield(value_after(1, 5));
    std::string failure = "<no exception>";
    try {
      int v = co_await uvaio::shield(fail_after(1, "shielded failure"));
      (void)v;
    } catch (const std::invalid_argument& e) {
      failure = e.what();
    }
    co_return std::to_string(a) + " " + std::to_string(b) + " " + failure;
  };
  CHECK(loop.run_until_complete(body()) == "4 5 shielded failure");
}

TEST_CASE("cancelling the task awaiting shield gives it CancelledError at once while the shielded task goes on") {
  uvaio::Loop loop;
  auto body = [](uvaio::Task<int> inner) -> uvaio::Async<int> {
    int v = co_await uvaio::shield(inner);
    co_return v;
  };
  auto gate = loop.create_future<int>();
  auto inner = loop.create_task(await_future(gate));
  auto task = loop.create_task(body(inner));
  run_iterations(loop, 2);
  REQUIRE_FALSE(task.done());
  CHECK(task.cancel("outer only"));
  run_iterations(loop, 2);
  REQUIRE(task.done());
  CHECK(task.cancelled());
  CHECK(cancelled_message([&] { (void)task.result(); }) == "outer only");
  CHECK_FALSE(inner.done());
  CHECK(inner.cancelling() == 0);
  CHECK_FALSE(gate.cancelled());
  gate.set_result(3);
  CHECK(loop.run_until_complete(inner) == 3);
}

TEST_CASE("cancelling the shielded task cancels the task awaiting the shield") {
  uvaio::Loop loop;
  auto body = [](uvaio::Task<int> inner) -> uvaio::Async<int> {
    int v = co_await uvaio::shield(inner);
    co_return v;
  };
  auto inner = loop.create_task(sleep_forever());
  auto task = loop.create_task(body(inner));
  run_iterations(loop, 2);
  CHECK(inner.cancel("inner gone"));
  CHECK(cancelled_message([&] { loop.run_until_complete(task); }) == "inner gone");
  CHECK(task.cancelled());
  CHECK(inner.cancelled());
}

TEST_CASE("a shielded task failing after its awaiter was cancelled is reported once to the exception handler") {
  uvaio::Loop loop;
  HandlerCapture handler(loop);
  auto fails_on_gate = [](uvaio::Future<int> gate) -> uvaio::Async<int> {
    int v = co_await gate;
    (void)v;
    throw std::runtime_error("late failure");
  };
  auto body = [](uvaio::Task<int> inner) -> uvaio::Async<int> {
    int v = co_await uvaio::shield(inner);
    co_return v;
  };
  auto gate = loop.create_future<int>();
  {
    auto inner = loop.create_task(fails_on_gate(gate), "shielded");
    auto task = loop.create_task(body(inner));
    run_iterations(loop, 2);
    task.cancel();
    run_iterations(loop, 2);
    REQUIRE(task.cancelled());
    CHECK(handler.contexts.empty());
    gate.set_result(1);
    run_iterations(loop, 2);
    REQUIRE(inner.done());
  }  // the last handles go: no second report as "never retrieved"
  loop.close();
  REQUIRE(handler.contexts.size() == 1);
  CHECK(starts_with(handler.contexts[0].message, "Exception in shielded"));
  CHECK(handler.contexts[0].task_name == "shielded");
  CHECK(what_of(handler.contexts[0].exception) == "late failure");
}

TEST_CASE("a shielded task that succeeds after its awaiter was cancelled reports nothing") {
  uvaio::Loop loop;
  HandlerCapture handler(loop);
  auto body = [](uvaio::Task<int> inner) -> uvaio::Async<int> {
    int v = co_await uvaio::shield(inner);
    co_return v;
  };
  auto gate = loop.create_future<int>();
  auto inner = loop.create_task(await_future(gate));
  auto task = loop.create_task(body(inner));
  run_iterations(loop, 2);
  task.cancel();
  run_iterations(loop, 2);
  gate.set_result(1);
  CHECK(loop.run_until_complete(inner) == 1);
  loop.close();
  CHECK(handler.contexts.empty());
}

TEST_CASE("wait_for on a shield cancels only the outer on time-out, and the shielded task finishes later") {
  uvaio::Loop loop;
  auto body = [](uvaio::Task<int> inner, uvaio::Future<int> gate) -> uvaio::Async<std::string> {
    std::string seen = "<no exception>";
    try {
      int v = co_await uvaio::wait_for(uvaio::shield(inner), 20ms);
      seen = "value " + std::to_string(v);
    } catch (const uvaio::TimeoutError&) {
      seen = "TimeoutError";
    }
    CHECK_FALSE(inner.done());
    CHECK(inner.cancelling() == 0);
    CHECK_FALSE(gate.cancelled());
    gate.set_result(8);
    int v = co_await inner;
    CHECK(uvaio::current_task().cancelling() == 0);
    co_return seen + ", then " + std::to_string(v);
  };
  auto gate = loop.create_future<int>();
  auto inner = loop.create_task(await_future(gate));
  CHECK(loop.run_until_complete(body(inner, gate)) == "TimeoutError, then 8");
}

TEST_SUITE_END();
