#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <initializer_list>
#include <latch>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <uv.h>

#include "support.hpp"
using test_support::starts_with;

using test_support::run_one_iteration;

using namespace std::chrono_literals;
using test_support::Counted;
using test_support::HandlerCapture;
using test_support::LogCapture;

namespace {

using SteadyClock = std::chrono::steady_clock;

struct Boom : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// An exception type that does not derive from std::exception.
struct NotAnException {
  int code = 0;
};

void busy_wait(SteadyClock::duration duration) {
  const auto until = SteadyClock::now() + duration;
  while (SteadyClock::now() < until) {
  }
}

// "a b c" for {"a", "b", "c"}: readable when a CHECK fails.
std::string joined(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : " ") + item;
  return text;
}

// True if one captured line contains every one of `parts`.
bool any_line_with(const LogCapture& log, std::initializer_list<std::string> parts) {
  for (const std::string& line : log.lines()) {
    bool all = true;
    for (const std::string& part : parts) all = all && line.find(part) != std::string::npos;
    if (all) return true;
  }
  return false;
}

// Saves an environment variable and restores it when destroyed.
class EnvironmentGuard {
 public:
  explicit EnvironmentGuard(const char* name) : name_(name) {
    if (const char* value = std::getenv(name)) saved_ = value;
  }
  EnvironmentGuard(const EnvironmentGuard&) = delete;
  EnvironmentGuard& operator=(const EnvironmentGuard&) = delete;
  ~EnvironmentGuard() {
    if (saved_) {
      setenv(name_, saved_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> saved_;
};

uvaio::Async<int> answer() { co_return 42; }

uvaio::Async<int> mark_ran(bool* ran) {
  *ran = true;
  co_return 1;
}

uvaio::Async<int> fail_with_boom(std::string message) {
  throw Boom(message);
  co_return 0;
}

uvaio::Async<int> fail_with_plain(int code) {
  throw NotAnException{code};
  co_return 0;
}

uvaio::Async<int> add_one_when_set(uvaio::Future<int> gate, bool* started) {
  *started = true;
  int value = co_await gate;
  co_return value + 1;
}

uvaio::Async<bool> running_loop_is(uvaio::Loop* expected) {
  bool before = &uvaio::get_running_loop() == expected;
  co_await uvaio::sleep(0s);
  bool after = &uvaio::get_running_loop() == expected;
  co_return before && after;
}

// Starts work on the default executor that runs until it is asked to stop.
uvaio::Async<uvaio::Future<void>> start_work_until_stopped(std::latch* started, std::atomic<bool>* finished) {
  co_return uvaio::to_thread([started, finished](std::stop_token stop) {
    started->count_down();
    while (!stop.stop_requested()) std::this_thread::yield();
    finished->store(true);
  });
}

// A task that holds a Counted in its frame and waits for a future nobody sets.
uvaio::Async<void> hold_counted_until(uvaio::Future<void> gate) {
  Counted held(7);
  co_await gate;
}

uvaio::Async<void> queue_callbacks_then_sleep_zero(std::vector<std::string>* order) {
  uvaio::Loop& loop = uvaio::get_running_loop();
  loop.call_soon([order, &loop] {
    order->push_back("cb1");
    loop.call_soon([order] { order->push_back("cb3"); });
  });
  loop.call_soon([order] { order->push_back("cb2"); });
  co_await uvaio::sleep(0s);
  order->push_back("task");
}

uvaio::Async<void> sleep_block_sleep() {
  co_await uvaio::sleep(1ms);
  std::this_thread::sleep_for(10ms);
  co_await uvaio::sleep(10ms);
}

struct LoopReport {
  bool own_loop_in_callback = false;
  bool own_loop_in_task = false;
  bool own_loop_after_sleep = false;
  int value = 0;
};

uvaio::Async<int> report_own_loop(uvaio::Loop* expected, std::latch* both_running, LoopReport* report, int value) {
  report->own_loop_in_task = &uvaio::get_running_loop() == expected;
  // Each loop waits here until the other one runs a task too: both run at once.
  both_running->arrive_and_wait();
  co_await uvaio::sleep(1ms);
  report->own_loop_after_sleep = &uvaio::get_running_loop() == expected;
  co_return value;
}

}  // namespace

TEST_SUITE_BEGIN("loop");

// --- lifecycle ------------------------------------------------------------------

TEST_CASE("a Loop is neither copyable nor movable") {
  static_assert(!std::is_copy_constructible_v<uvaio::Loop>);
  static_assert(!std::is_copy_assignable_v<uvaio::Loop>);
  static_assert(!std::is_move_constructible_v<uvaio::Loop>);
  static_assert(!std::is_move_assignable_v<uvaio::Loop>);
}

TEST_CASE("close() is idempotent and afterwards every entry point throws Event loop is closed") {
  uvaio::Loop loop;
  uvaio::Future<int> made_before_close = loop.create_future<int>();
  CHECK_FALSE(loop.is_closed());
  loop.close();
  CHECK(loop.is_closed());
  CHECK_NOTHROW(loop.close());
  CHECK(loop.is_closed());

  Counted::reset();
  const char* closed = "Event loop is closed";
  CHECK_THROWS_WITH_AS(loop.run_forever(), closed, uvaio::RuntimeError);
  CHECK_THROWS_WITH_AS(loop.run_until_complete(answer()), closed, uvaio::RuntimeError);
  CHECK_THROWS_WITH_AS(loop.run_until_complete(made_before_close), closed, uvaio::RuntimeError);
  CHECK_THROWS_WITH_AS(loop.call_soon([c = Counted(1)] {}), closed, uvaio::RuntimeError);
  CHECK_THROWS_WITH_AS(loop.call_later(1ms, [c = Counted(2)] {}), closed, uvaio::RuntimeError);
  CHECK_THROWS_WITH_AS(loop.call_at(loop.time(), [c = Counted(3)] {}), closed, uvaio::RuntimeError);
  CHECK_THROWS_WITH_AS(loop.create_task(answer()), closed, uvaio::RuntimeError);
  CHECK_THROWS_WITH_AS(loop.create_future<int>(), closed, uvaio::RuntimeError);
  CHECK_THROWS_WITH_AS((void)loop.run_in_executor(nullptr, [] { return 1; }), closed, uvaio::RuntimeError);
  CHECK_THROWS_WITH_AS(loop.call_soon_threadsafe([c = Counted(4)] {}), closed, uvaio::RuntimeError);
  // The refused callables were not kept.
  CHECK(Counted::alive() == 0);

  // From another thread too.
  bool threw_closed = false;
  std::thread other([&loop, &threw_closed] {
    try {
      loop.call_soon_threadsafe([] {});
    } catch (const uvaio::RuntimeError& e) {
      threw_closed = std::string(e.what()) == "Event loop is closed";
    }
  });
  other.join();
  CHECK(threw_closed);
  CHECK(loop.is_closed());
}

TEST_CASE("close() from inside a callback throws Cannot close a running event loop and the loop goes on") {
  uvaio::Loop loop;
  std::string message;
  bool still_running = false;
  bool next_ran = false;
  loop.call_soon([&] {
    try {
      loop.close();
    } catch (const uvaio::RuntimeError& e) {
      message = e.what();
    }
    still_running = loop.is_running();
  });
  loop.call_soon([&] {
    next_ran = true;
    loop.stop();
  });
  loop.run_forever();
  CHECK(message == "Cannot close a running event loop");
  CHECK(still_running);
  CHECK(next_ran);
  CHECK_FALSE(loop.is_closed());
  loop.close();
  CHECK(loop.is_closed());
}

TEST_CASE("close() succeeds with pending timers, running executor work and a handle the user opened") {
  LogCapture log;
  Counted::reset();
  uv_timer_t user_timer{};
  std::atomic<int> user_timer_ticks{0};
  std::latch work_started(1);
  std::atomic<bool> work_finished{false};
  {
    uvaio::Loop loop;
    REQUIRE(uv_timer_init(loop.native(), &user_timer) == 0);
    user_timer.data = &user_timer_ticks;
    REQUIRE(uv_timer_start(
                &user_timer, [](uv_timer_t* t) { ++*static_cast<std::atomic<int>*>(t->data); }, 1, 1) == 0);
    (void)loop.call_later(1h, [c = Counted(1)] {});
    (void)loop.call_at(loop.time() + 2h, [c = Counted(2)] {});
    CHECK(Counted::alive() == 2);

    uvaio::Future<void> work = loop.run_until_complete(start_work_until_stopped(&work_started, &work_finished));
    work_started.wait();
    CHECK_FALSE(work.done());

    loop.close();
    CHECK(loop.is_closed());
    // close() asked the running work to stop and waited for it.
    CHECK(work_finished.load());
    CHECK(Counted::alive() == 0);
    CHECK(uv_is_closing(reinterpret_cast<uv_handle_t*>(&user_timer)) != 0);
  }
  CHECK_FALSE(log.contains("uv_loop_close"));
}

TEST_CASE("destroying a loop that was not closed closes it") {
  LogCapture log;
  Counted::reset();
  uv_timer_t user_timer{};
  {
    uvaio::Loop loop;
    REQUIRE(uv_timer_init(loop.native(), &user_timer) == 0);
    REQUIRE(uv_timer_start(&user_timer, [](uv_timer_t*) {}, 1, 1) == 0);
    (void)loop.call_later(1h, [c = Counted(1)] {});
    uvaio::Future<void> never_set = loop.create_future<void>();
    (void)loop.create_task(hold_counted_until(never_set), "holder");
    run_one_iteration(loop);
    CHECK(Counted::alive() == 2);  // the timer's callable and the task's local
  }
  CHECK(Counted::alive() == 0);
  CHECK(uv_is_closing(reinterpret_cast<uv_handle_t*>(&user_timer)) != 0);
  CHECK_FALSE(log.contains("uv_loop_close"));
  CHECK(log.count("Task was destroyed but it is pending!") == 1);
}

// --- running ----------------------------------------------------------------------

TEST_CASE("run_until_complete returns the value of an Async, a Task and a Future") {
  uvaio::Loop loop;
  int from_async = loop.run_until_complete(answer());
  CHECK(from_async == 42);

  uvaio::Task<int> task = loop.create_task(answer());
  int from_task = loop.run_until_complete(task);
  CHECK(from_task == 42);
  int from_task_rvalue = loop.run_until_complete(loop.create_task(answer()));
  CHECK(from_task_rvalue == 42);

  uvaio::Future<std::string> future = loop.create_future<std::string>();
  loop.call_soon([future] { future.set_result("from a future"); });
  std::string from_future = loop.run_until_complete(future);
  CHECK(from_future == "from a future");

  uvaio::Future<void> void_future = loop.create_future<void>();
  loop.call_soon([void_future] { void_future.set_result(); });
  loop.run_until_complete(void_future);
  CHECK(void_future.done());
}

TEST_CASE("run_until_complete rethrows the exception of an Async, a Task and a Future with its type") {
  uvaio::Loop loop;
  CHECK_THROWS_WITH_AS(loop.run_until_complete(fail_with_boom("async failed")), "async failed", Boom);

  uvaio::Task<int> task = loop.create_task(fail_with_boom("task failed"));
  CHECK_THROWS_WITH_AS(loop.run_until_complete(task), "task failed", Boom);

  uvaio::Future<int> future = loop.create_future<int>();
  loop.call_soon([future] { future.set_exception(Boom("future failed")); });
  CHECK_THROWS_WITH_AS(loop.run_until_complete(future), "future failed", Boom);

  int code = 0;
  try {
    loop.run_until_complete(fail_with_plain(17));
  } catch (const NotAnException& e) {
    code = e.code;
  }
  CHECK(code == 17);
}

TEST_CASE("run_until_complete or run_forever inside the running loop throws This event loop is already running") {
  uvaio::Loop loop;
  std::vector<std::string> messages;
  bool still_running = false;
  bool still_the_running_loop = false;
  uvaio::Future<int> other = loop.create_future<int>();
  loop.call_soon([&] {
    try {
      loop.run_forever();
    } catch (const uvaio::RuntimeError& e) {
      messages.emplace_back(e.what());
    }
    try {
      loop.run_until_complete(other);
    } catch (const uvaio::RuntimeError& e) {
      messages.emplace_back(e.what());
    }
    still_running = loop.is_running();
    still_the_running_loop = &uvaio::get_running_loop() == &loop;
  });
  run_one_iteration(loop);
  REQUIRE(messages.size() == 2);
  CHECK(messages[0] == "This event loop is already running");
  CHECK(messages[1] == "This event loop is already running");
  CHECK(still_running);
  CHECK(still_the_running_loop);
  CHECK_FALSE(loop.is_running());
}

TEST_CASE("run_until_complete of a coroutine inside the running loop throws and schedules nothing") {
  LogCapture log;
  bool coroutine_ran = false;
  {
    uvaio::Loop loop;
    std::string message;
    std::size_t tasks_after = 99;
    loop.call_soon([&] {
      try {
        loop.run_until_complete(mark_ran(&coroutine_ran));
      } catch (const uvaio::RuntimeError& e) {
        message = e.what();
      }
      tasks_after = uvaio::all_tasks().size();
    });
    run_one_iteration(loop);
    run_one_iteration(loop);
    CHECK(message == "This event loop is already running");
    // asyncio checks that the loop is not running before wrapping the coroutine in a task.
    CHECK(tasks_after == 0);
    CHECK_FALSE(coroutine_ran);
  }
  CHECK_FALSE(log.contains("Task was destroyed but it is pending!"));
}

TEST_CASE("running a second loop inside a callback of the first throws Cannot run the event loop while another loop is running") {
  uvaio::Loop outer;
  uvaio::Loop inner;
  uvaio::Future<int> inner_future = inner.create_future<int>();
  std::vector<std::string> messages;
  bool outer_still_running = false;
  bool inner_running = true;
  outer.call_soon([&] {
    try {
      inner.run_forever();
    } catch (const uvaio::RuntimeError& e) {
      messages.emplace_back(e.what());
    }
    try {
      inner.run_until_complete(inner_future);
    } catch (const uvaio::RuntimeError& e) {
      messages.emplace_back(e.what());
    }
    outer_still_running = &uvaio::get_running_loop() == &outer && outer.is_running();
    inner_running = inner.is_running();
  });
  run_one_iteration(outer);
  REQUIRE(messages.size() == 2);
  CHECK(messages[0] == "Cannot run the event loop while another loop is running");
  CHECK(messages[1] == "Cannot run the event loop while another loop is running");
  CHECK(outer_still_running);
  CHECK_FALSE(inner_running);
  // The inner loop was not harmed.
  inner.call_soon([inner_future] { inner_future.set_result(5); });
  int value = inner.run_until_complete(inner_future);
  CHECK(value == 5);
}

TEST_CASE("two loops run at the same time on two threads, each the running loop of its own thread") {
  std::latch both_running(2);
  LoopReport reports[2];
  auto run_on_own_loop = [&both_running](LoopReport* report, int value) {
    uvaio::Loop loop;
    loop.call_soon([&loop, report] { report->own_loop_in_callback = &uvaio::get_running_loop() == &loop; });
    report->value = loop.run_until_complete(report_own_loop(&loop, &both_running, report, value));
  };
  std::thread first(run_on_own_loop, &reports[0], 1);
  std::thread second(run_on_own_loop, &reports[1], 2);
  first.join();
  second.join();
  for (int i = 0; i < 2; ++i) {
    CAPTURE(i);
    CHECK(reports[i].own_loop_in_callback);
    CHECK(reports[i].own_loop_in_task);
    CHECK(reports[i].own_loop_after_sleep);
    CHECK(reports[i].value == i + 1);
  }
}

// --- stop ---------------------------------------------------------------------------

TEST_CASE("stop() lets the current iteration finish and defers what its callbacks schedule") {
  uvaio::Loop loop;
  std::vector<std::string> order;
  loop.call_soon([&] {
    order.push_back("a");
    loop.stop();
    loop.call_soon([&] { order.push_back("c"); });
  });
  loop.call_soon([&] { order.push_back("b"); });
  loop.run_forever();
  CHECK(joined(order) == "a b");
  CHECK_FALSE(loop.is_running());

  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  CHECK(joined(order) == "a b c");
}

TEST_CASE("stop() before run_forever() makes it run exactly one iteration") {
  uvaio::Loop loop;
  std::vector<std::string> order;
  bool timer_ran = false;
  (void)loop.call_later(1h, [&] { timer_ran = true; });
  loop.call_soon([&] {
    order.push_back("a");
    loop.call_soon([&] { order.push_back("next iteration"); });
  });
  loop.call_soon([&] { order.push_back("b"); });
  loop.stop();
  // Must not block on the one-hour timer.
  loop.run_forever();
  CHECK(joined(order) == "a b");
  CHECK_FALSE(timer_ran);

  run_one_iteration(loop);
  CHECK(joined(order) == "a b next iteration");
}

TEST_CASE("run_until_complete after stop() throws Event loop stopped before Future completed. and the task stays pending") {
  uvaio::Loop loop;
  uvaio::Future<int> gate = loop.create_future<int>();
  bool started = false;
  uvaio::Task<int> task = loop.create_task(add_one_when_set(gate, &started));
  loop.stop();
  CHECK_THROWS_WITH_AS(loop.run_until_complete(task), "Event loop stopped before Future completed.",
                       uvaio::RuntimeError);
  CHECK(started);
  CHECK_FALSE(task.done());
  CHECK_FALSE(task.cancelled());
  CHECK_FALSE(loop.is_running());

  loop.call_soon([gate] { gate.set_result(41); });
  int value = loop.run_until_complete(task);
  CHECK(value == 42);
}

// --- running-loop discovery and time ---------------------------------------------

TEST_CASE("is_running() is true inside callbacks and false once the run returned") {
  uvaio::Loop loop;
  CHECK_FALSE(loop.is_running());
  bool inside = false;
  loop.call_soon([&] { inside = loop.is_running(); });
  run_one_iteration(loop);
  CHECK(inside);
  CHECK_FALSE(loop.is_running());
  int value = loop.run_until_complete(answer());
  CHECK(value == 42);
  CHECK_FALSE(loop.is_running());
}

TEST_CASE("get_running_loop() returns the loop inside callbacks and tasks and throws no running event loop outside") {
  CHECK_THROWS_WITH_AS(uvaio::get_running_loop(), "no running event loop", uvaio::RuntimeError);
  uvaio::Loop loop;
  CHECK_THROWS_WITH_AS(uvaio::get_running_loop(), "no running event loop", uvaio::RuntimeError);
  bool in_callback = false;
  bool in_timer = false;
  loop.call_soon([&] { in_callback = &uvaio::get_running_loop() == &loop; });
  (void)loop.call_later(0ms, [&] { in_timer = &uvaio::get_running_loop() == &loop; });
  bool in_task = loop.run_until_complete(running_loop_is(&loop));
  CHECK(in_callback);
  CHECK(in_timer);
  CHECK(in_task);
  CHECK_THROWS_WITH_AS(uvaio::get_running_loop(), "no running event loop", uvaio::RuntimeError);
}

TEST_CASE("time() is the steady clock and sees time spent inside a callback") {
  static_assert(std::is_same_v<decltype(std::declval<uvaio::Loop&>().time()), SteadyClock::time_point>);
  uvaio::Loop loop;
  const auto before = SteadyClock::now();
  const auto loop_now = loop.time();
  const auto after = SteadyClock::now();
  CHECK(before <= loop_now);
  CHECK(loop_now <= after);

  SteadyClock::duration seen{};
  loop.call_soon([&] {
    const auto start = loop.time();
    busy_wait(5ms);
    seen = loop.time() - start;
  });
  run_one_iteration(loop);
  CHECK(seen >= 5ms);
}

// --- call_soon ------------------------------------------------------------------------

TEST_CASE("call_soon runs callbacks once each, in FIFO order, and skips a cancelled one") {
  uvaio::Loop loop;
  std::vector<int> result;
  loop.call_soon([&] { result.push_back(10); });
  uvaio::Handle middle = loop.call_soon([&] { result.push_back(2); });
  loop.call_soon([&] { result.push_back(1); });
  middle.cancel();
  run_one_iteration(loop);
  CHECK(result == std::vector<int>{10, 1});

  std::vector<int> many;
  for (int i = 0; i < 1000; ++i) loop.call_soon([&many, i] { many.push_back(i); });
  run_one_iteration(loop);
  run_one_iteration(loop);
  REQUIRE(many.size() == 1000);
  for (int i = 0; i < 1000; ++i) CHECK(many[static_cast<std::size_t>(i)] == i);
}

TEST_CASE("callbacks scheduled by a callback run in the next iteration") {
  uvaio::Loop loop;
  std::vector<std::string> order;
  loop.call_soon([&] {
    order.push_back("a");
    loop.call_soon([&] { order.push_back("c"); });
  });
  loop.call_soon([&] { order.push_back("b"); });
  run_one_iteration(loop);
  CHECK(joined(order) == "a b");
  run_one_iteration(loop);
  CHECK(joined(order) == "a b c");
}

TEST_CASE("sleep(0s) lets every callback queued before it run exactly once") {
  uvaio::Loop loop;
  std::vector<std::string> order;
  loop.run_until_complete(queue_callbacks_then_sleep_zero(&order));
  CHECK(joined(order) == "cb1 cb2 task cb3");
}

// --- timers -------------------------------------------------------------------------

TEST_CASE("call_later never runs a callback before its delay has passed") {
  uvaio::Loop loop;
  const std::vector<SteadyClock::duration> delays{1ms, 2ms, 5ms, 10ms, 70ms};
  std::vector<std::optional<SteadyClock::duration>> elapsed(delays.size());
  for (std::size_t i = 0; i < delays.size(); ++i) {
    const auto scheduled = SteadyClock::now();
    (void)loop.call_later(delays[i], [&elapsed, i, scheduled] { elapsed[i] = SteadyClock::now() - scheduled; });
  }
  const auto start = SteadyClock::now();
  (void)loop.call_later(70ms, [&] { loop.stop(); });
  loop.run_forever();
  CHECK(SteadyClock::now() - start < 10s);
  for (std::size_t i = 0; i < delays.size(); ++i) {
    CAPTURE(i);
    REQUIRE(elapsed[i].has_value());
    CHECK(*elapsed[i] >= delays[i]);
  }
}

TEST_CASE("time spent blocking before call_later is counted from the call") {
  uvaio::Loop loop;
  SteadyClock::time_point block_start{};
  std::optional<SteadyClock::time_point> fired;
  loop.call_soon([&] {
    block_start = SteadyClock::now();
    std::this_thread::sleep_for(10ms);  // the loop's cached libuv time falls behind
    (void)loop.call_later(10ms, [&] {
      fired = SteadyClock::now();
      loop.stop();
    });
  });
  loop.run_forever();
  REQUIRE(fired.has_value());
  CHECK(*fired - block_start >= 20ms);

  // uvloop's test_call_later_2, with sleeps in a task.
  const auto started = SteadyClock::now();
  loop.run_until_complete(sleep_block_sleep());
  CHECK(SteadyClock::now() - started >= 21ms);
}

TEST_CASE("timers run in deadline order") {
  uvaio::Loop loop;
  std::vector<std::string> order;
  (void)loop.call_later(30ms, [&] { order.push_back("c"); });
  (void)loop.call_later(10ms, [&] { order.push_back("a"); });
  (void)loop.call_at(loop.time() + 20ms, [&] { order.push_back("b"); });
  (void)loop.call_later(40ms, [&] { loop.stop(); });
  loop.run_forever();
  CHECK(joined(order) == "a b c");
}

TEST_CASE("timers with the same deadline run in the order they were scheduled") {
  uvaio::Loop loop;
  std::vector<int> order;
  const uvaio::TimePoint when = loop.time() + 5ms;
  for (int i = 0; i < 100; ++i) (void)loop.call_at(when, [&order, i] { order.push_back(i); });
  (void)loop.call_at(when, [&] { loop.stop(); });
  loop.run_forever();
  REQUIRE(order.size() == 100);
  for (int i = 0; i < 100; ++i) CHECK(order[static_cast<std::size_t>(i)] == i);
}

TEST_CASE("negative delays run on a later iteration, in deadline order, never inline") {
  uvaio::Loop loop;
  std::vector<std::string> order;
  // Deadlines a second apart, so that a slow machine (valgrind) between the
  // two calls cannot reverse them.
  (void)loop.call_later(-1s, [&] { order.push_back("a"); });
  CHECK(order.empty());
  (void)loop.call_later(-2s, [&] { order.push_back("b"); });
  CHECK(order.empty());
  run_one_iteration(loop);
  CHECK(joined(order) == "b a");

  // Scheduled from a callback: not in the iteration that scheduled it.
  order.clear();
  loop.call_soon([&] {
    order.push_back("scheduler");
    (void)loop.call_later(-1ms, [&] { order.push_back("negative"); });
    order.push_back("after call_later");
  });
  run_one_iteration(loop);
  CHECK(joined(order) == "scheduler after call_later");
  run_one_iteration(loop);
  CHECK(joined(order) == "scheduler after call_later negative");
}

TEST_CASE("TimerHandle::when() is the absolute deadline") {
  uvaio::Loop loop;
  const uvaio::TimePoint deadline = loop.time() + 123ms;
  uvaio::TimerHandle at = loop.call_at(deadline, [] {});
  CHECK(at.when() == deadline);

  const auto before = loop.time();
  uvaio::TimerHandle later = loop.call_later(250ms, [] {});
  const auto after = loop.time();
  CHECK(later.when() >= before + 250ms);
  CHECK(later.when() <= after + 250ms);
}

TEST_CASE("callbacks already ready run before timers that became due in the same iteration") {
  uvaio::Loop loop;
  std::vector<std::string> order;
  (void)loop.call_at(loop.time() - 1h, [&] { order.push_back("timer"); });
  loop.call_soon([&] { order.push_back("s1"); });
  loop.call_soon([&] { order.push_back("s2"); });
  run_one_iteration(loop);
  CHECK(joined(order) == "s1 s2 timer");

  // 'b' is ready when the next iteration begins; the timer becomes due during
  // the iteration before it: 'b' still runs first.
  order.clear();
  uvaio::TimerHandle timer = loop.call_later(5ms, [&] { order.push_back("t"); });
  const uvaio::TimePoint due = timer.when();
  loop.call_soon([&] {
    order.push_back("a");
    while (loop.time() < due) {
    }
    loop.call_soon([&] { order.push_back("b"); });
  });
  run_one_iteration(loop);
  CHECK(joined(order) == "a");
  run_one_iteration(loop);
  CHECK(joined(order) == "a b t");
}

TEST_CASE("a cancelled timer never runs and releases its callable at once") {
  uvaio::Loop loop;
  Counted::reset();
  bool ran = false;
  {
    uvaio::TimerHandle timer = loop.call_later(10ms, [&ran, c = Counted(1)] { ran = c.value == 1; });
    CHECK(Counted::alive() == 1);
    timer.cancel();
    CHECK(timer.cancelled());
  }
  CHECK(Counted::alive() == 0);
  (void)loop.call_later(30ms, [&] { loop.stop(); });
  loop.run_forever();
  CHECK_FALSE(ran);
}

// --- call_soon_threadsafe -------------------------------------------------------------

TEST_CASE("call_soon_threadsafe from another thread wakes a loop blocked in run_until_complete") {
  uvaio::Loop loop;
  uvaio::Future<int> result = loop.create_future<int>();
  std::latch loop_running(1);
  std::thread producer([&loop, &loop_running, &result] {
    loop_running.wait();
    loop.call_soon_threadsafe([&result] { result.set_result(42); });
  });
  loop.call_soon([&] { loop_running.count_down(); });
  // A watchdog, so that a missed wake-up fails instead of hanging.
  uvaio::TimerHandle watchdog = loop.call_later(20s, [&] { loop.stop(); });
  const auto start = SteadyClock::now();
  int value = 0;
  CHECK_NOTHROW(value = loop.run_until_complete(result));
  producer.join();
  CHECK(value == 42);
  CHECK(SteadyClock::now() - start < 10s);
  watchdog.cancel();
}

TEST_CASE("call_soon_threadsafe then call_soon on the loop thread run in that order, before the loop runs") {
  uvaio::Loop loop;
  std::vector<std::string> order;
  loop.call_soon_threadsafe([&] { order.push_back("hello"); });
  loop.call_soon([&] { order.push_back("world"); });
  run_one_iteration(loop);
  CHECK(joined(order) == "hello world");
}

TEST_CASE("call_soon_threadsafe then call_soon from inside a callback run in that order") {
  uvaio::Loop loop;
  std::vector<std::string> order;
  loop.call_soon([&] {
    loop.call_soon_threadsafe([&] { order.push_back("hello"); });
    loop.call_soon([&] { order.push_back("world"); });
  });
  run_one_iteration(loop);
  run_one_iteration(loop);
  CHECK(joined(order) == "hello world");
}

TEST_CASE("call_soon_threadsafe from four producer threads runs every call once, in each producer's order") {
  constexpr int producers = 4;
  constexpr int calls = 10000;
  uvaio::Loop loop;
  std::vector<std::vector<int>> seen(producers);  // touched on the loop thread only
  int total = 0;
  uvaio::Future<void> all_done = loop.create_future<void>();
  std::latch go(producers + 1);
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&loop, &go, &seen, &total, &all_done, p] {
      go.arrive_and_wait();
      for (int i = 0; i < calls; ++i) {
        loop.call_soon_threadsafe([&seen, &total, &all_done, p, i] {
          seen[static_cast<std::size_t>(p)].push_back(i);
          if (++total == producers * calls) all_done.set_result();
        });
      }
    });
  }
  loop.call_soon([&] { go.count_down(); });
  loop.run_until_complete(all_done);
  for (auto& t : threads) t.join();
  CHECK(total == producers * calls);
  for (int p = 0; p < producers; ++p) {
    CAPTURE(p);
    const auto& mine = seen[static_cast<std::size_t>(p)];
    REQUIRE(mine.size() == static_cast<std::size_t>(calls));
    bool in_order = true;
    for (int i = 0; i < calls; ++i) in_order = in_order && mine[static_cast<std::size_t>(i)] == i;
    CHECK(in_order);
  }
}

