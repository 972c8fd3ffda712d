#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support.hpp"

using test_support::run_one_iteration;
using test_support::run_iterations;
using test_support::cancelled_message;

using namespace std::chrono_literals;
using test_support::Counted;
using test_support::HandlerCapture;

namespace {

struct Big {
  std::array<char, 65536> bytes{};
};

std::string what_of(const std::exception_ptr& error) {
  if (!error) return "<null>";
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "<not a std::exception>";
  }
}

// N of a "Task-N" name, or -1.
long task_number(const std::string& name) {
  if (name.rfind("Task-", 0) != 0) return -1;
  return std::stol(name.substr(5));
}

uvaio::Async<int> mark_started(bool* started) {
  *started = true;
  co_return 1;
}

uvaio::Async<int> value_after_yield(int value) {
  co_await uvaio::sleep(0s);
  co_return value;
}

uvaio::Async<void> yield_then_set(bool* flag) {
  co_await uvaio::sleep(0s);
  co_await uvaio::sleep(0s);
  *flag = true;
}

uvaio::Async<int> fail_with(std::string message) {
  throw std::invalid_argument(message);
  co_return 0;
}

uvaio::Async<void> nothing() { co_return; }

uvaio::Async<std::unique_ptr<int>> make_unique_int(int value) { co_return std::make_unique<int>(value); }

uvaio::Async<Big> make_big(char fill) {
  Big big;
  big.bytes.fill(fill);
  co_return big;
}

uvaio::Async<int> await_future(uvaio::Future<int> future) {
  int v = co_await future;
  co_return v;
}

uvaio::Async<int> await_task(uvaio::Task<int> task) {
  int v = co_await task;
  co_return v;
}

uvaio::Async<void> sleep_forever() { co_await uvaio::sleep(1h); }

uvaio::Async<void> sleep_forever_holding_counted() {
  Counted local(1);
  co_await uvaio::sleep(1h);
  (void)local;
}

std::vector<std::string> sorted_names(const std::vector<uvaio::TaskRef>& tasks) {
  std::vector<std::string> names;
  for (const auto& t : tasks) names.push_back(t.name());
  std::sort(names.begin(), names.end());
  return names;
}

bool all_bytes_are(const Big& big, char fill) {
  return std::all_of(big.bytes.begin(), big.bytes.end(), [fill](char c) { return c == fill; });
}

}  // namespace

TEST_SUITE_BEGIN("task");

// --- scheduling and ownership ------------------------------------------------

TEST_CASE("create_task schedules the body but does not run it inline, even one that returns at once") {
  uvaio::Loop loop;
  bool started = false;
  auto task = loop.create_task(mark_started(&started));
  CHECK_FALSE(started);
  CHECK_FALSE(task.done());
  run_one_iteration(loop);
  CHECK(started);
  CHECK(task.done());
  CHECK(task.result() == 1);
}

TEST_CASE("create_task from inside a running task does not run the new body before the creator yields") {
  uvaio::Loop loop;
  auto body = [](bool* started) -> uvaio::Async<bool> {
    auto child = uvaio::create_task(mark_started(started));
    bool started_inline = *started;
    CHECK_FALSE(child.done());
    int v = co_await child;
    CHECK(v == 1);
    CHECK(*started);
    co_return started_inline;
  };
  bool started = false;
  bool started_inline = loop.run_until_complete(body(&started));
  CHECK_FALSE(started_inline);
  CHECK(started);
}

TEST_CASE("create_task outside a running loop throws RuntimeError") {
  bool started = false;
  CHECK_THROWS_WITH_AS(uvaio::create_task(mark_started(&started)), "no running event loop", uvaio::RuntimeError);
  CHECK_FALSE(started);
}

TEST_CASE("a task whose every handle was dropped still runs to its end") {
  uvaio::Loop loop;
  bool finished = false;
  (void)loop.create_task(yield_then_set(&finished));
  run_iterations(loop, 5);
  CHECK(finished);
}

// --- results -----------------------------------------------------------------

