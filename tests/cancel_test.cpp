#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <latch>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <tuple>
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

using Clock = std::chrono::steady_clock;

std::string joined(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ", ") + item;
  return text;
}

// libuv's threadpool size: UV_THREADPOOL_SIZE, read the way libuv reads it.
std::ptrdiff_t threadpool_size() {
  const char* value = std::getenv("UV_THREADPOOL_SIZE");
  if (value == nullptr) return 4;
  const long size = std::atol(value);
  if (size <= 0) return 1;
  return size > 1024 ? 1024 : size;
}

// Logs its destruction: shows when a frame's locals are freed.
struct Trace {
  Trace(std::vector<std::string>* log, std::string name) : log_(log), name_(std::move(name)) {}
  Trace(const Trace&) = delete;
  Trace& operator=(const Trace&) = delete;
  ~Trace() { log_->push_back("freed " + name_); }

 private:
  std::vector<std::string>* log_;
  std::string name_;
};

// One frame of a chain of Asyncs: `depth` more frames below it, and at the
// bottom an await of `innermost`. Each frame logs the CancelledError it sees
// and rethrows it; its Trace logs when its locals go.
template <class Innermost>
uvaio::Async<void> chain(int depth, std::vector<std::string>* log, Innermost innermost) {
  Trace trace(log, "frame " + std::to_string(depth));
  try {
    if (depth == 0) {
      co_await innermost();
    } else {
      auto below = chain(depth - 1, log, innermost);
      co_await std::move(below);
    }
  } catch (const uvaio::CancelledError& e) {
    log->push_back("frame " + std::to_string(depth) + " saw '" + e.message() + "'");
    throw;
  }
}

uvaio::Async<void> sleep_an_hour() { co_await uvaio::sleep(1h); }

uvaio::Async<void> await_future(uvaio::Future<int> future) {
  int v = co_await future;
  (void)v;
}

uvaio::Async<void> await_task(uvaio::Task<void> task) { co_await task; }

uvaio::Async<int> sleep_forever_holding_counted() {
  Counted local(1);
  co_await uvaio::sleep(1h);
  co_return local.value;
}

uvaio::Async<int> value_after_sleep(uvaio::Duration delay, int value) {
  co_await uvaio::sleep(delay);
  co_return value;
}

}  // namespace

TEST_SUITE_BEGIN("cancel");

// --- what cancel() reaches ------------------------------------------------------------------------

TEST_CASE("cancel(msg) reaches the sleep at the bottom of a chain of Asyncs, and every frame cleans up, innermost "
          "first") {
  uvaio::Loop loop;
  std::vector<std::string> log;
  auto task = loop.create_task(chain(2, &log, [] { return sleep_an_hour(); }));
  run_iterations(loop, 2);
  REQUIRE_FALSE(task.done());
  CHECK(task.cancel("stop"));
  CHECK(cancelled_message([&] { loop.run_until_complete(task); }) == "stop");
  CHECK(task.cancelled());
  CHECK(joined(log) ==
        "frame 0 saw 'stop', freed frame 0, frame 1 saw 'stop', freed frame 1, frame 2 saw 'stop', freed frame 2");
}

TEST_CASE("cancel(msg) reaches a Future awaited at the bottom of a chain of Asyncs, which ends cancelled") {
  uvaio::Loop loop;
  std::vector<std::string> log;
  auto future = loop.create_future<int>();
  auto task = loop.create_task(chain(1, &log, [future] { return await_future(future); }));
  run_iterations(loop, 2);
  CHECK(task.cancel("stop"));
  CHECK(future.cancelled());  // at once, from cancel()
  CHECK(cancelled_message([&] { (void)future.result(); }) == "stop");
  CHECK(cancelled_message([&] { loop.run_until_complete(task); }) == "stop");
  CHECK(joined(log) == "frame 0 saw 'stop', freed frame 0, frame 1 saw 'stop', freed frame 1");
}

