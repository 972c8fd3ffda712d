#include <doctest/doctest.h>

#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support.hpp"
using test_support::starts_with;
using test_support::yield_times;
using test_support::value_after;

using test_support::run_one_iteration;
using test_support::run_iterations;
using test_support::what_of;

using namespace std::chrono_literals;
using test_support::Counted;
using test_support::HandlerCapture;

namespace {

// The message of the CancelledError that fn() throws, or what happened instead.
template <class F>
std::string cancelled_message(F&& fn) {
  try {
    fn();
  } catch (const uvaio::CancelledError& e) {
    return e.message();
  } catch (const uvaio::ExceptionGroup& e) {
    return std::string("<ExceptionGroup: ") + e.what() + ">";
  } catch (...) {
    return "<another exception>";
  }
  return "<no exception>";
}

// The what() of every member of an ExceptionGroup, in order, "|"-separated.
std::string members_of(const uvaio::ExceptionGroup& group) {
  std::string text;
  for (const std::exception_ptr& e : group.exceptions()) text += (text.empty() ? "" : "|") + what_of(e);
  return text;
}

std::string joined(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ", ") + item;
  return text;
}

uvaio::Async<void> log_after(int yields, const char* name, std::vector<std::string>* log) {
  co_await yield_times(yields);
  log->push_back(name);
}

uvaio::Async<int> fail_after(int yields, const char* message) {
  co_await yield_times(yields);
  throw std::invalid_argument(message);
}

uvaio::Async<int> fail_on(uvaio::Future<int> gate, const char* message) {
  int v = co_await gate;
  (void)v;
  throw std::invalid_argument(message);
}

uvaio::Async<int> sleep_forever() {
  co_await uvaio::sleep(1h);
  co_return 0;
}

uvaio::Async<void> mark_ran(Counted held, bool* ran) {
  *ran = held.value != 0;
  co_return;
}

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

}  // namespace

TEST_SUITE_BEGIN("task_group");

// --- joining ---------------------------------------------------------------------------------

uvaio::Async<void> spawner(uvaio::TaskGroup* group, std::vector<std::string>* log) {
  co_await uvaio::sleep(0s);
  (void)group->create_task(log_after(3, "grandchild", log));
  log->push_back("spawner");
}

uvaio::Async<void> outsider(uvaio::TaskGroup* group, std::vector<std::string>* log) {
  co_await uvaio::sleep(0s);
  co_await uvaio::sleep(0s);
  (void)group->create_task(log_after(2, "late child", log));
  log->push_back("outsider");
}

TEST_CASE("join waits for every child, including children created by other children and while join waits") {
  uvaio::Loop loop;
  auto body = [](std::vector<std::string>* log) -> uvaio::Async<void> {
    uvaio::TaskGroup group;
    (void)group.create_task(spawner(&group, log));
    auto other = uvaio::create_task(outsider(&group, log));  // not in the group
    co_await group.join();
    log->push_back("joined");
    CHECK(group.running() == 0);
    co_await other;
  };
  std::vector<std::string> log;
  loop.run_until_complete(body(&log));
  CHECK(joined(log) == "spawner, outsider, grandchild, late child, joined");
}

TEST_CASE("the results of the children are available through their Task handles after join") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<int> {
    uvaio::TaskGroup group;
    auto a = group.create_task(value_after(2, 10));
    auto b = group.create_task(value_after(1, 20), "named child");
    CHECK(b.name() == "named child");
    co_await group.join();
    CHECK(a.done());
    CHECK(b.done());
    co_return a.result() + b.result();
  };
  CHECK(loop.run_until_complete(body()) == 30);
}

TEST_CASE("a child the user cancels affects neither the group nor its siblings") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<bool> {
    uvaio::TaskGroup group;
    auto victim = group.create_task(sleep_forever());
    auto sibling = group.create_task(value_after(3, 7));
    co_await uvaio::sleep(0s);
    victim.cancel("mine");
    co_await group.join();  // no exception
    CHECK(victim.cancelled());
    CHECK_FALSE(sibling.cancelled());
    CHECK(sibling.result() == 7);
    CHECK(uvaio::current_task().cancelling() == 0);
    co_return true;
  };
  CHECK(loop.run_until_complete(body()));
}

TEST_CASE("join() with no children returns at once") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<bool> {
    uvaio::TaskGroup group;
    co_await group.join();
    co_return group.running() == 0;
  };
  CHECK(loop.run_until_complete(body()));
}

TEST_CASE("1,000 children all complete before join returns") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<long> {
    uvaio::TaskGroup group;
    std::vector<uvaio::Task<int>> children;
    for (int i = 0; i < 1000; ++i) children.push_back(group.create_task(value_after(i % 3, i)));
    CHECK(group.running() == 1000);
    co_await group.join();
    long sum = 0;
    for (const auto& child : children) {
      if (child.done()) sum += child.result();
    }
    co_return sum;
  };
  CHECK(loop.run_until_complete(body()) == 999L * 1000L / 2);
}

// --- failures ----------------------------------------------------------------------------------

