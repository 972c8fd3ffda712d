#include <doctest/doctest.h>

#include <cstdlib>
#include <latch>
#include <string>

#include "support.hpp"

// libuv's threadpool is sized once per process, so this binary is its own
// process, and its one test case goes through the states in order.

namespace {

uvaio::Async<int> two_jobs_at_once() {
  // Both jobs wait until both are running: this returns only if the pool has
  // at least two threads.
  auto both = std::make_shared<std::latch>(2);
  auto job = [both] {
    both->arrive_and_wait();
    return 1;
  };
  auto first = uvaio::to_thread(job);
  auto second = uvaio::to_thread(job);
  int a = co_await first;
  int b = co_await second;
  co_return a + b;
}

}  // namespace

TEST_SUITE_BEGIN("threadpool_size");

TEST_CASE("threadpool_size sets libuv's pool size before its first use, and says so when it is too late") {
  ::unsetenv("UV_THREADPOOL_SIZE");
  CHECK(uvaio::libuv_threadpool_size() == 4);  // libuv's default

  CHECK_THROWS_AS(uvaio::Loop(uvaio::LoopOptions{.threadpool_size = 0}), uvaio::ValueError);
  CHECK_THROWS_AS(uvaio::Loop(uvaio::LoopOptions{.threadpool_size = 1025}), uvaio::ValueError);

  {
    uvaio::Loop loop(uvaio::LoopOptions{.threadpool_size = 2});
    const char* env = std::getenv("UV_THREADPOOL_SIZE");
    REQUIRE(env != nullptr);
    CHECK(std::string(env) == "2");
    CHECK(uvaio::libuv_threadpool_size() == 2);
    CHECK(loop.run_until_complete(two_jobs_at_once()) == 2);
    CHECK(uvaio::libuv_threadpool_size() == 2);  // as started
  }

  test_support::LogCapture log;
  {
    uvaio::Loop same(uvaio::LoopOptions{.threadpool_size = 2});  // what it has: nothing to say
    CHECK_FALSE(log.contains("too late"));
  }
  {
    uvaio::Loop later(uvaio::LoopOptions{.threadpool_size = 8});
    CHECK(log.count("threadpool_size 8 requested too late") == 1);
    CHECK(log.contains("already started with 2 threads"));
    CHECK(uvaio::libuv_threadpool_size() == 2);
  }
  // RunOptions carries the same option.
  const int result = uvaio::run(two_jobs_at_once(), uvaio::RunOptions{.threadpool_size = 3});
  CHECK(result == 2);
  CHECK(log.count("threadpool_size 3 requested too late") == 1);
}

TEST_SUITE_END();