TEST_CASE("call_soon_threadsafe calls run exactly once while the loop creates and cancels timers") {
  constexpr int iterations = 4096;
  uvaio::Loop loop;
  std::vector<int> runs(iterations, 0);
  int counter = 0;
  uvaio::Future<void> done = loop.create_future<void>();
  std::thread scheduler;
  loop.call_soon([&] {
    scheduler = std::thread([&loop, &runs, &counter, &done] {
      for (int i = 0; i < iterations; ++i) {
        loop.call_soon_threadsafe([&loop, &runs, &counter, &done, i] {
          ++runs[static_cast<std::size_t>(i)];
          ++counter;
          if (counter < iterations - 512) {
            uvaio::TimerHandle timer = loop.call_later(10ms, [] {});
            (void)loop.call_later(500us + 100us * (i % 5), [timer] { timer.cancel(); });
          }
          if (counter == iterations) done.set_result();
        });
        if (i % 16 == 0) std::this_thread::yield();
      }
    });
  });
  loop.run_until_complete(done);
  scheduler.join();
  CHECK(counter == iterations);
  bool each_once = true;
  for (int r : runs) each_once = each_once && r == 1;
  CHECK(each_once);
}

// --- exceptions and the exception handler ---------------------------------------------

TEST_CASE("an exception from a call_soon callback goes to the exception handler and the loop continues") {
  uvaio::Loop loop;
  HandlerCapture handler(loop);
  std::vector<std::string> order;
  loop.call_soon([] { throw Boom("callback failed"); });
  loop.call_soon([&] { order.push_back("next"); });
  run_one_iteration(loop);
  CHECK(joined(order) == "next");
  REQUIRE(handler.contexts.size() == 1);
  const uvaio::ExceptionContext& context = handler.contexts[0];
  CHECK(starts_with(context.message, "Exception in callback"));
  CHECK(context.task_name.empty());
  REQUIRE(context.exception);
  CHECK_THROWS_WITH_AS(std::rethrow_exception(context.exception), "callback failed", Boom);
}