TEST_CASE("the first failing child cancels its siblings, and join throws an ExceptionGroup holding the failure") {
  Counted::reset();
  uvaio::Loop loop;
  HandlerCapture handler(loop);
  auto body = [](Cleanup* cleanup) -> uvaio::Async<std::string> {
    uvaio::TaskGroup group;
    auto sibling = group.create_task(sleeper(cleanup));
    (void)group.create_task(fail_after(2, "boom"));
    std::string seen = "<no exception>";
    try {
      co_await group.join();
    } catch (const uvaio::ExceptionGroup& e) {
      seen = e.what();
      seen += " [" + members_of(e) + "]";
      CHECK(sibling.cancelled());
      CHECK(cleanup->cleaned_up);
      CHECK(Counted::alive() == 0);
    }
    // Unlike asyncio, the code before join() was not cancelled.
    CHECK(uvaio::current_task().cancelling() == 0);
    co_return seen;
  };
  Cleanup cleanup;
  std::string seen = loop.run_until_complete(body(&cleanup));
  CHECK(starts_with(seen, "unhandled errors in a TaskGroup"));
  CHECK(seen.find("[boom]") != std::string::npos);
  loop.close();
  CHECK(handler.contexts.empty());  // the failure went to join, not to "never retrieved"
}

TEST_CASE("two children failing at once, before the cancellation reaches them, both appear in the ExceptionGroup") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<std::string> {
    uvaio::TaskGroup group;
    auto gate = uvaio::get_running_loop().create_future<int>();
    (void)group.create_task(fail_on(gate, "first"));
    (void)group.create_task(fail_on(gate, "second"));
    co_await uvaio::sleep(0s);  // both wait on the gate now
    // Both resume in the same iteration and fail there, as in asyncio, where
    // the group learns of a failure through a done callback that runs after
    // the other child's step.
    gate.set_result(1);
    std::string seen = "<no exception>";
    try {
      co_await group.join();
    } catch (const uvaio::ExceptionGroup& e) {
      seen = members_of(e);
    }
    co_return seen;
  };
  CHECK(loop.run_until_complete(body()) == "first|second");
}

TEST_CASE("a child failing with another exception while the group cancels it also appears in the ExceptionGroup") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<std::string> {
    uvaio::TaskGroup group;
    (void)group.create_task(fails_when_cancelled());
    (void)group.create_task(fail_after(1, "boom"));
    std::string seen = "<no exception>";
    try {
      co_await group.join();
    } catch (const uvaio::ExceptionGroup& e) {
      seen = members_of(e);
    }
    co_return seen;
  };
  CHECK(loop.run_until_complete(body()) == "boom|clean-up failed");
}

uvaio::Async<void> inner_group_fails() {
  uvaio::TaskGroup inner;
  (void)inner.create_task(fail_after(1, "inner boom"));
  (void)inner.create_task(sleep_forever());
  co_await inner.join();
}

TEST_CASE("an inner group's ExceptionGroup is one element of the outer group's ExceptionGroup") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<std::string> {
    uvaio::TaskGroup outer;
    (void)outer.create_task(inner_group_fails());
    std::string seen = "<no exception>";
    try {
      co_await outer.join();
    } catch (const uvaio::ExceptionGroup& e) {
      seen = std::to_string(e.exceptions().size()) + " member(s)";
      if (e.exceptions().size() == 1) {
        try {
          std::rethrow_exception(e.exceptions()[0]);
        } catch (const uvaio::ExceptionGroup& inner) {
          seen += ", the first a group: " + members_of(inner);
        } catch (...) {
          seen += ", the first not a group";
        }
      }
    }
    co_return seen;
  };
  CHECK(loop.run_until_complete(body()) == "1 member(s), the first a group: inner boom");
}

// --- cancellation from outside -------------------------------------------------------------------

TEST_CASE("cancelling the task waiting in join cancels the children and throws CancelledError, not a group") {
  Counted::reset();
  uvaio::Loop loop;
  struct Seen {
    Cleanup a;
    Cleanup b;
    std::string caught = "<nothing>";
    bool children_done = false;
  };
  auto body = [](Seen* seen) -> uvaio::Async<void> {
    uvaio::TaskGroup group;
    auto a = group.create_task(sleeper(&seen->a));
    auto b = group.create_task(sleeper(&seen->b));
    try {
      co_await group.join();
    } catch (const uvaio::CancelledError& e) {
      seen->caught = "CancelledError: " + e.message();
      seen->children_done = a.cancelled() && b.cancelled() && seen->a.cleaned_up && seen->b.cleaned_up;
      throw;
    } catch (const uvaio::ExceptionGroup& e) {
      seen->caught = "ExceptionGroup: " + members_of(e);
      throw;
    }
  };
  Seen seen;
  auto task = loop.create_task(body(&seen));
  run_iterations(loop, 2);
  REQUIRE_FALSE(task.done());
  CHECK(task.cancel("from outside"));
  CHECK(cancelled_message([&] { loop.run_until_complete(task); }) == "from outside");
  CHECK(seen.caught == "CancelledError: from outside");
  CHECK(seen.children_done);
  CHECK(task.cancelled());
  CHECK(Counted::alive() == 0);
}