TEST_CASE("a task that returns a value is done with that result and no exception") {
  uvaio::Loop loop;
  auto task = loop.create_task(value_after_yield(12));
  int v = loop.run_until_complete(task);
  CHECK(v == 12);
  CHECK(task.done());
  CHECK_FALSE(task.cancelled());
  CHECK(task.result() == 12);
  CHECK(task.exception() == nullptr);
}

TEST_CASE("a task whose body throws is done with that exception, type intact") {
  uvaio::Loop loop;
  auto task = loop.create_task(fail_with("broken"));
  run_one_iteration(loop);
  REQUIRE(task.done());
  CHECK_FALSE(task.cancelled());
  CHECK_THROWS_WITH_AS(task.result(), "broken", std::invalid_argument);
  CHECK_THROWS_WITH_AS(std::rethrow_exception(task.exception()), "broken", std::invalid_argument);
  CHECK_THROWS_WITH_AS(loop.run_until_complete(task), "broken", std::invalid_argument);
}

TEST_CASE("a Task<void> completes with no exception") {
  uvaio::Loop loop;
  auto task = loop.create_task(nothing());
  loop.run_until_complete(task);
  CHECK(task.done());
  CHECK_FALSE(task.cancelled());
  CHECK(task.exception() == nullptr);
  CHECK_NOTHROW(task.result());
}

TEST_CASE("a task may return a move-only value, which co_await std::move(task) moves out") {
  uvaio::Loop loop;
  auto task = loop.create_task(make_unique_int(33));
  auto body = [](uvaio::Task<std::unique_ptr<int>> t) -> uvaio::Async<int> {
    const std::unique_ptr<int>& seen = co_await t;
    REQUIRE(seen != nullptr);
    int first = *seen;
    std::unique_ptr<int> taken = co_await std::move(t);
    REQUIRE(taken != nullptr);
    CHECK(t.result() == nullptr);  // NOLINT(bugprone-use-after-move): the handle stays, the value left
    co_return first + *taken;
  };
  int v = loop.run_until_complete(body(task));
  CHECK(v == 66);
}

TEST_CASE("a task may return a 64 KiB value") {
  uvaio::Loop loop;
  auto task = loop.create_task(make_big('k'));
  auto body = [](uvaio::Task<Big> t) -> uvaio::Async<bool> {
    Big copy = co_await t;
    co_return all_bytes_are(copy, 'k');
  };
  bool intact = loop.run_until_complete(body(task));
  CHECK(intact);
  CHECK(all_bytes_are(task.result(), 'k'));
}

// --- names, current_task, all_tasks ---------------------------------------------

TEST_CASE("unnamed tasks are called Task-N with N increasing") {
  uvaio::Loop loop;
  auto first = loop.create_task(nothing());
  auto second = loop.create_task(nothing());
  long n1 = task_number(first.name());
  long n2 = task_number(second.name());
  CHECK(n1 > 0);
  CHECK(n2 > n1);
  loop.run_until_complete(second);
  loop.run_until_complete(first);
}

TEST_CASE("create_task takes a name, and set_name changes it") {
  uvaio::Loop loop;
  auto task = loop.create_task(nothing(), "worker");
  CHECK(task.name() == "worker");
  task.set_name("renamed");
  CHECK(task.name() == "renamed");
  uvaio::TaskRef ref = task;
  CHECK(ref.name() == "renamed");
  loop.run_until_complete(task);
}

TEST_CASE("current_task inside a task is that task, and empty outside any task") {
  uvaio::Loop loop;
  CHECK_FALSE(uvaio::current_task());
  auto body = [](uvaio::TaskRef* seen) -> uvaio::Async<std::string> {
    *seen = uvaio::current_task();
    co_await uvaio::sleep(0s);
    // Still the same after a suspension.
    co_return uvaio::current_task().name();
  };
  uvaio::TaskRef seen;
  auto task = loop.create_task(body(&seen), "me");
  std::string name_after_yield = loop.run_until_complete(task);
  REQUIRE(seen);
  CHECK(seen == uvaio::TaskRef(task));
  CHECK(seen.name() == "me");
  CHECK(name_after_yield == "me");
  CHECK_FALSE(uvaio::current_task());
}