TEST_CASE("cancel(msg) reaches through an awaited Task, which ends cancelled too, its frames first") {
  uvaio::Loop loop;
  std::vector<std::string> inner_log;
  std::vector<std::string> outer_log;
  auto inner = loop.create_task(chain(1, &inner_log, [] { return sleep_an_hour(); }), "inner");
  auto outer = loop.create_task(chain(1, &outer_log, [inner] { return await_task(inner); }), "outer");
  run_iterations(loop, 2);
  CHECK(outer.cancel("stop"));
  CHECK(inner.cancelling() == 1);
  CHECK(cancelled_message([&] { loop.run_until_complete(outer); }) == "stop");
  CHECK(inner.cancelled());
  CHECK(cancelled_message([&] { (void)inner.result(); }) == "stop");
  CHECK(joined(inner_log) == "frame 0 saw 'stop', freed frame 0, frame 1 saw 'stop', freed frame 1");
  CHECK(joined(outer_log) == "frame 0 saw 'stop', freed frame 0, frame 1 saw 'stop', freed frame 1");
}

TEST_CASE("cancel(msg) reaches through gather to every child") {
  uvaio::Loop loop;
  std::vector<std::string> log_a;
  std::vector<std::string> log_b;
  auto body = [](std::vector<std::string>* a, std::vector<std::string>* b) -> uvaio::Async<void> {
    auto results = co_await uvaio::gather(chain(1, a, [] { return sleep_an_hour(); }),
                                          chain(0, b, [] { return sleep_an_hour(); }));
    (void)results;
  };
  auto task = loop.create_task(body(&log_a, &log_b));
  run_iterations(loop, 2);
  CHECK(task.cancel("stop"));
  CHECK(cancelled_message([&] { loop.run_until_complete(task); }) == "stop");
  CHECK(joined(log_a) == "frame 0 saw 'stop', freed frame 0, frame 1 saw 'stop', freed frame 1");
  CHECK(joined(log_b) == "frame 0 saw 'stop', freed frame 0");
}

TEST_CASE("cancel(msg) reaches through wait_for, which throws CancelledError and not TimeoutError") {
  uvaio::Loop loop;
  std::vector<std::string> log;
  auto body = [](std::vector<std::string>* log) -> uvaio::Async<void> {
    try {
      co_await uvaio::wait_for(chain(1, log, [] { return sleep_an_hour(); }), 1h);
    } catch (const uvaio::TimeoutError&) {
      log->push_back("TimeoutError");
      throw;
    }
  };
  auto task = loop.create_task(body(&log));
  run_iterations(loop, 2);
  CHECK(task.cancel("stop"));
  CHECK(cancelled_message([&] { loop.run_until_complete(task); }) == "stop");
  CHECK(joined(log) == "frame 0 saw 'stop', freed frame 0, frame 1 saw 'stop', freed frame 1");
}

// --- through to_thread -------------------------------------------------------------------------------

struct Blocked {
  std::latch started{1};
  std::latch release{1};
  std::atomic<bool> worker_done{false};
  std::atomic<bool> captures_intact{false};
  bool worker_done_at_cancel = true;
  int counted_alive_at_cancel = 0;
  std::string caught;
  std::vector<std::string> log;
};

uvaio::Async<void> await_blocked_work(Blocked* state) {
  // The callable keeps a string and a Counted: both must outlive the worker
  // even though the awaiting side is cancelled long before it returns.
  auto future = uvaio::to_thread([state, text = std::string(64, 'x'), held = Counted(7)] {
    state->started.count_down();
    state->release.wait();
    state->captures_intact.store(text == std::string(64, 'x') && held.value == 7);
    state->worker_done.store(true);
    return std::string(1024, 'r');
  });
  std::string result = co_await future;
  (void)result;
}

uvaio::Async<void> cancel_while_blocked(Blocked* state) {
  auto task = uvaio::create_task(chain(1, &state->log, [state] { return await_blocked_work(state); }));
  co_await uvaio::sleep(0s);  // the task submitted its work
  state->started.wait();      // and a worker runs it
  task.cancel("stop");
  try {
    co_await task;
  } catch (const uvaio::CancelledError& e) {
    state->caught = "CancelledError: " + e.message();
  }
  state->worker_done_at_cancel = state->worker_done.load();
  state->counted_alive_at_cancel = Counted::alive();
  state->release.count_down();
}

