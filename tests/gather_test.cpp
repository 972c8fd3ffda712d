#include <doctest/doctest.h>

#include <chrono>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "support.hpp"
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

// "a b c" for {"a", "b", "c"}: readable when a CHECK fails.
std::string joined(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : " ") + item;
  return text;
}

std::string listed(const std::vector<int>& values) {
  std::string text;
  for (int v : values) text += (text.empty() ? "" : " ") + std::to_string(v);
  return text;
}

// What reached the loop's exception handler, one message per report.
std::vector<std::string> messages_of(const HandlerCapture& handler) {
  std::vector<std::string> messages;
  for (const auto& context : handler.contexts) messages.push_back(context.message + " [" + what_of(context.exception) + "]");
  return messages;
}

// Each helper below takes `yields` sleep(0s) steps, so that the tests choose
// the order in which children finish without depending on time.
uvaio::Async<int> int_after(int yields, int value, std::vector<std::string>* finished, const char* name) {
  co_await yield_times(yields);
  finished->push_back(name);
  co_return value;
}

uvaio::Async<std::string> string_after(int yields, const char* value, std::vector<std::string>* finished,
                                       const char* name) {
  co_await yield_times(yields);
  finished->push_back(name);
  co_return std::string(value);
}

uvaio::Async<double> double_after(int yields, double value, std::vector<std::string>* finished, const char* name) {
  co_await yield_times(yields);
  finished->push_back(name);
  co_return value;
}

uvaio::Async<void> set_after(int yields, bool* flag) {
  co_await yield_times(yields);
  *flag = true;
}

uvaio::Async<std::unique_ptr<int>> unique_after(int yields, int value) {
  co_await yield_times(yields);
  co_return std::make_unique<int>(value);
}

uvaio::Async<int> fail_after(int yields, const char* message) {
  co_await yield_times(yields);
  throw std::invalid_argument(message);
}

uvaio::Async<int> await_future(uvaio::Future<int> future) {
  int v = co_await future;
  co_return v;
}

// Completes futures[order[0]], then futures[order[1]], ... one yield apart.
uvaio::Async<void> complete_in_order(std::vector<uvaio::Future<int>> futures, std::vector<std::size_t> order) {
  for (std::size_t index : order) {
    co_await uvaio::sleep(0s);
    futures[index].set_result(static_cast<int>(index) * 10);
  }
}

uvaio::Async<void> cancel_after(int yields, uvaio::Future<int> future, const char* message) {
  co_await yield_times(yields);
  future.cancel(message);
}

// What a child that is cancelled while it sleeps does on its way out.
struct Cleanup {
  bool saw_cancel = false;
  bool cleaned_up = false;  // set after an awaited step of clean-up
};

// Sleeps an hour holding a Counted; when cancelled, it cleans up with one
// awaited step (outside the catch handler: co_await is not allowed there) and
// rethrows.
uvaio::Async<int> sleeper(Cleanup* cleanup) {
  Counted local(1);
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

uvaio::Async<int> cancels_itself(const char* message) {
  co_await uvaio::sleep(0s);
  uvaio::current_task().cancel(message);
  co_await uvaio::sleep(0s);
  co_return 1;
}

}  // namespace

TEST_SUITE_BEGIN("gather");

// --- results and order ---------------------------------------------------------------

TEST_CASE("gather(a, b, c) returns the results in argument order whatever order the children finish in") {
  uvaio::Loop loop;
  auto body = [](std::vector<std::string>* finished) -> uvaio::Async<std::tuple<int, std::string, double>> {
    auto results = co_await uvaio::gather(int_after(3, 1, finished, "a"), string_after(1, "two", finished, "b"),
                                          double_after(2, 3.5, finished, "c"));
    co_return results;
  };
  std::vector<std::string> finished;
  auto [a, b, c] = loop.run_until_complete(body(&finished));
  CHECK(joined(finished) == "b c a");
  CHECK(a == 1);
  CHECK(b == "two");
  CHECK(c == 3.5);
}

TEST_CASE("gather starts the Asyncs it is given in argument order") {
  uvaio::Loop loop;
  auto body = [](std::vector<std::string>* finished) -> uvaio::Async<bool> {
    // No yields: each child finishes in its first step, so the order in which
    // they finish is the order in which they were started (asyncio wraps the
    // arguments in tasks from left to right).
    auto results = co_await uvaio::gather(int_after(0, 1, finished, "a"), int_after(0, 2, finished, "b"),
                                          int_after(0, 3, finished, "c"));
    (void)results;
    std::vector<uvaio::Async<int>> work;
    work.push_back(int_after(0, 4, finished, "d"));
    work.push_back(int_after(0, 5, finished, "e"));
    auto more = co_await uvaio::gather(std::move(work));
    (void)more;
    co_return true;
  };
  std::vector<std::string> finished;
  CHECK(loop.run_until_complete(body(&finished)));
  CHECK(joined(finished) == "a b c d e");
}