TEST_CASE("current_task stays right when several tasks interleave") {
  uvaio::Loop loop;
  auto body = [](int rounds) -> uvaio::Async<bool> {
    const std::string mine = uvaio::current_task().name();
    bool right = true;
    for (int i = 0; i < rounds; ++i) {
      co_await uvaio::sleep(0s);
      right = right && uvaio::current_task().name() == mine;
    }
    co_return right;
  };
  auto a = loop.create_task(body(3), "a");
  auto b = loop.create_task(body(3), "b");
  bool a_right = loop.run_until_complete(a);
  bool b_right = loop.run_until_complete(b);
  CHECK(a_right);
  CHECK(b_right);
}

TEST_CASE("all_tasks lists the pending tasks of the running loop") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<void> {
    auto a = uvaio::create_task(value_after_yield(1), "a");
    auto b = uvaio::create_task(value_after_yield(2), "b");
    CHECK(sorted_names(uvaio::all_tasks()) == std::vector<std::string>{"a", "b", "main"});
    int va = co_await a;
    int vb = co_await b;
    CHECK(va + vb == 3);
    CHECK(sorted_names(uvaio::all_tasks()) == std::vector<std::string>{"main"});
  };
  auto main_task = loop.create_task(body(), "main");
  loop.run_until_complete(main_task);
}

TEST_CASE("all_tasks outside a running loop throws RuntimeError") {
  uvaio::Loop loop;
  CHECK_THROWS_WITH_AS(uvaio::all_tasks(), "no running event loop", uvaio::RuntimeError);
}

// --- never retrieved, destroyed pending ------------------------------------------

TEST_CASE("a failed task nobody observed is reported once when its last handle goes") {
  uvaio::Loop loop;
  HandlerCapture handler(loop);
  std::string name;
  {
    auto task = loop.create_task(fail_with("unseen"));
    name = task.name();
    {
      auto copy = task;
      run_one_iteration(loop);
      REQUIRE(task.done());
    }
    CHECK(handler.contexts.empty());
  }
  REQUIRE(handler.contexts.size() == 1);
  CHECK(handler.contexts[0].message == "Task exception was never retrieved");
  CHECK(handler.contexts[0].task_name == name);
  CHECK_THROWS_WITH_AS(std::rethrow_exception(handler.contexts[0].exception), "unseen", std::invalid_argument);
  loop.close();
  CHECK(handler.contexts.size() == 1);
}

TEST_CASE("a failed task that nobody held is reported with its name once it finishes") {
  uvaio::Loop loop;
  HandlerCapture handler(loop);
  (void)loop.create_task(fail_with("dropped"), "orphan");
  run_one_iteration(loop);
  REQUIRE(handler.contexts.size() == 1);
  CHECK(handler.contexts[0].message == "Task exception was never retrieved");
  CHECK(handler.contexts[0].task_name == "orphan");
  CHECK(what_of(handler.contexts[0].exception) == "dropped");
  loop.close();
}

TEST_CASE("a failed task whose result() was called is not reported") {
  uvaio::Loop loop;
  HandlerCapture handler(loop);
  {
    auto task = loop.create_task(fail_with("seen"));
    run_one_iteration(loop);
    CHECK_THROWS_AS(task.result(), std::invalid_argument);
  }
  loop.close();
  CHECK(handler.contexts.empty());
}

TEST_CASE("a failed task that was awaited is not reported") {
  uvaio::Loop loop;
  HandlerCapture handler(loop);
  auto body = []() -> uvaio::Async<std::string> {
    auto failing = uvaio::create_task(fail_with("awaited"));
    std::string message;
    try {
      int v = co_await failing;
      (void)v;
    } catch (const std::invalid_argument& e) {
      message = e.what();
    }
    co_return message;
  };
  std::string message = loop.run_until_complete(body());
  CHECK(message == "awaited");
  loop.close();
  CHECK(handler.contexts.empty());
}