TEST_CASE("cancel(msg) reaches a to_thread future: the task gets CancelledError at once while the worker finishes, "
          "and nothing it uses is freed early") {
  Counted::reset();
  Blocked state;
  {
    uvaio::Loop loop;
    loop.run_until_complete(cancel_while_blocked(&state));
    loop.close();  // waits for the worker
  }
  CHECK(state.caught == "CancelledError: stop");
  CHECK(joined(state.log) == "frame 0 saw 'stop', freed frame 0, frame 1 saw 'stop', freed frame 1");
  CHECK_FALSE(state.worker_done_at_cancel);
  CHECK(state.counted_alive_at_cancel >= 1);  // the callable still holds its Counted
  CHECK(state.worker_done.load());
  CHECK(state.captures_intact.load());
  CHECK(Counted::alive() == 0);
}

struct Saturated {
  explicit Saturated(std::ptrdiff_t blockers) : started(blockers) {}
  std::latch started;
  std::latch release{1};
  std::atomic<bool> victim_ran{false};
  std::string victim_outcome;
  int blockers_done = 0;
};

uvaio::Async<void> await_victim(Saturated* state) {
  co_await uvaio::to_thread([state] { state->victim_ran.store(true); });
}

uvaio::Async<void> cancel_queued(std::ptrdiff_t blockers, Saturated* state) {
  std::vector<uvaio::Future<int>> held;
  for (std::ptrdiff_t i = 0; i < blockers; ++i) {
    held.push_back(uvaio::to_thread([state] {
      state->started.count_down();
      state->release.wait();
      return 1;
    }));
  }
  state->started.wait();  // every worker of the pool is busy now
  auto victim = uvaio::create_task(await_victim(state));
  co_await uvaio::sleep(0s);  // the victim's work waits in libuv's queue
  victim.cancel("not needed");
  state->release.count_down();
  for (auto& f : held) {
    int v = co_await f;
    state->blockers_done += v;
  }
  try {
    co_await victim;
    state->victim_outcome = "<finished>";
  } catch (const uvaio::CancelledError& e) {
    state->victim_outcome = "CancelledError: " + e.message();
  }
}

TEST_CASE("cancelling a task whose to_thread work waits behind a saturated pool means the function never runs") {
  const std::ptrdiff_t blockers = threadpool_size();
  Saturated state(blockers);
  {
    uvaio::Loop loop;
    loop.run_until_complete(cancel_queued(blockers, &state));
    loop.close();
  }
  CHECK(state.blockers_done == blockers);
  CHECK(state.victim_outcome == "CancelledError: not needed");
  CHECK_FALSE(state.victim_ran.load());
}

struct Stoppable {
  std::latch started{1};
  std::atomic<bool> saw_stop{false};
  std::atomic<bool> returned{false};
  std::string outcome;
};

uvaio::Async<int> await_stoppable(Stoppable* state) {
  int v = co_await uvaio::to_thread([state](std::stop_token token) {
    state->started.count_down();
    // Gives up after a generous deadline so that a broken library fails the
    // test instead of hanging it.
    const auto give_up = Clock::now() + 10s;
    while (!token.stop_requested() && Clock::now() < give_up) std::this_thread::sleep_for(1ms);
    state->saw_stop.store(token.stop_requested());
    state->returned.store(true);
    return 1;
  });
  co_return v;
}

uvaio::Async<void> cancel_stoppable(Stoppable* state) {
  auto task = uvaio::create_task(await_stoppable(state));
  co_await uvaio::sleep(0s);
  state->started.wait();
  task.cancel("stop");
  try {
    int v = co_await task;
    state->outcome = "value " + std::to_string(v);
  } catch (const uvaio::CancelledError& e) {
    state->outcome = "CancelledError: " + e.message();
  }
}