TEST_CASE("gather gives std::monostate for a child with a void result, once that child has run") {
  uvaio::Loop loop;
  auto body = [](bool* ran) -> uvaio::Async<int> {
    auto results = co_await uvaio::gather(set_after(2, ran), value_after(1, 4));
    static_assert(std::is_same_v<decltype(results), std::tuple<std::monostate, int>>);
    co_return std::get<1>(results);
  };
  bool ran = false;
  int v = loop.run_until_complete(body(&ran));
  CHECK(v == 4);
  CHECK(ran);
}

TEST_CASE("gather over a range of Asyncs returns a vector in input order") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<std::vector<int>> {
    std::vector<uvaio::Async<int>> work;
    for (int i = 0; i < 5; ++i) work.push_back(value_after(5 - i, i));  // the last one finishes first
    auto results = co_await uvaio::gather(std::move(work));
    co_return results;
  };
  std::vector<int> results = loop.run_until_complete(body());
  CHECK(listed(results) == "0 1 2 3 4");
}

TEST_CASE("gather over a range of Tasks returns a vector in input order and leaves the results in the tasks") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<bool> {
    std::vector<uvaio::Task<int>> tasks;
    for (int i = 0; i < 4; ++i) tasks.push_back(uvaio::create_task(value_after(4 - i, i * 2)));
    auto results = co_await uvaio::gather(tasks);
    CHECK(listed(results) == "0 2 4 6");
    CHECK(tasks[3].result() == 6);  // copied out: the caller's tasks keep their results
    co_return true;
  };
  CHECK(loop.run_until_complete(body()));
}

TEST_CASE("gather over a range of Futures returns a vector in input order whatever order they complete in") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<std::vector<int>> {
    std::vector<uvaio::Future<int>> futures;
    for (int i = 0; i < 3; ++i) futures.push_back(uvaio::get_running_loop().create_future<int>());
    auto completer = uvaio::create_task(complete_in_order(futures, {2, 0, 1}));
    auto results = co_await uvaio::gather(futures);
    co_await completer;
    co_return results;
  };
  std::vector<int> results = loop.run_until_complete(body());
  CHECK(listed(results) == "0 10 20");
}

TEST_CASE("an empty gather() and a gather over an empty range return at once, without yielding to the loop") {
  uvaio::Loop loop;
  auto body = [](bool* other_ran) -> uvaio::Async<bool> {
    // `other` would run at the first yield to the loop.
    auto other = uvaio::create_task(set_after(0, other_ran));
    auto none = co_await uvaio::gather();
    static_assert(std::is_same_v<decltype(none), std::tuple<>>);
    std::vector<uvaio::Task<int>> no_tasks;
    auto empty = co_await uvaio::gather(no_tasks);
    const bool yielded = *other_ran;
    co_await other;
    co_return empty.empty() && !yielded;
  };
  bool other_ran = false;
  CHECK(loop.run_until_complete(body(&other_ran)));
  CHECK(other_ran);
}

TEST_CASE("the same Task passed twice gives its result twice") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<bool> {
    auto task = uvaio::create_task(value_after(1, 8));
    auto [first, second] = co_await uvaio::gather(task, task);
    CHECK(first == 8);
    CHECK(second == 8);
    std::vector<uvaio::Task<int>> twice{task, task};
    auto results = co_await uvaio::gather(twice);
    CHECK(listed(results) == "8 8");
    co_return true;
  };
  CHECK(loop.run_until_complete(body()));
}

TEST_CASE("gather moves move-only results out of the Asyncs it started") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<int> {
    auto [a, b] = co_await uvaio::gather(unique_after(2, 3), unique_after(1, 4));
    std::vector<uvaio::Async<std::unique_ptr<int>>> work;
    work.push_back(unique_after(1, 5));
    work.push_back(unique_after(0, 6));
    auto more = co_await uvaio::gather(std::move(work));
    if (!a || !b || more.size() != 2 || !more[0] || !more[1]) co_return -1;
    co_return *a * 1000 + *b * 100 + *more[0] * 10 + *more[1];
  };
  int v = loop.run_until_complete(body());
  CHECK(v == 3456);
}

// --- the first failure -------------------------------------------------------------------

