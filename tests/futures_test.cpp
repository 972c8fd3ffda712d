#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <iterator>
#include <latch>
#include <ranges>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <uvaio/futures.hpp>
#include <uvaio/thread_future.hpp>

#include "support.hpp"

using namespace std::chrono_literals;
using uvaio::ThreadFuture;
namespace futures = uvaio::futures;
using futures::ReturnWhen;

TEST_SUITE_BEGIN("futures");

namespace {

std::vector<ThreadFuture<int>> make_futures(std::size_t n) {
  return std::vector<ThreadFuture<int>>(n);
}

bool contains(const std::vector<ThreadFuture<int>>& fs, const ThreadFuture<int>& f) {
  return std::find(fs.begin(), fs.end(), f) != fs.end();
}

std::chrono::steady_clock::duration elapsed_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::steady_clock::now() - start;
}

static_assert(std::ranges::input_range<futures::AsCompleted<int>>);
static_assert(std::ranges::input_range<futures::AsCompleted<void>>);

}  // namespace

// --- wait -----------------------------------------------------------------------------

TEST_CASE("wait with all_completed returns once every future is done, whatever the outcome") {
  auto fs = make_futures(3);
  std::latch waiting{1};
  std::thread producer([&] {
    waiting.wait();
    fs[2].set_result(2);
    fs[0].set_exception(std::runtime_error("x"));
    fs[1].cancel();
  });
  waiting.count_down();
  auto result = futures::wait(fs);
  producer.join();
  CHECK(result.done.size() == 3);
  CHECK(result.not_done.empty());
  for (const auto& f : fs) CHECK(f.done());
}

TEST_CASE("wait with a timeout returns what is unfinished in not_done instead of throwing") {
  auto fs = make_futures(3);
  fs[1].set_result(1);
  const auto start = std::chrono::steady_clock::now();
  auto result = futures::wait(fs, 20ms);
  CHECK(elapsed_since(start) >= 20ms);
  REQUIRE(result.done.size() == 1);
  CHECK(result.done[0] == fs[1]);
  REQUIRE(result.not_done.size() == 2);
  CHECK(result.not_done[0] == fs[0]);  // in the order given
  CHECK(result.not_done[1] == fs[2]);
}

TEST_CASE("wait with a zero timeout reports the current split without blocking") {
  auto fs = make_futures(2);
  fs[0].set_result(0);
  auto result = futures::wait(fs, 0s, ReturnWhen::all_completed);
  CHECK(result.done.size() == 1);
  CHECK(result.not_done.size() == 1);
}

TEST_CASE("wait with first_completed returns as soon as one future completes") {
  auto fs = make_futures(3);
  std::thread producer([&] { fs[1].set_result(1); });
  auto result = futures::wait(fs, std::nullopt, ReturnWhen::first_completed);
  producer.join();
  REQUIRE(result.done.size() == 1);
  CHECK(result.done[0] == fs[1]);
  CHECK(result.not_done.size() == 2);
  CHECK_FALSE(contains(result.not_done, fs[1]));
}

TEST_CASE("wait with first_completed returns at once when one is already done") {
  auto fs = make_futures(3);
  fs[2].cancel();
  auto result = futures::wait(fs, std::nullopt, ReturnWhen::first_completed);
  REQUIRE(result.done.size() == 1);
  CHECK(result.done[0] == fs[2]);
  CHECK(result.not_done.size() == 2);
}

TEST_CASE("wait with first_completed counts a cancellation from another thread as a completion") {
  auto fs = make_futures(2);
  std::thread canceller([&] { CHECK(fs[0].cancel()); });
  auto result = futures::wait(fs, std::nullopt, ReturnWhen::first_completed);
  canceller.join();
  REQUIRE(result.done.size() == 1);
  CHECK(result.done[0].cancelled());
}

TEST_CASE("wait with first_exception returns on the first exception, with the results before it") {
  auto fs = make_futures(3);
  std::thread producer([&] {
    fs[0].set_result(0);
    fs[1].set_exception(std::runtime_error("first failure"));
  });
  auto result = futures::wait(fs, std::nullopt, ReturnWhen::first_exception);
  producer.join();
  CHECK(result.done.size() == 2);
  CHECK(contains(result.done, fs[0]));
  CHECK(contains(result.done, fs[1]));
  REQUIRE(result.not_done.size() == 1);
  CHECK(result.not_done[0] == fs[2]);
}

TEST_CASE("wait with first_exception returns at once when a done future already failed") {
  auto fs = make_futures(2);
  fs[1].set_exception(std::runtime_error("early"));
  auto result = futures::wait(fs, std::nullopt, ReturnWhen::first_exception);
  REQUIRE(result.done.size() == 1);
  CHECK(result.done[0] == fs[1]);
}