TEST_CASE("a to_thread function taking a std::stop_token sees stop requested when the awaiting task is cancelled") {
  Stoppable state;
  {
    uvaio::Loop loop;
    loop.run_until_complete(cancel_stoppable(&state));
    loop.close();
  }
  CHECK(state.outcome == "CancelledError: stop");
  CHECK(state.returned.load());
  CHECK(state.saw_stop.load());
}

// --- catching and counting -----------------------------------------------------------------------

TEST_CASE("a coroutine may catch CancelledError and go on: the task is not cancelled and its result is what it "
          "returned") {
  uvaio::Loop loop;
  auto body = [](uvaio::Future<int> later) -> uvaio::Async<int> {
    try {
      co_await uvaio::sleep(1h);
    } catch (const uvaio::CancelledError&) {
    }
    int v = co_await later;  // the request was delivered once: this await is not cancelled
    co_return v + 1;
  };
  auto later = loop.create_future<int>();
  auto task = loop.create_task(body(later));
  run_iterations(loop, 2);
  CHECK(task.cancel());
  run_iterations(loop, 2);
  CHECK_FALSE(task.done());
  CHECK_FALSE(later.cancelled());
  later.set_result(41);
  CHECK(loop.run_until_complete(task) == 42);
  CHECK_FALSE(task.cancelled());
  CHECK(task.cancelling() == 1);  // a request stays counted until uncancel()
}

TEST_CASE("cancelled() is true only once CancelledError has left the coroutine") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<int> {
    std::exception_ptr cancelled;
    try {
      co_await uvaio::sleep(1h);
    } catch (const uvaio::CancelledError&) {
      cancelled = std::current_exception();
    }
    co_await uvaio::sleep(0s);
    co_await uvaio::sleep(0s);
    if (cancelled) std::rethrow_exception(cancelled);
    co_return 0;
  };
  auto task = loop.create_task(body());
  run_iterations(loop, 2);
  CHECK(task.cancel("late"));
  CHECK_FALSE(task.cancelled());
  run_iterations(loop, 2);
  CHECK_FALSE(task.done());  // cleaning up
  CHECK_FALSE(task.cancelled());
  CHECK(cancelled_message([&] { loop.run_until_complete(task); }) == "late");
  CHECK(task.cancelled());
}

TEST_CASE("a coroutine that throws CancelledError without being cancelled ends cancelled") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<int> {
    co_await uvaio::sleep(0s);
    throw uvaio::CancelledError("by hand");
  };
  auto task = loop.create_task(body());
  CHECK(cancelled_message([&] { loop.run_until_complete(task); }) == "by hand");
  CHECK(task.cancelled());
  CHECK(task.cancelling() == 0);
}

TEST_CASE("catch (const std::exception&) never catches a cancellation, whether it comes from a sleep, a gather, a "
          "wait_for or a Future") {
  uvaio::Loop loop;
  std::vector<std::string> caught;
  auto attempt = [](std::vector<std::string>* caught, int kind, uvaio::Future<int> future) -> uvaio::Async<void> {
    try {
      if (kind == 0) {
        co_await uvaio::sleep(1h);
      } else if (kind == 1) {
        auto results = co_await uvaio::gather(value_after_sleep(1h, 1), value_after_sleep(1h, 2));
        (void)results;
      } else if (kind == 2) {
        int v = co_await uvaio::wait_for(value_after_sleep(1h, 1), 1h);
        (void)v;
      } else {
        int v = co_await future;
        (void)v;
      }
    } catch (const std::exception& e) {
      caught->push_back(std::string("kind ") + std::to_string(kind) + ": " + e.what());
    }
  };
  for (int kind = 0; kind < 4; ++kind) {
    auto task = loop.create_task(attempt(&caught, kind, loop.create_future<int>()));
    run_iterations(loop, 2);
    CHECK(task.cancel("through"));
    CHECK(cancelled_message([&] { loop.run_until_complete(task); }) == "through");
    CHECK(task.cancelled());
  }
  CHECK(joined(caught).empty());
}

uvaio::Async<void> cancel_task(uvaio::Task<int> victim, const char* message) {
  victim.cancel(message);
  co_return;
}

