#include <doctest/doctest.h>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

#include "support.hpp"

// Debug mode beyond the thread checks (loop_test.cpp, misuse_test.cpp):
// slow task steps named in the log, and where tasks and futures were created
// (asyncio's source_traceback) in the loop's reports. Items 91-94 of the
// asyncio reference.

using namespace std::chrono_literals;
using test_support::HandlerCapture;
using test_support::LogCapture;
using test_support::run_one_iteration;

namespace {

uvaio::Async<void> forever_pending(uvaio::Future<void> never) { co_await never; }

uvaio::Async<int> fail_with(std::string what) {
  throw std::runtime_error(what);
  co_return 0;
}

uvaio::Async<void> stall_one_step() {
  std::this_thread::sleep_for(30ms);
  co_return;
}

bool ends_with(const std::string& text, const std::string& tail) {
  return text.size() >= tail.size() && text.compare(text.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

TEST_SUITE_BEGIN("debug");

TEST_CASE("SourceLocation::current() is the caller's file, function and line; a default one is unknown") {
  const unsigned line = __LINE__ + 1;
  const uvaio::SourceLocation here = uvaio::SourceLocation::current();
  CHECK(here.known());
  CHECK(here.line() == line);
  CHECK(ends_with(here.file_name(), "debug_test.cpp"));
  CHECK(std::string(here.function_name()).find("DOCTEST_ANON_FUNC") != std::string::npos);

  const uvaio::SourceLocation unknown;
  CHECK_FALSE(unknown.known());
  CHECK(std::string(unknown.file_name()).empty());
  CHECK(unknown.line() == 0);
}

TEST_CASE("in debug mode, a task step slower than slow_callback_duration is logged with the task's name") {
  LogCapture log;
  uvaio::Loop loop(uvaio::LoopOptions{.debug = true, .slow_callback_duration = 20ms});
  loop.run_until_complete(loop.create_task(stall_one_step(), "slowpoke"));
  bool found = false;
  for (const std::string& line : log.lines()) {
    found = found || (line.rfind("Executing Task 'slowpoke' took ", 0) == 0 && ends_with(line, " seconds"));
  }
  CHECK(found);
}

TEST_CASE("in debug mode, a task destroyed pending is reported with where it was created") {
  HandlerCapture* capture = nullptr;
  unsigned line = 0;
  {
    uvaio::Loop loop(uvaio::LoopOptions{.debug = true});
    HandlerCapture handler(loop);
    capture = &handler;
    auto never = loop.create_future<void>();
    line = __LINE__ + 1;
    (void)loop.create_task(forever_pending(never), "stuck");
    run_one_iteration(loop);
    loop.close();
    REQUIRE(capture->contexts.size() == 1);
    const uvaio::ExceptionContext& context = capture->contexts[0];
    CHECK(context.message == "Task was destroyed but it is pending!");
    CHECK(context.task_name == "stuck");
    CHECK(context.created_at.known());
    CHECK(context.created_at.line() == line);
    CHECK(ends_with(context.created_at.file_name(), "debug_test.cpp"));
  }
}

TEST_CASE("in debug mode, the default handler prints where the task was created") {
  LogCapture log;
  unsigned line = 0;
  {
    uvaio::Loop loop(uvaio::LoopOptions{.debug = true});
    auto never = loop.create_future<void>();
    line = __LINE__ + 1;
    (void)loop.create_task(forever_pending(never), "stuck");
    run_one_iteration(loop);
  }
  const std::string where = "debug_test.cpp:" + std::to_string(line) + " in ";
  bool found = false;
  for (const std::string& text : log.lines()) {
    found = found || (text.rfind("Task was destroyed but it is pending! (task 'stuck') [created at ", 0) == 0 &&
                      text.find(where) != std::string::npos);
  }
  CHECK(found);
}

TEST_CASE("in debug mode, a never-retrieved exception names where the task or future was created") {
  uvaio::Loop loop(uvaio::LoopOptions{.debug = true});
  HandlerCapture handler(loop);

  const unsigned task_line = __LINE__ + 1;
  (void)loop.create_task(fail_with("task failure"), "failing");
  run_one_iteration(loop);  // fails; the task handle is already gone

  unsigned future_line = 0;
  {
    future_line = __LINE__ + 1;
    auto future = loop.create_future<int>();
    future.set_exception(std::runtime_error("future failure"));
  }
  run_one_iteration(loop);
  REQUIRE(handler.contexts.size() == 2);
  CHECK(handler.contexts[0].message == "Task exception was never retrieved");
  CHECK(handler.contexts[0].created_at.line() == task_line);
  CHECK(handler.contexts[1].message == "Future exception was never retrieved");
  CHECK(handler.contexts[1].created_at.line() == future_line);
  CHECK(ends_with(handler.contexts[1].created_at.file_name(), "debug_test.cpp"));
}

TEST_CASE("the free create_task and TaskGroup::create_task record their caller too") {
  uvaio::Loop loop(uvaio::LoopOptions{.debug = true});
  HandlerCapture handler(loop);
  static unsigned free_line = 0;
  static unsigned group_line = 0;
  // The "free" task fails unobserved; the group's child stays pending, and
  // is destroyed pending by close() along with the parent awaiting join().
  auto pending_child = []() -> uvaio::Async<void> {
    free_line = __LINE__ + 1;
    (void)uvaio::create_task(fail_with("free"), "free");
    uvaio::TaskGroup group;
    group_line = __LINE__ + 1;
    (void)group.create_task(forever_pending(uvaio::get_running_loop().create_future<void>()), "child");
    co_await group.join();
  };
  (void)loop.create_task(pending_child(), "parent");
  for (int i = 0; i < 3; ++i) run_one_iteration(loop);
  loop.close();
  bool free_seen = false;
  bool child_seen = false;
  for (const uvaio::ExceptionContext& context : handler.contexts) {
    if (context.task_name == "free") free_seen = context.created_at.line() == free_line;
    if (context.task_name == "child") child_seen = context.created_at.line() == group_line;
  }
  CHECK(free_seen);
  CHECK(child_seen);
}

TEST_CASE("outside debug mode, reports carry no creation place") {
  uvaio::Loop loop;
  HandlerCapture handler(loop);
  auto never = loop.create_future<void>();
  (void)loop.create_task(forever_pending(never), "stuck");
  run_one_iteration(loop);
  loop.close();
  REQUIRE(handler.contexts.size() == 1);
  CHECK_FALSE(handler.contexts[0].created_at.known());
}

TEST_SUITE_END();