TEST_CASE("wait with first_exception does not stop for a cancellation or a result") {
  auto fs = make_futures(3);
  fs[0].cancel();
  fs[1].set_result(1);
  const auto start = std::chrono::steady_clock::now();
  auto timed_out = futures::wait(fs, 20ms, ReturnWhen::first_exception);
  CHECK(elapsed_since(start) >= 20ms);
  CHECK(timed_out.done.size() == 2);
  REQUIRE(timed_out.not_done.size() == 1);
  CHECK(timed_out.not_done[0] == fs[2]);

  // ... but returns once all are done, even without an exception.
  std::thread producer([&] { fs[2].set_result(2); });
  auto result = futures::wait(fs, std::nullopt, ReturnWhen::first_exception);
  producer.join();
  CHECK(result.done.size() == 3);
  CHECK(result.not_done.empty());
}

TEST_CASE("wait collapses duplicates and keeps the order first given") {
  auto fs = make_futures(2);
  fs[1].set_result(1);
  std::vector<ThreadFuture<int>> given{fs[1], fs[0], fs[1], fs[0]};
  auto result = futures::wait(given, 0s);
  REQUIRE(result.done.size() == 1);
  CHECK(result.done[0] == fs[1]);
  REQUIRE(result.not_done.size() == 1);
  CHECK(result.not_done[0] == fs[0]);
}

TEST_CASE("wait on no futures returns at once with nothing") {
  auto result = futures::wait(std::vector<ThreadFuture<int>>{});
  CHECK(result.done.empty());
  CHECK(result.not_done.empty());
}

TEST_CASE("wait works for void futures") {
  std::vector<ThreadFuture<>> fs(2);
  std::thread producer([&] {
    fs[0].set_result();
    fs[1].set_result();
  });
  auto result = futures::wait(fs);
  producer.join();
  CHECK(result.done.size() == 2);
}

TEST_CASE("wait leaves nothing behind on the futures it no longer watches") {
  // Returning early on first_completed must take the waiter off the others:
  // completing them afterwards would otherwise touch a dead waiter (ASan).
  auto fs = make_futures(3);
  fs[0].set_result(0);
  (void)futures::wait(fs, std::nullopt, ReturnWhen::first_completed);
  auto pending = make_futures(2);
  std::thread producer([&] { pending[0].set_result(0); });
  (void)futures::wait(pending, std::nullopt, ReturnWhen::first_completed);
  producer.join();
  fs[1].set_result(1);
  fs[2].cancel();
  pending[1].set_exception(std::runtime_error("later"));
  CHECK(futures::wait(fs, 0s).done.size() == 3);
}

// --- as_completed ------------------------------------------------------------------------

TEST_CASE("as_completed yields the futures already done first, then the others as they complete") {
  auto fs = make_futures(4);
  fs[2].set_result(2);
  auto completed = futures::as_completed(fs);
  CHECK(completed.size() == 4);
  std::thread producer([&] {
    // One thread, so this is the completion order.
    fs[3].set_result(3);
    fs[0].cancel();
    fs[1].set_exception(std::runtime_error("one"));
  });
  std::vector<ThreadFuture<int>> order;
  for (const auto& f : completed) {
    CHECK(f.done());
    order.push_back(f);
  }
  producer.join();
  REQUIRE(order.size() == 4);
  CHECK(order[0] == fs[2]);
  CHECK(order[1] == fs[3]);
  CHECK(order[2] == fs[0]);
  CHECK(order[3] == fs[1]);
}

TEST_CASE("as_completed yields in the order other threads complete the futures") {
  auto fs = make_futures(3);
  const std::vector<int> chosen{1, 2, 0};
  auto completed = futures::as_completed(fs, 60s);
  // Thread k completes fs[chosen[k]] once thread k-1 has completed its own:
  // a chain of latches fixes the order across threads.
  std::array<std::latch, 3> turn{std::latch{1}, std::latch{1}, std::latch{1}};
  std::vector<std::thread> threads;
  threads.reserve(3);
  for (int k = 0; k < 3; ++k) {
    threads.emplace_back([&, k] {
      if (k > 0) turn[k - 1].wait();
      fs[chosen[k]].set_result(chosen[k]);
      turn[k].count_down();
    });
  }
  std::vector<int> seen;
  for (auto it = completed.begin(); it != completed.end(); ++it) seen.push_back(it->result());
  for (auto& t : threads) t.join();
  CHECK(seen == chosen);
}

TEST_CASE("as_completed throws TimeoutError past its deadline, saying how many are unfinished") {
  auto fs = make_futures(3);
  fs[1].set_result(1);
  const auto start = std::chrono::steady_clock::now();
  auto completed = futures::as_completed(fs, 20ms);
  auto it = completed.begin();
  REQUIRE(it != completed.end());
  CHECK(*it == fs[1]);
  try {
    ++it;
    FAIL("no TimeoutError");
  } catch (const uvaio::TimeoutError& e) {
    CHECK(std::string(e.what()) == "2 (of 3) futures unfinished");
  }
  CHECK(elapsed_since(start) >= 20ms);
}