TEST_CASE("an exception from a call_later callback goes to the exception handler intact") {
  uvaio::Loop loop;
  HandlerCapture handler(loop);
  bool next_ran = false;
  (void)loop.call_later(-1ms, [] { throw NotAnException{3}; });
  (void)loop.call_later(0ms, [&] { next_ran = true; });
  run_one_iteration(loop);
  CHECK(next_ran);
  REQUIRE(handler.contexts.size() == 1);
  CHECK(starts_with(handler.contexts[0].message, "Exception in callback"));
  int code = 0;
  try {
    std::rethrow_exception(handler.contexts[0].exception);
  } catch (const NotAnException& e) {
    code = e.code;
  }
  CHECK(code == 3);
}

TEST_CASE("an exception from a done callback goes to the exception handler") {
  uvaio::Loop loop;
  HandlerCapture handler(loop);
  bool second_ran = false;
  uvaio::Future<int> future = loop.create_future<int>();
  future.add_done_callback(
      [](const uvaio::Future<int>& f) { throw Boom("done callback failed with " + std::to_string(f.result())); });
  future.add_done_callback([&](const uvaio::Future<int>&) { second_ran = true; });
  future.set_result(5);
  run_one_iteration(loop);
  CHECK(second_ran);
  REQUIRE(handler.contexts.size() == 1);
  CHECK(starts_with(handler.contexts[0].message, "Exception in done callback"));
  CHECK_THROWS_WITH_AS(std::rethrow_exception(handler.contexts[0].exception), "done callback failed with 5", Boom);
}