TEST_CASE("cancelling the task waiting in join gives an ExceptionGroup when a child fails during the clean-up") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<void> {
    uvaio::TaskGroup group;
    (void)group.create_task(fails_when_cancelled());
    (void)group.create_task(sleep_forever());
    co_await group.join();
  };
  auto task = loop.create_task(body());
  run_iterations(loop, 2);
  REQUIRE_FALSE(task.done());
  CHECK(task.cancel("from outside"));
  std::string seen = "<no exception>";
  try {
    loop.run_until_complete(task);
  } catch (const uvaio::ExceptionGroup& e) {
    seen = std::string(e.what()).substr(0, 31) + ": " + members_of(e);
  } catch (const uvaio::CancelledError&) {
    seen = "CancelledError";
  }
  CHECK(seen == "unhandled errors in a TaskGroup: clean-up failed");
  CHECK_FALSE(task.cancelled());
}

// --- misuse -------------------------------------------------------------------------------------

TEST_CASE("create_task after a failure throws 'TaskGroup is shutting down' and after join 'TaskGroup is "
          "finished', destroying the Async unrun") {
  Counted::reset();
  uvaio::Loop loop;
  auto body = [](bool* ran) -> uvaio::Async<std::vector<std::string>> {
    std::vector<std::string> seen;
    uvaio::TaskGroup group;
    auto failing = group.create_task(fail_after(0, "boom"));
    (void)group.create_task(sleep_forever());
    try {
      co_await failing;
    } catch (const std::invalid_argument&) {
    }
    // The group hears of the failure through the ready queue, like asyncio's
    // done callback: one more turn of the loop and it is shutting down.
    co_await uvaio::sleep(0s);
    try {
      (void)group.create_task(mark_ran(Counted(1), ran));
      seen.push_back("<created>");
    } catch (const uvaio::RuntimeError& e) {
      seen.push_back(e.what());
    }
    seen.push_back("alive " + std::to_string(Counted::alive()));
    try {
      co_await group.join();
    } catch (const uvaio::ExceptionGroup& e) {
      seen.push_back(members_of(e));
    }
    try {
      (void)group.create_task(mark_ran(Counted(1), ran));
      seen.push_back("<created>");
    } catch (const uvaio::RuntimeError& e) {
      seen.push_back(e.what());
    }
    seen.push_back("alive " + std::to_string(Counted::alive()));
    co_return seen;
  };
  bool ran = false;
  auto seen = loop.run_until_complete(body(&ran));
  CHECK(joined(seen) == "TaskGroup is shutting down, alive 0, boom, TaskGroup is finished, alive 0");
  CHECK_FALSE(ran);
}

TEST_CASE("create_task after a join that succeeded throws 'TaskGroup is finished'") {
  uvaio::Loop loop;
  auto body = [](bool* ran) -> uvaio::Async<std::string> {
    uvaio::TaskGroup group;
    (void)group.create_task(value_after(1, 1));
    co_await group.join();
    std::string seen = "<created>";
    try {
      (void)group.create_task(mark_ran(Counted(1), ran));
    } catch (const uvaio::RuntimeError& e) {
      seen = e.what();
    }
    co_return seen;
  };
  bool ran = false;
  CHECK(loop.run_until_complete(body(&ran)) == "TaskGroup is finished");
  run_iterations(loop, 2);
  CHECK_FALSE(ran);
}

TEST_CASE("join called a second time throws RuntimeError") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<std::string> {
    uvaio::TaskGroup group;
    (void)group.create_task(value_after(1, 1));
    co_await group.join();
    std::string seen = "<no exception>";
    try {
      co_await group.join();
    } catch (const uvaio::RuntimeError& e) {
      seen = e.what();
    }
    co_return seen;
  };
  std::string seen = loop.run_until_complete(body());
  CHECK(seen.find("join") != std::string::npos);
  CHECK(seen.find("already") != std::string::npos);
}

TEST_CASE("a group destroyed without join cancels its running children and reports it to the exception handler") {
  Counted::reset();
  uvaio::Loop loop;
  HandlerCapture handler(loop);
  auto body = [](Cleanup* cleanup, uvaio::Task<int>* child) -> uvaio::Async<void> {
    uvaio::TaskGroup group;
    *child = group.create_task(sleeper(cleanup));
    co_await uvaio::sleep(0s);
  };
  Cleanup cleanup;
  uvaio::Task<int> child;
  loop.run_until_complete(body(&cleanup, &child));
  REQUIRE(child);
  CHECK(child.cancelling() == 1);
  CHECK(cancelled_message([&] { loop.run_until_complete(child); }) == "TaskGroup destroyed without join()");
  CHECK(cleanup.cleaned_up);
  CHECK(Counted::alive() == 0);
  REQUIRE(handler.contexts.size() == 1);
  CHECK(starts_with(handler.contexts[0].message, "TaskGroup destroyed without join()"));
}

TEST_CASE("a TaskGroup outside a running loop throws RuntimeError") {
  CHECK_THROWS_WITH_AS([] { uvaio::TaskGroup group; }(), "no running event loop", uvaio::RuntimeError);
}

TEST_SUITE_END();
