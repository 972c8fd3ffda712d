#include <doctest/doctest.h>

#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "support.hpp"

using namespace std::chrono_literals;

TEST_SUITE_BEGIN("sleep");

namespace {

using Clock = std::chrono::steady_clock;

uvaio::Async<Clock::duration> timed_sleep(uvaio::Duration delay) {
  const auto start = Clock::now();
  co_await uvaio::sleep(delay);
  co_return Clock::now() - start;
}

TEST_CASE("sleep resumes after at least the delay on the steady clock") {
  const Clock::duration took = uvaio::run(timed_sleep(30ms));
  CHECK(took >= 30ms);
  CHECK(took < 5s);
}

// A callback queued before the sleep runs before the task resumes; one that
// callback queues runs only after it.
uvaio::Async<void> yield_with(uvaio::Duration delay, std::vector<std::string>* order) {
  uvaio::Loop* loop = &uvaio::get_running_loop();
  loop->call_soon([loop, order] {
    order->push_back("queued before");
    loop->call_soon([order] { order->push_back("queued by it"); });
  });
  co_await uvaio::sleep(delay);
  order->push_back("resumed");
  co_await uvaio::sleep(delay);
  order->push_back("resumed again");
}

TEST_CASE("sleep(0s) yields to the loop exactly once") {
  std::vector<std::string> order;
  uvaio::run(yield_with(0s, &order));
  CHECK(order == std::vector<std::string>{"queued before", "resumed", "queued by it", "resumed again"});
}

TEST_CASE("a negative delay behaves like zero") {
  std::vector<std::string> order;
  const auto start = Clock::now();
  uvaio::run(yield_with(-50ms, &order));
  CHECK(order == std::vector<std::string>{"queued before", "resumed", "queued by it", "resumed again"});
  CHECK(Clock::now() - start < 5s);
}

uvaio::Async<int> nap_then(int value) {
  co_await uvaio::sleep(10ms);
  co_return value;
}

uvaio::Async<int> await_napper(Clock::duration* took) {
  const auto start = Clock::now();
  int v = co_await nap_then(7);
  *took = Clock::now() - start;
  co_return v;
}

TEST_CASE("sleep inside an Async that a task awaits suspends that task") {
  Clock::duration took{};
  CHECK(uvaio::run(await_napper(&took)) == 7);
  CHECK(took >= 10ms);
}

struct Cancelled {
  bool caught = false;
  std::string message;
  Clock::duration slept{};
  bool task_cancelled = false;
  bool await_threw_cancelled = false;
};

uvaio::Async<void> sleep_an_hour(Cancelled* out) {
  const auto start = Clock::now();
  try {
    co_await uvaio::sleep(1h);
  } catch (const uvaio::CancelledError& e) {
    out->caught = true;
    out->message = e.message();
    out->slept = Clock::now() - start;
    throw;
  }
}

uvaio::Async<void> cancel_after_a_yield(uvaio::Task<> sleeper) {
  co_await uvaio::sleep(0s);
  sleeper.cancel("wake up");
}

uvaio::Async<void> cancel_a_sleeper(Cancelled* out) {
  uvaio::Task<> sleeper = uvaio::create_task(sleep_an_hour(out));
  uvaio::Task<> canceller = uvaio::create_task(cancel_after_a_yield(sleeper));
  co_await canceller;
  try {
    co_await sleeper;
  } catch (const uvaio::CancelledError&) {
    out->await_threw_cancelled = true;
  }
  out->task_cancelled = sleeper.cancelled();
}

TEST_CASE("sleep(1h) in a task cancelled by another task ends with CancelledError at once") {
  Cancelled out;
  const auto start = Clock::now();
  uvaio::run(cancel_a_sleeper(&out));
  CHECK(out.caught);
  CHECK(out.message == "wake up");
  CHECK(out.slept < 5s);
  CHECK(out.task_cancelled);
  CHECK(out.await_threw_cancelled);
  CHECK(Clock::now() - start < 5s);
}

struct Tally {
  int completed = 0;
  int early = 0;
};

uvaio::Async<void> sleep_and_check(uvaio::Duration delay, Tally* tally) {
  const auto deadline = Clock::now() + delay;
  co_await uvaio::sleep(delay);
  if (Clock::now() < deadline) ++tally->early;
  ++tally->completed;
}

uvaio::Async<void> many_sleepers(int count, Tally* tally) {
  std::mt19937 random(20240531);
  std::uniform_int_distribution<int> micros(0, 50'000);
  std::vector<uvaio::Task<>> tasks;
  tasks.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    tasks.push_back(uvaio::create_task(sleep_and_check(std::chrono::microseconds(micros(random)), tally)));
  }
  for (auto& task : tasks) co_await task;
}

TEST_CASE("10,000 concurrent sleeps of 0-50 ms in 10,000 tasks all complete, none before its deadline") {
  constexpr int count = 10'000;
  Tally tally;
  const auto start = Clock::now();
  uvaio::run(many_sleepers(count, &tally));
  CHECK(tally.completed == count);
  CHECK(tally.early == 0);
  CHECK(Clock::now() - start < 30s);
}

}  // namespace

TEST_SUITE_END();
