#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support.hpp"

using test_support::run_one_iteration;
using test_support::cancelled_message;

using test_support::HandlerCapture;

namespace {

// Thrown to check that exceptions not derived from std::exception arrive intact.
struct Oops {
  int code;
};

// The what() of the std::exception inside `error`, or a marker.
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

uvaio::Async<int> await_value(uvaio::Future<int> future) {
  int v = co_await future;
  co_return v;
}

}  // namespace

TEST_SUITE_BEGIN("future");

TEST_CASE("a new future is neither done nor cancelled, and reading it throws InvalidStateError") {
  uvaio::Loop loop;
  auto f = loop.create_future<int>();
  CHECK_FALSE(f.done());
  CHECK_FALSE(f.cancelled());
  CHECK_THROWS_WITH_AS(f.result(), "Result is not set.", uvaio::InvalidStateError);
  CHECK_THROWS_WITH_AS(f.exception(), "Exception is not set.", uvaio::InvalidStateError);
}

TEST_CASE("set_result makes the future done with that result and no exception") {
  uvaio::Loop loop;
  auto f = loop.create_future<int>();
  f.set_result(5);
  CHECK(f.done());
  CHECK_FALSE(f.cancelled());
  CHECK(f.result() == 5);
  CHECK(f.exception() == nullptr);
}

TEST_CASE("a future with a result cannot be set again or cancelled") {
  uvaio::Loop loop;
  auto f = loop.create_future<int>();
  f.set_result(5);
  CHECK_THROWS_AS(f.set_result(6), uvaio::InvalidStateError);
  CHECK_THROWS_AS(f.set_exception(std::runtime_error("late")), uvaio::InvalidStateError);
  CHECK_FALSE(f.cancel());
  CHECK_FALSE(f.cancelled());
  CHECK(f.result() == 5);
}

TEST_CASE("set_exception makes result() rethrow it with its type intact and exception() return it") {
  uvaio::Loop loop;
  auto f = loop.create_future<int>();
  f.set_exception(std::invalid_argument("bad input"));
  CHECK(f.done());
  CHECK_FALSE(f.cancelled());
  CHECK_THROWS_WITH_AS(f.result(), "bad input", std::invalid_argument);
  std::exception_ptr error = f.exception();
  REQUIRE(error != nullptr);
  CHECK_THROWS_WITH_AS(std::rethrow_exception(error), "bad input", std::invalid_argument);
}

TEST_CASE("set_exception keeps an exception type not derived from std::exception") {
  uvaio::Loop loop;
  auto f = loop.create_future<void>();
  f.set_exception(Oops{3});
  int code = 0;
  try {
    f.result();
  } catch (const Oops& oops) {
    code = oops.code;
  }
  CHECK(code == 3);
}

TEST_CASE("a future with an exception cannot be set again or cancelled") {
  uvaio::Loop loop;
  auto f = loop.create_future<int>();
  f.set_exception(std::runtime_error("first"));
  CHECK_THROWS_AS(f.set_result(1), uvaio::InvalidStateError);
  CHECK_THROWS_AS(f.set_exception(std::runtime_error("second")), uvaio::InvalidStateError);
  CHECK_FALSE(f.cancel());
  CHECK_FALSE(f.cancelled());
  CHECK(what_of(f.exception()) == "first");
}

TEST_CASE("cancel with a message makes the future cancelled and done, and reading it throws CancelledError") {
  uvaio::Loop loop;
  auto f = loop.create_future<int>();
  CHECK(f.cancel("stop now"));
  CHECK(f.cancelled());
  CHECK(f.done());
  CHECK(cancelled_message([&] { (void)f.result(); }) == "stop now");
  CHECK(cancelled_message([&] { (void)f.exception(); }) == "stop now");
}

TEST_CASE("cancel without a message gives a CancelledError with an empty message") {
  uvaio::Loop loop;
  auto f = loop.create_future<void>();
  CHECK(f.cancel());
  CHECK(cancelled_message([&] { f.result(); }) == "");
  CHECK(cancelled_message([&] { (void)f.exception(); }) == "");
}

