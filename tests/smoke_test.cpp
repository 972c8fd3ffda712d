#include <doctest/doctest.h>

#include <thread>

#include <uvaio/uvaio.hpp>

using namespace std::chrono_literals;

namespace {
uvaio::Async<int> add(int a, int b) { co_return a + b; }

uvaio::Async<int> main_coro() {
  int x = co_await add(1, 2);
  auto tid = std::this_thread::get_id();
  int y = co_await uvaio::to_thread([tid] {
    CHECK(std::this_thread::get_id() != tid);
    return 40;
  });
  CHECK(std::this_thread::get_id() == tid);
  co_await uvaio::sleep(1ms);
  co_return x + y - 1;
}
}  // namespace

TEST_CASE("smoke: run a coroutine that awaits to_thread and sleep") {
  int result = uvaio::run(main_coro());
  CHECK(result == 42);
}
