#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <new>

#include "counting_new.hpp"  // this binary counts allocations
#include "support.hpp"

using namespace std::chrono_literals;

TEST_SUITE_BEGIN("alloc");

namespace {

struct Counts {
  std::size_t submit = 0;
  std::size_t await = 0;
  int value = 0;
};

uvaio::Async<void> measure_run_in_executor(uvaio::Loop& loop, Counts* out) {
  // Warm-up: the default executor is created, libuv's threadpool started.
  auto warm = loop.run_in_executor(nullptr, [] { return 1; });
  int w = co_await warm;
  CHECK(w == 1);

  const std::size_t before = allocations();
  auto f = loop.run_in_executor(nullptr, [] { return 41; });
  const std::size_t submitted = allocations();
  int v = co_await f;
  const std::size_t awaited = allocations();

  out->submit = submitted - before;
  out->await = awaited - submitted;
  out->value = v;
}

TEST_CASE("a run_in_executor call allocates one block, and awaiting its completion allocates nothing") {
  uvaio::Loop loop;
  Counts counts;
  loop.run_until_complete(measure_run_in_executor(loop, &counts));
  CHECK(counts.value == 41);
  CHECK(counts.submit == 1);
  CHECK(counts.await == 0);
}

uvaio::Async<void> measure_sleeps(std::size_t* during) {
  co_await uvaio::sleep(1ms);  // warm-up: the timer heap has room for one timer
  const std::size_t before = allocations();
  co_await uvaio::sleep(1ms);
  co_await uvaio::sleep(0s);
  *during = allocations() - before;
}

TEST_CASE("a pending sleep allocates nothing") {
  std::size_t during = 99;
  uvaio::Loop loop;
  loop.run_until_complete(measure_sleeps(&during));
  CHECK(during == 0);
}

uvaio::Async<void> measure_resume(uvaio::Loop& loop, std::size_t* during) {
  uvaio::Future<int> f = loop.create_future<int>();
  loop.call_soon([f] { f.set_result(3); });
  const std::size_t before = allocations();
  int v = co_await f;
  *during = allocations() - before;
  CHECK(v == 3);
}

TEST_CASE("resuming a task that awaited a future allocates nothing") {
  std::size_t during = 99;
  uvaio::Loop loop;
  loop.run_until_complete(measure_resume(loop, &during));
  CHECK(during == 0);
}

}  // namespace

TEST_SUITE_END();