TEST_CASE("cancelling() counts the requests of several cancellers, and uncancel() withdraws them") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<int> {
    std::vector<int> counts;
    int caught = 0;
    try {
      co_await uvaio::sleep(1h);
    } catch (const uvaio::CancelledError&) {
      ++caught;
    }
    const int requests = uvaio::current_task().cancelling();
    const int after_one = uvaio::current_task().uncancel();
    const int after_two = uvaio::current_task().uncancel();
    co_await uvaio::sleep(0s);  // not interrupted: one delivery for both requests
    co_return caught * 1000 + requests * 100 + after_one * 10 + after_two;
  };
  auto victim = loop.create_task(body());
  run_iterations(loop, 2);
  auto first = loop.create_task(cancel_task(victim, "first"));
  auto second = loop.create_task(cancel_task(victim, "second"));
  run_one_iteration(loop);
  REQUIRE(first.done());
  REQUIRE(second.done());
  CHECK(victim.cancelling() == 2);
  CHECK(loop.run_until_complete(victim) == 1210);
  CHECK_FALSE(victim.cancelled());
  CHECK(victim.cancelling() == 0);
}

TEST_CASE("requests of several cancellers withdrawn with uncancel() before delivery never interrupt the task") {
  uvaio::Loop loop;
  auto victim = loop.create_task(value_after_sleep(1ms, 5));
  CHECK(victim.cancel("first"));
  CHECK(victim.cancel("second"));
  CHECK(victim.cancelling() == 2);
  CHECK(victim.uncancel() == 1);
  CHECK(victim.uncancel() == 0);
  CHECK(loop.run_until_complete(victim) == 5);
  CHECK_FALSE(victim.cancelled());
}

// --- sleep releases its timer ------------------------------------------------------------------------

TEST_CASE("a cancelled sleep(1h) releases its timer at once: the task ends without the loop ever blocking, and its "
          "frame is freed") {
  Counted::reset();
  uvaio::Loop loop;
  auto task = loop.create_task(sleep_forever_holding_counted());
  run_one_iteration(loop);
  REQUIRE(Counted::alive() == 1);
  CHECK(task.cancel());
  // Only iterations that never block in the poll: had the timer to fire first,
  // the task could not end here.
  run_one_iteration(loop);
  CHECK(task.done());
  CHECK(task.cancelled());
  CHECK(Counted::alive() == 0);
  // The loop goes on without the freed sleep in its timer heap (ASan would
  // catch a stale entry): a later short timer fires on time, well before the
  // hour, and closing finds nothing left.
  const auto start = Clock::now();
  CHECK(loop.run_until_complete(value_after_sleep(1ms, 3)) == 3);
  CHECK(Clock::now() - start < 1min);
  loop.close();
  CHECK(Counted::alive() == 0);
}

TEST_SUITE_END();

TEST_SUITE_BEGIN("cancel");

namespace {
uvaio::Async<int> count_cancellations(int* caught) {
  for (int i = 0; i < 2; ++i) {
    try {
      co_await uvaio::sleep(std::chrono::hours(1));
    } catch (const uvaio::CancelledError&) {
      ++*caught;
    }
  }
  co_return *caught;
}
}  // namespace

TEST_CASE("two cancel() calls while a task sleeps give it one CancelledError, not one per call") {
  uvaio::Loop loop;
  int caught = 0;
  auto body = [](int* caught) -> uvaio::Async<int> {
    auto task = uvaio::create_task(count_cancellations(caught));
    co_await uvaio::sleep(std::chrono::seconds(0));  // the task sleeps now
    task.cancel("first");
    task.cancel("second");
    co_await uvaio::sleep(std::chrono::seconds(0));  // it catches the cancellation and sleeps again
    co_await uvaio::sleep(std::chrono::seconds(0));
    const bool still_sleeping = !task.done();
    task.cancel("third");
    int seen = co_await task;
    co_return still_sleeping ? seen : -1;
  };
  CHECK(loop.run_until_complete(body(&caught)) == 2);
}

TEST_SUITE_END();