TEST_CASE("without a custom handler, a callback's exception is logged") {
  LogCapture log;
  uvaio::Loop loop;
  CHECK_FALSE(static_cast<bool>(loop.get_exception_handler()));
  bool next_ran = false;
  loop.call_soon([] { throw Boom("logged failure"); });
  loop.call_soon([&] { next_ran = true; });
  run_one_iteration(loop);
  CHECK(next_ran);
  CHECK(any_line_with(log, {"Exception in callback", "logged failure"}));
}

TEST_CASE("a handler that throws is reported, and the original context goes to the default handler") {
  LogCapture log;
  uvaio::Loop loop;
  loop.set_exception_handler(
      [](uvaio::Loop&, const uvaio::ExceptionContext&) { throw std::runtime_error("handler broke"); });
  bool next_ran = false;
  loop.call_soon([] { throw Boom("original failure"); });
  loop.call_soon([&] { next_ran = true; });
  run_one_iteration(loop);
  CHECK(next_ran);
  CHECK(any_line_with(log, {"Unhandled error in exception handler", "handler broke"}));
  CHECK(any_line_with(log, {"Exception in callback", "original failure"}));
}

TEST_CASE("set_exception_handler(nullptr) restores the default handler") {
  LogCapture log;
  uvaio::Loop loop;
  int custom_calls = 0;
  loop.set_exception_handler([&custom_calls](uvaio::Loop&, const uvaio::ExceptionContext&) { ++custom_calls; });
  CHECK(static_cast<bool>(loop.get_exception_handler()));
  loop.call_soon([] { throw Boom("to the custom handler"); });
  run_one_iteration(loop);
  CHECK(custom_calls == 1);
  CHECK_FALSE(log.contains("to the custom handler"));

  loop.set_exception_handler(nullptr);
  CHECK_FALSE(static_cast<bool>(loop.get_exception_handler()));
  loop.call_soon([] { throw Boom("to the default handler"); });
  run_one_iteration(loop);
  CHECK(custom_calls == 1);
  CHECK(any_line_with(log, {"Exception in callback", "to the default handler"}));
}