TEST_CASE("the first exception propagates with its type once the siblings gather started are cancelled and "
          "finished, while a Task passed in keeps running") {
  Counted::reset();
  uvaio::Loop loop;
  HandlerCapture handler(loop);
  auto body = [](Cleanup* owned, uvaio::Future<int> gate) -> uvaio::Async<std::string> {
    auto theirs = uvaio::create_task(await_future(gate));
    std::string seen;
    try {
      auto results = co_await uvaio::gather(fail_after(1, "first"), sleeper(owned), theirs);
      (void)results;
      seen = "<no exception>";
    } catch (const std::invalid_argument& e) {
      seen = e.what();
      // By the time the failure arrives, the sibling gather owned has finished
      // its clean-up (including its awaited step) and freed its frame...
      CHECK(owned->saw_cancel);
      CHECK(owned->cleaned_up);
      CHECK(Counted::alive() == 0);
      // ...and the Task passed in was left alone.
      CHECK_FALSE(theirs.done());
      CHECK(theirs.cancelling() == 0);
    }
    gate.set_result(7);
    int v = co_await theirs;
    CHECK(v == 7);
    CHECK_FALSE(theirs.cancelled());
    co_return seen;
  };
  Cleanup owned;
  std::string seen = loop.run_until_complete(body(&owned, loop.create_future<int>()));
  CHECK(seen == "first");
  loop.close();
  CHECK(handler.contexts.empty());
}

TEST_CASE("later failures of the siblings gather started are not reported as never retrieved") {
  uvaio::Loop loop;
  HandlerCapture handler(loop);
  auto body = []() -> uvaio::Async<std::string> {
    std::string seen;
    try {
      // "second" fails in the same iteration as "first"; the third fails while
      // gather cancels it.
      auto results = co_await uvaio::gather(fail_after(1, "first"), fail_after(1, "second"), fails_when_cancelled());
      (void)results;
    } catch (const std::invalid_argument& e) {
      seen = e.what();
    }
    co_return seen;
  };
  std::string seen = loop.run_until_complete(body());
  // Which of the two fails first is the subject of another test.
  CHECK((seen == "first" || seen == "second"));
  loop.close();
  CHECK(messages_of(handler).empty());
}

TEST_CASE("a child cancelled on its own makes gather throw CancelledError, but the awaiting task is not cancelled") {
  uvaio::Loop loop;
  auto body = [](Cleanup* owned) -> uvaio::Async<int> {
    std::string seen = "<no exception>";
    try {
      auto results = co_await uvaio::gather(cancels_itself("by itself"), sleeper(owned));
      (void)results;
    } catch (const uvaio::CancelledError& e) {
      seen = e.message();
    }
    CHECK(seen == "by itself");
    CHECK(uvaio::current_task().cancelling() == 0);
    CHECK(owned->cleaned_up);  // the sibling it started was cancelled like after an exception
    co_await uvaio::sleep(0s);  // the task is not cancelled: it goes on
    co_return 5;
  };
  Cleanup owned;
  auto task = loop.create_task(body(&owned));
  int v = loop.run_until_complete(task);
  CHECK(v == 5);
  CHECK_FALSE(task.cancelled());
}

TEST_CASE("a Future passed to gather and cancelled by someone else makes gather throw that CancelledError") {
  uvaio::Loop loop;
  auto body = [](uvaio::Future<int> future) -> uvaio::Async<std::string> {
    auto canceller = uvaio::create_task(cancel_after(1, future, "not needed"));
    std::string seen = "<no exception>";
    try {
      auto results = co_await uvaio::gather(value_after(3, 1), future);
      (void)results;
    } catch (const uvaio::CancelledError& e) {
      seen = e.message();
    }
    co_await canceller;
    co_return seen + (uvaio::current_task().cancelling() == 0 ? "" : " <task left cancelling>");
  };
  auto task = loop.create_task(body(loop.create_future<int>()));
  std::string seen = loop.run_until_complete(task);
  CHECK(seen == "not needed");
  CHECK_FALSE(task.cancelled());
}

// --- cancelling the awaiting task --------------------------------------------------------

TEST_CASE("cancelling the task awaiting a gather cancels every child, passed-in Tasks too, waits until all are "
          "done and throws CancelledError with the message") {
  Counted::reset();
  uvaio::Loop loop;
  struct Seen {
    Cleanup owned;
    Cleanup theirs;
    bool all_done_at_throw = false;
    std::string message = "<none>";
  };
  auto body = [](Seen* seen, uvaio::Task<int> theirs, uvaio::Future<int> future) -> uvaio::Async<int> {
    try {
      auto results = co_await uvaio::gather(sleeper(&seen->owned), theirs, future);
      (void)results;
    } catch (const uvaio::CancelledError& e) {
      seen->message = e.message();
      seen->all_done_at_throw = seen->owned.cleaned_up && seen->theirs.cleaned_up && theirs.done() && future.done() &&
                                Counted::alive() == 0;
      throw;
    }
    co_return 0;
  };
  Seen seen;
  auto theirs = loop.create_task(sleeper(&seen.theirs));
  auto future = loop.create_future<int>();
  auto task = loop.create_task(body(&seen, theirs, future));
  run_iterations(loop, 2);
  REQUIRE_FALSE(task.done());
  CHECK(task.cancel("stop"));
  CHECK(cancelled_message([&] { loop.run_until_complete(task); }) == "stop");
  CHECK(task.cancelled());
  CHECK(seen.message == "stop");
  CHECK(seen.all_done_at_throw);
  CHECK(theirs.cancelled());
  CHECK(cancelled_message([&] { (void)theirs.result(); }) == "stop");
  CHECK(future.cancelled());
  CHECK(cancelled_message([&] { (void)future.result(); }) == "stop");
}