TEST_CASE("tasks still pending when the loop closes are destroyed, their locals freed, and each reported once") {
  Counted::reset();
  uvaio::Loop loop;
  HandlerCapture handler(loop);
  auto kept = loop.create_task(sleep_forever_holding_counted(), "kept");
  (void)loop.create_task(sleep_forever_holding_counted(), "dropped");
  run_one_iteration(loop);
  CHECK(Counted::alive() == 2);
  CHECK(handler.contexts.empty());
  loop.close();
  CHECK(Counted::alive() == 0);
  std::vector<std::string> reported;
  for (const auto& context : handler.contexts) {
    CHECK(context.message == "Task was destroyed but it is pending!");
    reported.push_back(context.task_name);
  }
  std::sort(reported.begin(), reported.end());
  CHECK(reported == std::vector<std::string>{"dropped", "kept"});
  CHECK(kept.done());
  CHECK(kept.cancelled());
}

// --- awaiting tasks ----------------------------------------------------------------

TEST_CASE("several tasks awaiting one task all get its value") {
  uvaio::Loop loop;
  auto source = loop.create_task(value_after_yield(5));
  auto a = loop.create_task(await_task(source));
  auto b = loop.create_task(await_task(source));
  auto c = loop.create_task(await_task(source));
  int vc = loop.run_until_complete(c);
  int va = loop.run_until_complete(a);
  int vb = loop.run_until_complete(b);
  CHECK(va == 5);
  CHECK(vb == 5);
  CHECK(vc == 5);
}

TEST_CASE("a task awaiting itself gets RuntimeError at the await") {
  uvaio::Loop loop;
  auto body = [](uvaio::Task<std::string>* self) -> uvaio::Async<std::string> {
    std::string message = "<no error>";
    try {
      std::string v = co_await *self;
      (void)v;
    } catch (const uvaio::RuntimeError& e) {
      message = e.what();
    }
    co_return message;
  };
  uvaio::Task<std::string> self;
  self = loop.create_task(body(&self));
  std::string message = loop.run_until_complete(self);
  CHECK(message.rfind("Task cannot await on itself", 0) == 0);
}

// --- cancellation ------------------------------------------------------------------

TEST_CASE("cancelling a task that awaits a future cancels the future, and the task ends cancelled with the message") {
  uvaio::Loop loop;
  auto f = loop.create_future<int>();
  auto task = loop.create_task(await_future(f));
  run_one_iteration(loop);
  REQUIRE_FALSE(task.done());
  CHECK(task.cancel("enough"));
  CHECK(f.cancelled());
  CHECK(cancelled_message([&] { (void)f.result(); }) == "enough");
  run_iterations(loop, 2);
  REQUIRE(task.done());
  CHECK(task.cancelled());
  CHECK(cancelled_message([&] { (void)task.result(); }) == "enough");
  CHECK(cancelled_message([&] { (void)task.exception(); }) == "enough");
  CHECK(cancelled_message([&] { (void)loop.run_until_complete(task); }) == "enough");
}

TEST_CASE("a task cancelled before its first step never runs its body and keeps the message") {
  uvaio::Loop loop;
  bool started = false;
  auto task = loop.create_task(mark_started(&started));
  CHECK(task.cancel("too early"));
  run_iterations(loop, 2);
  CHECK_FALSE(started);
  REQUIRE(task.done());
  CHECK(task.cancelled());
  CHECK(cancelled_message([&] { (void)task.result(); }) == "too early");
}

TEST_CASE("a task that catches CancelledError and returns a value completes normally") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<int> {
    bool caught = false;
    try {
      co_await uvaio::sleep(1h);
    } catch (const uvaio::CancelledError&) {
      caught = true;
    }
    co_return caught ? 42 : 0;
  };
  auto task = loop.create_task(body());
  run_one_iteration(loop);
  CHECK(task.cancel());
  int v = loop.run_until_complete(task);
  CHECK(v == 42);
  CHECK_FALSE(task.cancelled());
  CHECK(task.exception() == nullptr);
}