TEST_CASE("a cancelled future cannot be cancelled again or set") {
  uvaio::Loop loop;
  auto f = loop.create_future<int>();
  CHECK(f.cancel("first"));
  CHECK_FALSE(f.cancel("second"));
  CHECK_THROWS_AS(f.set_result(1), uvaio::InvalidStateError);
  CHECK_THROWS_AS(f.set_exception(std::runtime_error("late")), uvaio::InvalidStateError);
  CHECK(f.cancelled());
  CHECK(cancelled_message([&] { (void)f.result(); }) == "first");
}

TEST_CASE("done callbacks run on a later loop iteration, in registration order, with the future") {
  uvaio::Loop loop;
  auto f = loop.create_future<int>();
  const auto* state = f.state();
  std::vector<std::string> calls;
  for (int i = 1; i <= 3; ++i) {
    f.add_done_callback([&calls, state, i](const uvaio::Future<int>& done) {
      CHECK(done.state() == state);
      calls.push_back(std::to_string(i) + ":" + std::to_string(done.result()));
    });
  }
  f.set_result(9);
  CHECK(calls.empty());
  run_one_iteration(loop);
  CHECK(calls == std::vector<std::string>{"1:9", "2:9", "3:9"});
}

TEST_CASE("done callbacks also run after set_exception and after cancel, never inline") {
  uvaio::Loop loop;
  auto failed = loop.create_future<int>();
  auto cancelled = loop.create_future<int>();
  std::vector<std::string> calls;
  failed.add_done_callback([&calls](const uvaio::Future<int>& f) {
    calls.push_back("failed:" + what_of(f.exception()));
  });
  cancelled.add_done_callback([&calls](const uvaio::Future<int>& f) {
    calls.push_back(std::string("cancelled:") + (f.cancelled() ? "yes" : "no"));
  });
  failed.set_exception(std::runtime_error("boom"));
  cancelled.cancel();
  CHECK(calls.empty());
  run_one_iteration(loop);
  CHECK(calls == std::vector<std::string>{"failed:boom", "cancelled:yes"});
}

TEST_CASE("a done callback added to a future that is already done runs on a later iteration, not inside the call") {
  uvaio::Loop loop;
  auto f = loop.create_future<int>();
  f.set_result(4);
  int seen = 0;
  f.add_done_callback([&seen](const uvaio::Future<int>& done) { seen = done.result(); });
  CHECK(seen == 0);
  run_one_iteration(loop);
  CHECK(seen == 4);
}

TEST_CASE("remove_done_callback removes one registration, which then never runs") {
  uvaio::Loop loop;
  auto f = loop.create_future<int>();
  std::vector<int> calls;
  f.add_done_callback([&calls](const uvaio::Future<int>&) { calls.push_back(1); });
  auto id = f.add_done_callback([&calls](const uvaio::Future<int>&) { calls.push_back(2); });
  f.add_done_callback([&calls](const uvaio::Future<int>&) { calls.push_back(3); });
  CHECK(f.remove_done_callback(id) == 1);
  CHECK(f.remove_done_callback(id) == 0);
  f.set_result(1);
  run_one_iteration(loop);
  run_one_iteration(loop);
  CHECK(calls == std::vector<int>{1, 3});
}

TEST_CASE("remove_done_callback with an unknown id removes nothing") {
  uvaio::Loop loop;
  auto f = loop.create_future<int>();
  int calls = 0;
  f.add_done_callback([&calls](const uvaio::Future<int>&) { ++calls; });
  CHECK(f.remove_done_callback(uvaio::CallbackId{987654}) == 0);
  CHECK(f.remove_done_callback(uvaio::CallbackId{}) == 0);
  f.set_result(1);
  run_one_iteration(loop);
  CHECK(calls == 1);
}

TEST_CASE("a throwing done callback goes to the loop's exception handler and the other callbacks still run") {
  uvaio::Loop loop;
  HandlerCapture handler(loop);
  auto f = loop.create_future<int>();
  std::vector<int> calls;
  f.add_done_callback([&calls](const uvaio::Future<int>&) { calls.push_back(1); });
  f.add_done_callback([](const uvaio::Future<int>&) { throw std::logic_error("callback broke"); });
  f.add_done_callback([&calls](const uvaio::Future<int>&) { calls.push_back(3); });
  f.set_result(1);
  run_one_iteration(loop);
  CHECK(calls == std::vector<int>{1, 3});
  REQUIRE(handler.contexts.size() == 1);
  CHECK(handler.contexts[0].message.rfind("Exception in", 0) == 0);
  CHECK_THROWS_WITH_AS(std::rethrow_exception(handler.contexts[0].exception), "callback broke", std::logic_error);
  loop.close();
}