// --- gather_settled -------------------------------------------------------------------------

TEST_CASE("gather_settled gives an Outcome per input: a value, an exception with its type, a CancelledError for a "
          "cancelled child, and never throws for a child") {
  uvaio::Loop loop;
  auto body = [](uvaio::Future<int> future) -> uvaio::Async<bool> {
    auto canceller = uvaio::create_task(cancel_after(1, future, "gone"));
    bool ran = false;
    auto [ok, failed, cancelled, nothing] =
        co_await uvaio::gather_settled(value_after(3, 1), fail_after(1, "bad"), future, set_after(2, &ran));
    co_await canceller;

    CHECK(ok.has_value());
    CHECK(ok.exception() == nullptr);
    CHECK_FALSE(ok.cancelled());
    CHECK(ok.value() == 1);  // it finished after the failure: nothing was cancelled

    CHECK_FALSE(failed.has_value());
    CHECK_FALSE(failed.cancelled());
    CHECK(what_of(failed.exception()) == "bad");
    CHECK_THROWS_WITH_AS(failed.value(), "bad", std::invalid_argument);

    CHECK_FALSE(cancelled.has_value());
    CHECK(cancelled.cancelled());
    CHECK(what_of(cancelled.exception()) == "CancelledError: gone");
    const uvaio::Outcome<int>& cancelled_outcome = cancelled;  // a lambda cannot capture a binding (C++20)
    CHECK(cancelled_message([&] { (void)cancelled_outcome.value(); }) == "gone");

    static_assert(std::is_same_v<decltype(nothing), uvaio::Outcome<void>>);
    CHECK(nothing.has_value());
    CHECK(ran);
    co_return true;
  };
  auto task = loop.create_task(body(loop.create_future<int>()));
  CHECK(loop.run_until_complete(task));
  CHECK(uvaio::Outcome<int>::is_cancelled(std::make_exception_ptr(uvaio::CancelledError("x"))));
}

TEST_CASE("gather_settled over a range of Tasks gives the Outcomes in input order") {
  uvaio::Loop loop;
  HandlerCapture handler(loop);
  auto body = []() -> uvaio::Async<bool> {
    std::vector<uvaio::Task<int>> tasks;
    tasks.push_back(uvaio::create_task(value_after(2, 10)));
    tasks.push_back(uvaio::create_task(fail_after(1, "second failed")));
    tasks.push_back(uvaio::create_task(value_after(0, 30)));
    auto outcomes = co_await uvaio::gather_settled(tasks);
    REQUIRE(outcomes.size() == 3);
    CHECK(outcomes[0].value() == 10);
    CHECK(what_of(outcomes[1].exception()) == "second failed");
    CHECK(outcomes[2].value() == 30);
    co_return true;
  };
  CHECK(loop.run_until_complete(body()));
  loop.close();
  CHECK(handler.contexts.empty());  // the failure was retrieved by gather_settled
}

TEST_CASE("cancelling the task awaiting gather_settled cancels every child and throws CancelledError once they "
          "are done") {
  Counted::reset();
  uvaio::Loop loop;
  struct Seen {
    Cleanup owned;
    Cleanup theirs;
    bool all_done_at_throw = false;
    std::string message = "<none>";
  };
  auto body = [](Seen* seen, uvaio::Task<int> theirs) -> uvaio::Async<int> {
    try {
      auto outcomes = co_await uvaio::gather_settled(sleeper(&seen->owned), theirs);
      (void)outcomes;
    } catch (const uvaio::CancelledError& e) {
      seen->message = e.message();
      seen->all_done_at_throw = seen->owned.cleaned_up && seen->theirs.cleaned_up && theirs.done();
      throw;
    }
    co_return 0;
  };
  Seen seen;
  auto theirs = loop.create_task(sleeper(&seen.theirs));
  auto task = loop.create_task(body(&seen, theirs));
  run_iterations(loop, 2);
  REQUIRE_FALSE(task.done());
  CHECK(task.cancel("settle down"));
  CHECK(cancelled_message([&] { loop.run_until_complete(task); }) == "settle down");
  CHECK(seen.message == "settle down");
  CHECK(seen.all_done_at_throw);
  CHECK(theirs.cancelled());
  CHECK(Counted::alive() == 0);
}

TEST_SUITE_END();