// --- debug mode -----------------------------------------------------------------------

TEST_CASE("debug mode is off by default and set by set_debug, LoopOptions or UVAIO_DEBUG") {
  EnvironmentGuard guard("UVAIO_DEBUG");
  unsetenv("UVAIO_DEBUG");
  {
    uvaio::Loop loop;
    CHECK_FALSE(loop.get_debug());
    CHECK(loop.slow_callback_duration() == 100ms);
    loop.set_debug(true);
    CHECK(loop.get_debug());
    loop.set_debug(false);
    CHECK_FALSE(loop.get_debug());
  }
  {
    uvaio::Loop loop(uvaio::LoopOptions{.debug = true});
    CHECK(loop.get_debug());
  }
  setenv("UVAIO_DEBUG", "1", 1);
  {
    uvaio::Loop loop;
    CHECK(loop.get_debug());
  }
  {
    uvaio::Loop loop(uvaio::LoopOptions{.debug = false});
    CHECK_FALSE(loop.get_debug());
  }
  setenv("UVAIO_DEBUG", "0", 1);
  {
    uvaio::Loop loop;
    CHECK_FALSE(loop.get_debug());
  }
  unsetenv("UVAIO_DEBUG");
}

TEST_CASE("in debug mode, call_soon from another thread while the loop runs throws") {
  uvaio::Loop loop(uvaio::LoopOptions{.debug = true});
  std::string message;
  bool foreign_ran = false;
  bool threadsafe_ran = false;
  loop.call_soon([&] {
    // The loop is running (this callback blocks it until the thread ends).
    std::thread other([&loop, &message, &foreign_ran, &threadsafe_ran] {
      try {
        loop.call_soon([&foreign_ran] { foreign_ran = true; });
      } catch (const uvaio::RuntimeError& e) {
        message = e.what();
      }
      loop.call_soon_threadsafe([&threadsafe_ran] { threadsafe_ran = true; });
    });
    other.join();
  });
  run_one_iteration(loop);
  run_one_iteration(loop);
  CHECK(message.find("Non-thread-safe operation invoked on an event loop other than the current one") !=
        std::string::npos);
  CHECK(message.find("call_soon") != std::string::npos);
  CHECK_FALSE(foreign_ran);
  CHECK(threadsafe_ran);
}