TEST_CASE("three tasks awaiting one future all resume with its value once it is set") {
  uvaio::Loop loop;
  auto f = loop.create_future<int>();
  auto t1 = loop.create_task(await_value(f));
  auto t2 = loop.create_task(await_value(f));
  auto t3 = loop.create_task(await_value(f));
  run_one_iteration(loop);
  CHECK_FALSE(t1.done());
  CHECK_FALSE(t2.done());
  CHECK_FALSE(t3.done());
  loop.call_soon([f] { f.set_result(11); });
  int v3 = loop.run_until_complete(t3);
  CHECK(v3 == 11);
  REQUIRE(t1.done());
  REQUIRE(t2.done());
  CHECK(t1.result() == 11);
  CHECK(t2.result() == 11);
}

TEST_CASE("awaiting a future that is already done does not suspend the task") {
  uvaio::Loop loop;
  auto body = [](uvaio::Future<int> f, bool* callback_ran) -> uvaio::Async<bool> {
    f.set_result(2);
    uvaio::get_running_loop().call_soon([callback_ran] { *callback_ran = true; });
    int v = co_await f;
    CHECK(v == 2);
    // Had the await gone through the loop, the callback queued before it would have run.
    co_return *callback_ran;
  };
  bool callback_ran = false;
  bool ran_before_resuming = loop.run_until_complete(body(loop.create_future<int>(), &callback_ran));
  CHECK_FALSE(ran_before_resuming);
}

TEST_CASE("co_await on a future yields a reference to the stored value") {
  uvaio::Loop loop;
  auto body = [](uvaio::Future<int> f) -> uvaio::Async<bool> {
    int& stored = co_await f;
    stored = 99;
    co_return &stored == &f.result();
  };
  auto f = loop.create_future<int>();
  f.set_result(1);
  bool same_object = loop.run_until_complete(body(f));
  CHECK(same_object);
  CHECK(f.result() == 99);
}

TEST_CASE("co_await std::move(future) moves a move-only value out of the future") {
  uvaio::Loop loop;
  auto body = [](uvaio::Future<std::unique_ptr<int>> f) -> uvaio::Async<int> {
    std::unique_ptr<int> p = co_await std::move(f);
    REQUIRE(p != nullptr);
    CHECK(f.result() == nullptr);  // NOLINT(bugprone-use-after-move): the handle stays, the value left
    co_return *p;
  };
  auto f = loop.create_future<std::unique_ptr<int>>();
  loop.call_soon([f] { f.set_result(std::make_unique<int>(21)); });
  int v = loop.run_until_complete(body(f));
  CHECK(v == 21);
}

TEST_CASE("an awaited future's exception arrives at the co_await with its type and message") {
  uvaio::Loop loop;
  auto body = [](uvaio::Future<int> f) -> uvaio::Async<std::string> {
    std::string message;
    try {
      int v = co_await f;
      (void)v;
    } catch (const std::out_of_range& e) {
      message = e.what();
    }
    co_return message;
  };
  auto f = loop.create_future<int>();
  loop.call_soon([f] { f.set_exception(std::out_of_range("too far")); });
  std::string message = loop.run_until_complete(body(f));
  CHECK(message == "too far");
}

TEST_CASE("an exception nobody retrieved is reported once to the exception handler when the last handle goes") {
  uvaio::Loop loop;
  HandlerCapture handler(loop);
  {
    auto f = loop.create_future<int>();
    f.set_exception(std::runtime_error("lost"));
    {
      auto copy = f;
      (void)copy;
    }
    CHECK(handler.contexts.empty());
  }
  REQUIRE(handler.contexts.size() == 1);
  CHECK(handler.contexts[0].message == "Future exception was never retrieved");
  CHECK(handler.contexts[0].task_name.empty());
  CHECK_THROWS_WITH_AS(std::rethrow_exception(handler.contexts[0].exception), "lost", std::runtime_error);
  loop.close();
  CHECK(handler.contexts.size() == 1);
}