TEST_CASE("as_completed with a timeout does not throw when everything completes in time") {
  auto fs = make_futures(2);
  fs[0].set_result(0);
  fs[1].set_result(1);
  int count = 0;
  for (const auto& f : futures::as_completed(fs, 0s)) {
    CHECK(f.done());
    ++count;
  }
  CHECK(count == 2);
}

TEST_CASE("as_completed collapses duplicates") {
  auto fs = make_futures(2);
  std::vector<ThreadFuture<int>> given{fs[0], fs[1], fs[0], fs[0]};
  std::thread producer([&] {
    fs[1].set_result(1);
    fs[0].set_result(0);
  });
  auto completed = futures::as_completed(given);
  CHECK(completed.size() == 2);
  std::vector<int> values;
  for (const auto& f : completed) values.push_back(f.result());
  producer.join();
  CHECK(values.size() == 2);
  CHECK(std::ranges::count(values, 0) == 1);
  CHECK(std::ranges::count(values, 1) == 1);
}

TEST_CASE("as_completed of no futures yields nothing, even with a zero timeout") {
  int count = 0;
  for (const auto& f : futures::as_completed(std::vector<ThreadFuture<int>>{}, 0s)) {
    (void)f;
    ++count;
  }
  CHECK(count == 0);
}

TEST_CASE("as_completed stops watching the futures when it is destroyed early") {
  auto fs = make_futures(3);
  fs[0].set_result(0);
  {
    auto completed = futures::as_completed(fs);
    auto it = completed.begin();
    CHECK(*it == fs[0]);
  }
  // The futures must not reach the destroyed queue (ASan would say so).
  std::thread producer([&] {
    fs[1].set_result(1);
    fs[2].cancel();
  });
  producer.join();
  CHECK(futures::wait(fs, 0s).not_done.empty());
}

TEST_CASE("futures::wait and as_completed over futures completed by many threads") {
  constexpr std::size_t producers = 8;
  constexpr std::size_t per_thread = 1'000;
  std::vector<ThreadFuture<int>> fs(producers * per_thread);
  // Keyed by future, as Python code keys a dict by future (std::hash).
  std::unordered_map<ThreadFuture<int>, std::size_t> index_of;
  for (std::size_t i = 0; i < fs.size(); ++i) index_of.emplace(fs[i], i);
  auto completed = futures::as_completed(fs, 120s);
  std::latch go{producers + 1};
  std::vector<std::thread> threads;
  threads.reserve(producers);
  for (std::size_t p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      go.arrive_and_wait();
      for (std::size_t i = p; i < fs.size(); i += producers) {
        if (i % 5 == 0) {
          fs[i].cancel();
        } else {
          fs[i].set_result(static_cast<int>(i));
        }
      }
    });
  }
  std::vector<char> seen(fs.size(), 0);
  std::thread waiter([&] {
    go.arrive_and_wait();
    auto all = futures::wait(fs, 120s);
    CHECK(all.not_done.empty());
  });
  int yielded = 0;
  int duplicates = 0;
  for (const auto& f : completed) {
    const std::size_t index = index_of.at(f);
    if (seen[index] != 0) ++duplicates;
    seen[index] = 1;
    ++yielded;
  }
  for (auto& t : threads) t.join();
  waiter.join();
  CHECK(yielded == static_cast<int>(fs.size()));
  CHECK(duplicates == 0);
}

TEST_CASE("several threads can wait on the same futures at once") {
  constexpr int waiters = 6;
  constexpr std::size_t count = 200;
  std::vector<ThreadFuture<int>> fs(count);
  std::latch started{waiters};
  std::atomic<int> satisfied{0};
  std::vector<std::thread> threads;
  threads.reserve(waiters);
  for (int w = 0; w < waiters; ++w) {
    threads.emplace_back([&, w] {
      started.count_down();
      if (w % 3 == 0) {
        if (futures::wait(fs, 60s).not_done.empty()) ++satisfied;
      } else if (w % 3 == 1) {
        if (!futures::wait(fs, 60s, ReturnWhen::first_completed).done.empty()) ++satisfied;
      } else {
        std::size_t n = 0;
        for (const auto& f : futures::as_completed(fs, 60s)) n += f.done() ? 1 : 0;
        if (n == count) ++satisfied;
      }
    });
  }
  started.wait();
  for (std::size_t i = 0; i < count; ++i) fs[i].set_result(static_cast<int>(i));
  for (auto& t : threads) t.join();
  CHECK(satisfied == waiters);
}

TEST_SUITE_END();