TEST_CASE("in debug mode, a callback slower than slow_callback_duration is logged") {
  LogCapture log;
  uvaio::Loop loop(uvaio::LoopOptions{.debug = true, .slow_callback_duration = 20ms});
  CHECK(loop.slow_callback_duration() == 20ms);
  loop.call_soon([] { std::this_thread::sleep_for(30ms); });
  run_one_iteration(loop);
  CHECK(any_line_with(log, {"Executing", "took"}));

  // set_slow_callback_duration() works the same way.
  uvaio::Loop other;
  other.set_debug(true);
  other.set_slow_callback_duration(20ms);
  CHECK(other.slow_callback_duration() == 20ms);
  const std::size_t before = log.count("Executing");
  other.call_soon([] { std::this_thread::sleep_for(30ms); });
  run_one_iteration(other);
  CHECK(log.count("Executing") == before + 1);
}

TEST_CASE("outside debug mode, a slow callback is not reported") {
  LogCapture log;
  uvaio::Loop loop(uvaio::LoopOptions{.debug = false, .slow_callback_duration = 20ms});
  loop.call_soon([] { std::this_thread::sleep_for(30ms); });
  run_one_iteration(loop);
  CHECK_FALSE(log.contains("Executing"));
}

TEST_SUITE_END();

#include <uvaio/detail/test_hooks.hpp>