TEST_CASE("an exception retrieved with result() is not reported") {
  uvaio::Loop loop;
  HandlerCapture handler(loop);
  {
    auto f = loop.create_future<int>();
    f.set_exception(std::runtime_error("seen"));
    CHECK_THROWS_AS(f.result(), std::runtime_error);
  }
  loop.close();
  CHECK(handler.contexts.empty());
}

TEST_CASE("an exception retrieved with exception() is not reported") {
  uvaio::Loop loop;
  HandlerCapture handler(loop);
  {
    auto f = loop.create_future<int>();
    f.set_exception(std::runtime_error("seen"));
    CHECK(f.exception() != nullptr);
  }
  loop.close();
  CHECK(handler.contexts.empty());
}

TEST_CASE("an exception retrieved by awaiting the future is not reported") {
  uvaio::Loop loop;
  HandlerCapture handler(loop);
  auto body = [](uvaio::Future<int> f) -> uvaio::Async<bool> {
    bool caught = false;
    try {
      int v = co_await f;
      (void)v;
    } catch (const std::runtime_error&) {
      caught = true;
    }
    co_return caught;
  };
  {
    auto f = loop.create_future<int>();
    loop.call_soon([f] { f.set_exception(std::runtime_error("seen")); });
    bool caught = loop.run_until_complete(body(std::move(f)));
    CHECK(caught);
  }
  loop.close();
  CHECK(handler.contexts.empty());
}

TEST_CASE("a future holding a result, or abandoned pending, is not reported") {
  uvaio::Loop loop;
  HandlerCapture handler(loop);
  {
    auto with_result = loop.create_future<int>();
    with_result.set_result(1);
    auto pending = loop.create_future<int>();
    (void)pending;
  }
  loop.close();
  CHECK(handler.contexts.empty());
}

TEST_CASE("cancel() after set_exception silences the never-retrieved report") {
  uvaio::Loop loop;
  HandlerCapture handler(loop);
  {
    auto f = loop.create_future<int>();
    f.set_exception(std::runtime_error("ignored"));
    CHECK_FALSE(f.cancel());
  }
  loop.close();
  CHECK(handler.contexts.empty());
}

TEST_CASE("a future whose loop was destroyed still answers done() and result(), and get_loop() throws") {
  std::optional<uvaio::Future<int>> f;
  {
    uvaio::Loop loop;
    f = loop.create_future<int>();
    CHECK(&f->get_loop() == &loop);
    f->set_result(8);
  }
  CHECK(f->done());
  CHECK_FALSE(f->cancelled());
  CHECK(f->result() == 8);
  CHECK_THROWS_WITH_AS(f->get_loop(), "Event loop is closed", uvaio::RuntimeError);
}

// Found by fuzz/scheduler_fuzz.cpp (fuzz/regressions/gather-twice-on-one-task-loses-other-waiters):
// completing a future fires its waiters in order; the first, a gather() that
// waits on it twice, unlinks its second node when it is satisfied, and that
// used to cut off every waiter after it.
TEST_CASE("waiters registered after one that unlinks another waiter while the future completes still resume") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<std::string> {
    auto future = uvaio::get_running_loop().create_future<int>();
    std::vector<uvaio::Future<int>> twice{future, future};
    auto gathering = uvaio::create_task(uvaio::gather(twice));
    co_await uvaio::sleep(std::chrono::seconds(0));  // its two nodes are linked first
    auto waiting = uvaio::create_task(await_value(future));
    co_await uvaio::sleep(std::chrono::seconds(0));  // then this task's
    future.set_exception(std::runtime_error("failed"));
    co_await test_support::settle(waiting);
    co_await test_support::settle(gathering);
    std::string seen = waiting.done() ? "waiter: " + what_of(waiting.exception()) : "waiter: still pending";
    seen += gathering.done() ? ", gather: " + what_of(gathering.exception()) : ", gather: still pending";
    co_return seen;
  };
  CHECK(loop.run_until_complete(body()) == "waiter: failed, gather: failed");
}

TEST_SUITE_END();
