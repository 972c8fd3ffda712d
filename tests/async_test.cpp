#include <doctest/doctest.h>

#include <array>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "support.hpp"

using test_support::Counted;

namespace {

// A value too large for anyone's stack budget if it were copied around carelessly.
struct Big {
  std::array<char, 65536> bytes{};
};

// Thrown to check that exceptions not derived from std::exception arrive intact.
struct Oops {
  int code;
};

uvaio::Async<int> mark_started(bool* started) {
  *started = true;
  co_return 1;
}

uvaio::Async<int> answer() { co_return 42; }

uvaio::Async<void> set_flag(bool* flag) {
  *flag = true;
  co_return;
}

uvaio::Async<std::unique_ptr<int>> make_unique_int(int value) { co_return std::make_unique<int>(value); }

uvaio::Async<Big> make_big(char fill) {
  Big big;
  big.bytes.fill(fill);
  big.bytes.back() = 'z';
  co_return big;
}

uvaio::Async<int> throw_runtime_error() {
  throw std::runtime_error("body failed");
  co_return 0;
}

uvaio::Async<void> throw_oops() {
  throw Oops{7};
  co_return;
}

uvaio::Async<void> hold_counted(Counted counted) {
  (void)counted;
  co_return;
}

uvaio::Async<int> one() { co_return 1; }

uvaio::Async<long> sum_of_ones(int count) {
  long sum = 0;
  for (int i = 0; i < count; ++i) {
    int v = co_await one();
    sum += v;
  }
  co_return sum;
}

uvaio::Async<int> depth(int n) {
  if (n == 0) co_return 0;
  int below = co_await depth(n - 1);
  co_return below + 1;
}

}  // namespace

TEST_SUITE_BEGIN("async");

TEST_CASE("creating an Async runs nothing of its body until it is awaited") {
  uvaio::Loop loop;
  bool started = false;
  auto lazy = mark_started(&started);
  CHECK_FALSE(started);

  auto awaiter = [](uvaio::Async<int> inner, bool* seen_before) -> uvaio::Async<int> {
    CHECK_FALSE(*seen_before);
    int v = co_await inner;
    co_return v;
  };
  int v = loop.run_until_complete(awaiter(std::move(lazy), &started));
  CHECK(v == 1);
  CHECK(started);
}

TEST_CASE("an Async given to create_task starts only when the loop runs the task") {
  uvaio::Loop loop;
  bool started = false;
  auto lazy = mark_started(&started);
  CHECK_FALSE(started);
  auto task = loop.create_task(std::move(lazy));
  CHECK_FALSE(started);
  int v = loop.run_until_complete(task);
  CHECK(v == 1);
  CHECK(started);
}

TEST_CASE("an Async that is destroyed without being awaited never runs its body") {
  bool started = false;
  {
    auto lazy = mark_started(&started);
  }
  CHECK_FALSE(started);
}

TEST_CASE("Async is move-only, and a moved-from Async is not valid") {
  static_assert(!std::is_copy_constructible_v<uvaio::Async<int>>);
  static_assert(!std::is_copy_assignable_v<uvaio::Async<int>>);
  static_assert(std::is_nothrow_move_constructible_v<uvaio::Async<int>>);
  static_assert(std::is_nothrow_move_assignable_v<uvaio::Async<int>>);
  static_assert(!std::is_copy_constructible_v<uvaio::Async<void>>);

  auto a = answer();
  CHECK(a.valid());
  auto b = std::move(a);
  CHECK_FALSE(a.valid());  // NOLINT(bugprone-use-after-move)
  CHECK(b.valid());

  uvaio::Async<int> c;
  CHECK_FALSE(c.valid());
  c = std::move(b);
  CHECK(c.valid());
  CHECK_FALSE(b.valid());  // NOLINT(bugprone-use-after-move)
}

TEST_CASE("awaiting the same Async twice throws RuntimeError saying it was already awaited") {
  uvaio::Loop loop;
  auto body = [](uvaio::Async<int> once) -> uvaio::Async<std::string> {
    int first = co_await once;
    CHECK(first == 42);
    std::string message;
    try {
      int second = co_await once;
      (void)second;
    } catch (const uvaio::RuntimeError& e) {
      message = e.what();
    }
    co_return message;
  };
  std::string message = loop.run_until_complete(body(answer()));
  CHECK(message.find("already awaited") != std::string::npos);
}

TEST_CASE("destroying an Async that was never awaited destroys its frame and its parameters") {
  Counted::reset();
  {
    auto lazy = hold_counted(Counted(5));
    CHECK(Counted::alive() == 1);
  }
  CHECK(Counted::alive() == 0);
  CHECK(Counted::constructed > 0);
}

TEST_CASE("an awaited Async delivers an int") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<int> {
    int v = co_await answer();
    co_return v + 1;
  };
  int v = loop.run_until_complete(body());
  CHECK(v == 43);
}

TEST_CASE("an awaited Async<void> runs its body to the end before the awaiter continues") {
  uvaio::Loop loop;
  auto body = [](bool* flag) -> uvaio::Async<bool> {
    co_await set_flag(flag);
    co_return *flag;
  };
  bool flag = false;
  bool seen = loop.run_until_complete(body(&flag));
  CHECK(seen);
  CHECK(flag);
}

TEST_CASE("an awaited Async delivers a move-only value") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<int> {
    std::unique_ptr<int> p = co_await make_unique_int(17);
    REQUIRE(p != nullptr);
    co_return *p;
  };
  int v = loop.run_until_complete(body());
  CHECK(v == 17);
}

TEST_CASE("an awaited Async delivers a 64 KiB value intact") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<bool> {
    Big big = co_await make_big('q');
    bool intact = big.bytes.back() == 'z';
    for (std::size_t i = 0; i + 1 < big.bytes.size(); ++i) intact = intact && big.bytes[i] == 'q';
    co_return intact;
  };
  bool intact = loop.run_until_complete(body());
  CHECK(intact);
}

TEST_CASE("an exception thrown in an Async's body arrives at the co_await with its type and message") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<std::string> {
    std::string message;
    try {
      int v = co_await throw_runtime_error();
      (void)v;
    } catch (const std::runtime_error& e) {
      message = e.what();
    }
    co_return message;
  };
  std::string message = loop.run_until_complete(body());
  CHECK(message == "body failed");
}

TEST_CASE("an exception not derived from std::exception arrives at the co_await intact") {
  uvaio::Loop loop;
  auto body = []() -> uvaio::Async<int> {
    int code = 0;
    try {
      co_await throw_oops();
    } catch (const Oops& oops) {
      code = oops.code;
    }
    co_return code;
  };
  int code = loop.run_until_complete(body());
  CHECK(code == 7);
}

TEST_CASE("a million sequential awaits of Asyncs that complete at once do not overflow the stack") {
  uvaio::Loop loop;
  long sum = loop.run_until_complete(sum_of_ones(1'000'000));
  CHECK(sum == 1'000'000);
}

TEST_CASE("a chain of Asyncs awaiting each other 100,000 deep does not overflow the stack") {
  uvaio::Loop loop;
  int v = loop.run_until_complete(depth(100'000));
  CHECK(v == 100'000);
}

TEST_SUITE_END();