TEST_SUITE_BEGIN("loop");

namespace {
void stall_20ms() noexcept { std::this_thread::sleep_for(std::chrono::milliseconds(20)); }

uvaio::Async<int> sleep_briefly() {
  co_await uvaio::sleep(std::chrono::milliseconds(5));
  co_return 1;
}
}  // namespace

TEST_CASE("a timer that becomes due while the loop thread stalls before polling still wakes the loop") {
  // libuv runs due timers before it polls: the wake-up timer fires first, and
  // the poll must not then block forever.
  uvaio::Loop loop;
  std::atomic<bool> finished{false};
  std::atomic<bool> rescued{false};
  // Wakes a hung loop after 5 s so that a regression fails instead of hanging.
  std::thread watchdog([&] {
    for (int i = 0; i < 500 && !finished.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!finished.load()) {
      rescued = true;
      loop.call_soon_threadsafe([&loop] { loop.stop(); });
    }
  });
  uvaio::detail::test_hooks::before_blocking_poll = &stall_20ms;
  int result = 0;
  std::string error;
  try {
    result = loop.run_until_complete(sleep_briefly());
  } catch (const uvaio::RuntimeError& e) {
    error = e.what();
  }
  uvaio::detail::test_hooks::before_blocking_poll = nullptr;
  finished = true;
  watchdog.join();
  CHECK_FALSE(rescued.load());  // the loop woke up by itself
  CHECK(error == "");
  CHECK(result == 1);
}