TEST_CASE("catch (const std::exception&) inside a cancelled task does not catch the CancelledError") {
  uvaio::Loop loop;
  auto body = [](bool* caught) -> uvaio::Async<int> {
    try {
      co_await uvaio::sleep(1h);
    } catch (const std::exception&) {
      *caught = true;
    }
    co_return 1;
  };
  bool caught = false;
  auto task = loop.create_task(body(&caught));
  run_one_iteration(loop);
  CHECK(task.cancel("no swallowing"));
  run_iterations(loop, 2);
  CHECK_FALSE(caught);
  REQUIRE(task.done());
  CHECK(task.cancelled());
  CHECK(cancelled_message([&] { (void)task.result(); }) == "no swallowing");
}

TEST_CASE("cancelling() counts cancel requests and uncancel() takes them back one by one") {
  uvaio::Loop loop;
  auto task = loop.create_task(sleep_forever());
  run_one_iteration(loop);
  CHECK(task.cancelling() == 0);
  CHECK(task.cancel());
  CHECK(task.cancel());
  CHECK(task.cancelling() == 2);
  CHECK(task.uncancel() == 1);
  CHECK(task.uncancel() == 0);
  CHECK(task.uncancel() == 0);
  CHECK(task.cancelling() == 0);
  // The first request had already reached the sleep, so the task still ends cancelled.
  run_iterations(loop, 2);
  REQUIRE(task.done());
  CHECK(task.cancelled());
}

TEST_CASE("uncancel() back to zero before the task runs withdraws the request") {
  uvaio::Loop loop;
  bool started = false;
  auto task = loop.create_task(mark_started(&started));
  CHECK(task.cancel());
  CHECK(task.uncancel() == 0);
  run_iterations(loop, 2);
  CHECK(started);
  REQUIRE(task.done());
  CHECK_FALSE(task.cancelled());
  CHECK(task.result() == 1);
}

TEST_CASE("cancel() on a done task returns false and leaves it as it was") {
  uvaio::Loop loop;
  auto task = loop.create_task(value_after_yield(3));
  loop.run_until_complete(task);
  CHECK_FALSE(task.cancel());
  CHECK_FALSE(task.cancelled());
  CHECK(task.cancelling() == 0);
  CHECK(task.result() == 3);
}

TEST_CASE("a task that cancels itself and returns without awaiting again ends cancelled") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<int> {
    CHECK(uvaio::current_task().cancel("self"));
    co_return 5;
  };
  auto task = loop.create_task(body());
  run_iterations(loop, 2);
  REQUIRE(task.done());
  CHECK(task.cancelled());
  CHECK(cancelled_message([&] { (void)task.result(); }) == "self");
}

TEST_CASE("a task that cancels itself and then sleeps 100 s gets CancelledError at once") {
  uvaio::Loop loop;
  auto body = [](std::string* caught) -> uvaio::Async<void> {
    uvaio::current_task().cancel("self");
    try {
      co_await uvaio::sleep(100s);
    } catch (const uvaio::CancelledError& e) {
      *caught = "CancelledError: " + e.message();
      throw;
    }
  };
  std::string caught;
  auto task = loop.create_task(body(&caught));
  // A few iterations whose poll never blocks: the sleep must end without its timer.
  run_iterations(loop, 3);
  CHECK(caught == "CancelledError: self");
  REQUIRE(task.done());
  CHECK(task.cancelled());
}

TEST_CASE("cancelling an outer task that awaits an inner task cancels the inner task too") {
  uvaio::Loop loop;
  auto inner_body = []() -> uvaio::Async<int> {
    co_await uvaio::sleep(1h);
    co_return 1;
  };
  auto inner = loop.create_task(inner_body(), "inner");
  auto outer = loop.create_task(await_task(inner), "outer");
  run_one_iteration(loop);
  REQUIRE_FALSE(inner.done());
  REQUIRE_FALSE(outer.done());
  CHECK(outer.cancel("from outside"));
  CHECK(inner.cancelling() == 1);
  run_iterations(loop, 3);
  REQUIRE(inner.done());
  REQUIRE(outer.done());
  CHECK(inner.cancelled());
  CHECK(outer.cancelled());
  CHECK(cancelled_message([&] { (void)inner.result(); }) == "from outside");
  CHECK(cancelled_message([&] { (void)outer.result(); }) == "from outside");
}

TEST_SUITE_END();
