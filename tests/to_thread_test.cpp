#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <latch>
#include <memory>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

using namespace std::chrono_literals;

TEST_SUITE_BEGIN("to_thread");

namespace {

// libuv's threadpool size: UV_THREADPOOL_SIZE, read the way libuv reads it.
std::ptrdiff_t threadpool_size() {
  const char* value = std::getenv("UV_THREADPOOL_SIZE");
  if (value == nullptr) return 4;
  const long size = std::atol(value);
  if (size <= 0) return 1;
  return size > 1024 ? 1024 : size;
}

// --- threads, values and arguments -------------------------------------------------

struct Threads {
  std::thread::id worker;
  std::thread::id resumed;
};

uvaio::Async<void> record_threads(Threads* seen) {
  std::thread::id worker = co_await uvaio::to_thread([] { return std::this_thread::get_id(); });
  seen->worker = worker;
  seen->resumed = std::this_thread::get_id();
}

TEST_CASE("to_thread runs the function on another thread and resumes the awaiting task on the loop thread") {
  Threads seen;
  uvaio::run(record_threads(&seen));
  CHECK(seen.worker != std::thread::id());
  CHECK(seen.worker != std::this_thread::get_id());
  CHECK(seen.resumed == std::this_thread::get_id());
}

uvaio::Async<std::string> join_on_worker() {
  std::string joined = co_await uvaio::to_thread(
      [](std::string a, int b, char c) { return a + std::to_string(b) + c; }, std::string("x"), 42, '!');
  co_return joined;
}

TEST_CASE("to_thread passes several arguments and returns the function's value") {
  CHECK(uvaio::run(join_on_worker()) == "x42!");
}

uvaio::Async<bool> void_on_worker(std::atomic<bool>* ran) {
  auto f = uvaio::to_thread([ran] { ran->store(true); });
  co_await f;
  co_return f.done() && !f.cancelled();
}

TEST_CASE("to_thread of a void function completes once the function ran") {
  std::atomic<bool> ran{false};
  CHECK(uvaio::run(void_on_worker(&ran)));
  CHECK(ran.load());
}

uvaio::Async<int> move_only_on_worker() {
  std::unique_ptr<int> result = co_await uvaio::to_thread(
      [](std::unique_ptr<int> p, std::unique_ptr<int> q) { return std::make_unique<int>(*p * *q); },
      std::make_unique<int>(6), std::make_unique<int>(7));
  co_return result ? *result : -1;
}

TEST_CASE("to_thread moves move-only arguments in and a move-only result out") {
  CHECK(uvaio::run(move_only_on_worker()) == 42);
}

uvaio::Async<int> count_calls(std::atomic<int>* calls) {
  int v = co_await uvaio::to_thread([calls] { return calls->fetch_add(1) + 1; });
  co_return v;
}

TEST_CASE("to_thread calls the function exactly once") {
  std::atomic<int> calls{0};
  CHECK(uvaio::run(count_calls(&calls)) == 1);
  CHECK(calls.load() == 1);
}

// --- exceptions ------------------------------------------------------------------

struct ParseError : std::runtime_error {
  ParseError(const std::string& what, int line) : std::runtime_error(what), line(line) {}
  int line;
};

struct Oops {
  int code;
};

uvaio::Async<void> runtime_error_subclass(std::string* what, int* line) {
  try {
    int v = co_await uvaio::to_thread([]() -> int { throw ParseError("bad token", 12); });
    (void)v;
  } catch (const ParseError& e) {
    *what = e.what();
    *line = e.line;
  }
}

TEST_CASE("a std::runtime_error subclass thrown by the function arrives with its type and message") {
  std::string what;
  int line = 0;
  uvaio::run(runtime_error_subclass(&what, &line));
  CHECK(what == "bad token");
  CHECK(line == 12);
}

uvaio::Async<int> non_std_exception() {
  int code = 0;
  try {
    co_await uvaio::to_thread([] { throw Oops{99}; });
  } catch (const std::exception&) {
    code = -1;
  } catch (const Oops& e) {
    code = e.code;
  }
  co_return code;
}

TEST_CASE("an exception type not derived from std::exception arrives intact") {
  CHECK(uvaio::run(non_std_exception()) == 99);
}

uvaio::Async<int> thrown_int() {
  int thrown = 0;
  try {
    std::string s = co_await uvaio::to_thread([]() -> std::string { throw 7; });
    (void)s;
  } catch (int e) {
    thrown = e;
  }
  co_return thrown;
}

TEST_CASE("a thrown int arrives intact") {
  CHECK(uvaio::run(thrown_int()) == 7);
}

// --- many in flight ----------------------------------------------------------------

uvaio::Async<int> square_on_worker(int i, std::thread::id loop_thread, std::atomic<int>* resumed_elsewhere) {
  int v = co_await uvaio::to_thread([](int x) { return x * x; }, i);
  if (std::this_thread::get_id() != loop_thread) resumed_elsewhere->fetch_add(1);
  co_return v;
}

struct Many {
  std::size_t in_flight_at_once = 0;
  std::vector<int> results;
  std::atomic<int> resumed_elsewhere{0};
};

uvaio::Async<void> many_in_flight(int count, Many* out) {
  std::vector<uvaio::Task<int>> tasks;
  for (int i = 0; i < count; ++i) {
    tasks.push_back(uvaio::create_task(square_on_worker(i, std::this_thread::get_id(), &out->resumed_elsewhere)));
  }
  // Every task takes its first step (and submits its call) before this
  // resumes, and no completion is processed within that iteration.
  co_await uvaio::sleep(0s);
  auto executor = std::dynamic_pointer_cast<uvaio::UvWorkExecutor>(uvaio::get_running_loop().default_executor());
  out->in_flight_at_once = executor ? executor->in_flight() : 0;
  for (auto& task : tasks) {
    int v = co_await task;
    out->results.push_back(v);
  }
}

TEST_CASE("200 to_thread calls in flight at once from 200 tasks all complete with the right values") {
  constexpr int count = 200;
  Many out;
  uvaio::run(many_in_flight(count, &out));
  CHECK(out.in_flight_at_once == count);
  REQUIRE(out.results.size() == count);
  int wrong = 0;
  for (int i = 0; i < count; ++i) {
    if (out.results[static_cast<std::size_t>(i)] != i * i) ++wrong;
  }
  CHECK(wrong == 0);
  CHECK(out.resumed_elsewhere.load() == 0);
}

// --- stop tokens and cancellation ----------------------------------------------------

uvaio::Async<int> token_given() {
  int v = co_await uvaio::to_thread(
      [](std::stop_token token, int x) { return token.stop_possible() && !token.stop_requested() ? x : -1; }, 5);
  co_return v;
}

TEST_CASE("a function whose first parameter is a std::stop_token receives one that can be stopped") {
  CHECK(uvaio::run(token_given()) == 5);
}

struct StopWhileRunning {
  std::latch started{1};
  std::atomic<bool> stop_possible{false};
  std::atomic<bool> saw_stop{false};
  std::atomic<bool> returned{false};
  bool cancel_returned = false;
  bool cancelled_at_once = false;
  bool await_threw_cancelled = false;
};

uvaio::Async<void> cancel_running(StopWhileRunning* state) {
  auto f = uvaio::to_thread([state](std::stop_token token) {
    state->stop_possible.store(token.stop_possible());
    state->started.count_down();
    // Polls the token; gives up after a generous deadline so that a broken
    // library fails the test instead of hanging it.
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (!token.stop_requested() && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(1ms);
    }
    state->saw_stop.store(token.stop_requested());
    state->returned.store(true);
    return 1;
  });
  state->started.wait();
  state->cancel_returned = f.cancel();
  state->cancelled_at_once = f.cancelled();
  try {
    int v = co_await f;
    (void)v;
  } catch (const uvaio::CancelledError&) {
    state->await_threw_cancelled = true;
  }
}

TEST_CASE("cancelling a running to_thread future requests stop through its stop_token") {
  StopWhileRunning state;
  {
    uvaio::Loop loop;
    loop.run_until_complete(cancel_running(&state));
    CHECK(state.cancel_returned);
    CHECK(state.cancelled_at_once);
    CHECK(state.await_threw_cancelled);
    loop.close();  // waits for the worker
  }
  CHECK(state.returned.load());
  CHECK(state.stop_possible.load());
  CHECK(state.saw_stop.load());
}

struct Saturated {
  explicit Saturated(std::ptrdiff_t blockers) : started(blockers) {}
  std::latch started;
  std::latch release{1};
  std::atomic<bool> victim_ran{false};
  bool victim_cancelled = false;
  bool victim_await_threw_cancelled = false;
  int blockers_done = 0;
};

uvaio::Async<void> cancel_queued(std::ptrdiff_t blockers, Saturated* state) {
  std::vector<uvaio::Future<int>> held;
  for (std::ptrdiff_t i = 0; i < blockers; ++i) {
    held.push_back(uvaio::to_thread([state] {
      state->started.count_down();
      state->release.wait();
      return 1;
    }));
  }
  // Every worker of the pool is now busy: the next call waits in libuv's queue.
  state->started.wait();
  auto victim = uvaio::to_thread([state] { state->victim_ran.store(true); });
  victim.cancel();
  state->victim_cancelled = victim.cancelled();
  state->release.count_down();
  for (auto& f : held) {
    int v = co_await f;
    state->blockers_done += v;
  }
  try {
    co_await victim;
  } catch (const uvaio::CancelledError&) {
    state->victim_await_threw_cancelled = true;
  }
}

TEST_CASE("cancelling a queued to_thread future when the pool is saturated means its function never runs") {
  const std::ptrdiff_t blockers = threadpool_size();
  Saturated state(blockers);
  {
    uvaio::Loop loop;
    loop.run_until_complete(cancel_queued(blockers, &state));
    loop.close();
  }
  CHECK(state.victim_cancelled);
  CHECK(state.victim_await_threw_cancelled);
  CHECK(state.blockers_done == blockers);
  CHECK_FALSE(state.victim_ran.load());
}

TEST_CASE("to_thread outside a running loop throws RuntimeError") {
  CHECK_THROWS_WITH_AS((void)uvaio::to_thread([] { return 1; }), "no running event loop", uvaio::RuntimeError);
}

}  // namespace

TEST_SUITE_END();