TEST_SUITE_END();

// --- polling libuv while callbacks are ready ------------------------------------

namespace {

struct BusyLoop {
  long spins = 0;
  long libuv_iterations = 0;  // uv_run passes, counted by a uv_check_t
  bool work_done = false;
  long spins_when_done = 0;
};

uvaio::Async<void> spin_until_done(BusyLoop* state) {
  while (!state->work_done) {
    ++state->spins;
    co_await uvaio::sleep(0s);
  }
}

void nothing() {}

uvaio::Async<void> one_call(BusyLoop* state) {
  co_await uvaio::to_thread(nothing);
  state->work_done = true;
  state->spins_when_done = state->spins;
}

uvaio::Async<void> busy_loop_with_work(BusyLoop* state) {
  uvaio::Task<void> spinner = uvaio::create_task(spin_until_done(state));
  co_await one_call(state);
  co_await spinner;
}

}  // namespace

TEST_CASE("a loop kept busy by ready callbacks still polls libuv at least once in 32 iterations") {
  uv_check_t check{};  // outlives the loop, which finishes closing it
  BusyLoop state;
  uvaio::Loop loop;
  REQUIRE(uv_check_init(loop.native(), &check) == 0);
  check.data = &state;
  REQUIRE(uv_check_start(&check, [](uv_check_t* handle) { ++static_cast<BusyLoop*>(handle->data)->libuv_iterations; }) == 0);
  loop.run_until_complete(busy_loop_with_work(&state));
  uv_close(reinterpret_cast<uv_handle_t*>(&check), nullptr);
  // The to_thread completion (delivered by libuv) was not starved by the
  // spinning task, and libuv ran at least once per 32 iterations of it.
  CHECK(state.work_done);
  CHECK(state.spins > 0);
  CHECK(state.libuv_iterations >= state.spins / 32);
}

uvaio::Async<long> spin_until_threadsafe_callback(std::atomic<bool>* seen, std::atomic<bool>* posted) {
  long spins = 0;
  long spins_after_post = -1;
  while (!seen->load()) {
    if (posted->load() && spins_after_post < 0) spins_after_post = spins;
    ++spins;
    co_await uvaio::sleep(0s);
  }
  co_return spins - (spins_after_post < 0 ? spins : spins_after_post);
}

TEST_CASE("a call_soon_threadsafe callback runs within two iterations of a busy loop, poll or not") {
  uvaio::Loop loop;
  std::atomic<bool> seen{false};
  std::atomic<bool> posted{false};
  std::jthread poster([&] {
    std::this_thread::sleep_for(5ms);
    loop.call_soon_threadsafe([&seen] { seen = true; });
    posted = true;
  });
  const long iterations_late = loop.run_until_complete(spin_until_threadsafe_callback(&seen, &posted));
  poster.join();
  CHECK(seen.load());
  // The mailbox is read on every iteration, not only when libuv is polled.
  CHECK(iterations_late <= 2);
}
