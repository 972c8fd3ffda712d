#include <doctest/doctest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <uvaio/thread_future.hpp>

#include "support.hpp"

using namespace std::chrono_literals;
using test_support::Counted;
using test_support::LogCapture;
using uvaio::ThreadFuture;

TEST_SUITE_BEGIN("thread_future");

namespace {

// Thrown to check that exceptions not derived from std::exception arrive intact.
struct Oops {
  int code;
};

// A std::exception with more than what(): slicing would lose `detail`.
struct DetailedError : std::runtime_error {
  DetailedError(const std::string& what, int d) : std::runtime_error(what), detail(d) {}
  int detail;
};

// Neither copyable nor movable: it can only be built in place.
struct Pinned {
  explicit Pinned(int a, int b) : sum(a + b) {}
  Pinned(const Pinned&) = delete;
  Pinned& operator=(const Pinned&) = delete;
  int sum;
};

std::chrono::steady_clock::duration elapsed_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::steady_clock::now() - start;
}

}  // namespace

// --- state machine (item 40) --------------------------------------------------------

TEST_CASE("a new thread future is pending: not done, not running, not cancelled") {
  ThreadFuture<int> f;
  CHECK_FALSE(f.done());
  CHECK_FALSE(f.running());
  CHECK_FALSE(f.cancelled());
  CHECK_FALSE(f.wait(0s));
}

TEST_CASE("set_running_or_notify_cancel moves a pending future to running, and only once") {
  ThreadFuture<int> f;
  CHECK(f.set_running_or_notify_cancel());
  CHECK(f.running());
  CHECK_FALSE(f.done());
  CHECK_THROWS_AS(f.set_running_or_notify_cancel(), uvaio::InvalidStateError);
  f.set_result(1);
  CHECK_FALSE(f.running());
  CHECK(f.done());
  CHECK_THROWS_AS(f.set_running_or_notify_cancel(), uvaio::InvalidStateError);
}

TEST_CASE(
    "cancelling a pending future makes it cancelled and done, and cancelling again still returns "
    "true") {
  ThreadFuture<int> f;
  CHECK(f.cancel());
  CHECK(f.cancelled());
  CHECK(f.done());
  CHECK_FALSE(f.running());
  CHECK(f.cancel());
  CHECK(f.wait(0s));
}

TEST_CASE("cancelling before the work starts makes set_running_or_notify_cancel return false") {
  ThreadFuture<int> f;
  REQUIRE(f.cancel());
  CHECK_FALSE(f.set_running_or_notify_cancel());
  CHECK(f.cancelled());
}

TEST_CASE("cancelling a running future returns false, and the work still finishes") {
  ThreadFuture<int> f;
  std::latch started{1};
  std::promise<void> cancel_tried;
  std::thread worker([&] {
    REQUIRE(f.set_running_or_notify_cancel());
    started.count_down();
    cancel_tried.get_future().wait();
    f.set_result(7);
  });
  started.wait();
  CHECK_FALSE(f.cancel());
  CHECK(f.running());
  cancel_tried.set_value();
  CHECK(f.result(30s) == 7);
  worker.join();
  CHECK_FALSE(f.cancelled());
}

TEST_CASE("cancelling a finished future returns false and keeps its result") {
  ThreadFuture<int> f;
  f.set_result(3);
  CHECK_FALSE(f.cancel());
  CHECK_FALSE(f.cancelled());
  CHECK(f.result() == 3);

  ThreadFuture<int> failed;
  failed.set_exception(std::runtime_error("no"));
  CHECK_FALSE(failed.cancel());
  CHECK_THROWS_AS(failed.result(), std::runtime_error);
}

TEST_CASE("result() and exception() of a cancelled future throw CancelledError") {
  ThreadFuture<int> f;
  f.cancel();
  CHECK_THROWS_AS(f.result(), uvaio::CancelledError);
  CHECK_THROWS_AS(f.result(1s), uvaio::CancelledError);
  CHECK_THROWS_AS(f.exception(), uvaio::CancelledError);
  CHECK_THROWS_AS(f.take_result(), uvaio::CancelledError);
}

TEST_CASE("a second set_result or set_exception throws InvalidStateError and changes nothing") {
  ThreadFuture<int> f;
  f.set_result(1);
  CHECK_THROWS_AS(f.set_result(2), uvaio::InvalidStateError);
  CHECK_THROWS_AS(f.set_exception(std::runtime_error("late")), uvaio::InvalidStateError);
  CHECK_THROWS_WITH(f.set_result(2), doctest::Contains("FINISHED"));
  CHECK(f.result() == 1);

  ThreadFuture<int> g;
  g.set_exception(std::runtime_error("first"));
  CHECK_THROWS_AS(g.set_exception(std::runtime_error("second")), uvaio::InvalidStateError);
  CHECK_THROWS_AS(g.set_result(1), uvaio::InvalidStateError);
  CHECK_THROWS_WITH(g.result(), "first");
}

TEST_CASE("setting a cancelled future throws InvalidStateError") {
  ThreadFuture<int> f;
  f.cancel();
  CHECK_THROWS_AS(f.set_result(1), uvaio::InvalidStateError);
  CHECK_THROWS_WITH(f.set_result(1), doctest::Contains("CANCELLED"));
  CHECK_THROWS_AS(f.set_exception(std::runtime_error("x")), uvaio::InvalidStateError);
  CHECK(f.cancelled());
}

TEST_CASE("set_result is legal from pending and from running") {
  ThreadFuture<int> pending;
  pending.set_result(1);
  CHECK(pending.result() == 1);

  ThreadFuture<int> running;
  REQUIRE(running.set_running_or_notify_cancel());
  running.set_result(2);
  CHECK(running.result() == 2);
}

TEST_CASE("set_exception refuses an empty exception_ptr") {
  ThreadFuture<int> f;
  CHECK_THROWS_AS(f.set_exception(std::exception_ptr()), uvaio::ValueError);
  CHECK_FALSE(f.done());
}

// --- results, exceptions, timeouts ---------------------------------------------------

TEST_CASE(
    "result() with a timeout throws TimeoutError while pending, then returns the value once set") {
  ThreadFuture<std::string> f;
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(f.result(20ms), uvaio::TimeoutError);
  CHECK(elapsed_since(start) >= 20ms);
  CHECK_THROWS_AS(f.result(0s), uvaio::TimeoutError);
  CHECK_THROWS_AS(f.result(-1s), uvaio::TimeoutError);

  std::thread producer([&] { f.set_result("late"); });
  CHECK(f.result(30s) == "late");
  producer.join();
}

TEST_CASE("exception() and wait() with a timeout report a pending future after waiting that long") {
  ThreadFuture<int> f;
  auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(f.exception(20ms), uvaio::TimeoutError);
  CHECK(elapsed_since(start) >= 20ms);
  start = std::chrono::steady_clock::now();
  CHECK_FALSE(f.wait(20ms));
  CHECK(elapsed_since(start) >= 20ms);
  f.set_result(1);
  CHECK(f.wait(0s));
  CHECK(f.wait());
  CHECK(f.exception(0s) == nullptr);
}

TEST_CASE("result() blocks until another thread sets the value") {
  ThreadFuture<int> f;
  std::latch consumer_started{1};
  std::atomic<int> seen{0};
  std::thread consumer([&] {
    consumer_started.count_down();
    seen = f.result();
  });
  consumer_started.wait();
  f.set_result(42);
  consumer.join();
  CHECK(seen == 42);
}

TEST_CASE("a stored std::exception is rethrown intact, and exception() returns it") {
  ThreadFuture<int> f;
  std::thread producer([&] { f.set_exception(DetailedError("bad input", 17)); });
  producer.join();
  try {
    (void)f.result();
    FAIL("result() did not throw");
  } catch (const DetailedError& e) {
    CHECK(std::string(e.what()) == "bad input");
    CHECK(e.detail == 17);
  }
  std::exception_ptr error = f.exception();
  REQUIRE(error != nullptr);
  CHECK_THROWS_AS(std::rethrow_exception(error), DetailedError);
  CHECK(f.done());
  CHECK_FALSE(f.cancelled());
}

TEST_CASE("an exception of a type not derived from std::exception is rethrown intact") {
  ThreadFuture<void> f;
  f.set_exception(Oops{99});
  try {
    f.result();
    FAIL("result() did not throw");
  } catch (const Oops& e) {
    CHECK(e.code == 99);
  }
  CHECK_THROWS_AS(std::rethrow_exception(f.exception()), Oops);
}

TEST_CASE("exception() is null when the future finished with a value") {
  ThreadFuture<int> f;
  f.set_result(0);
  CHECK(f.exception() == nullptr);
  CHECK(f.exception(0s) == nullptr);
}

TEST_CASE(
    "result() returns a reference to the one stored value, the same on every thread and copy") {
  ThreadFuture<std::vector<int>> f;
  f.set_result(std::vector<int>{1, 2, 3});
  const std::vector<int>* here = &f.result();
  const std::vector<int>* there = nullptr;
  std::thread reader([&, copy = f] { there = &copy.result(); });
  reader.join();
  CHECK(here == there);

  // The reference stays valid while any handle lives.
  std::optional<ThreadFuture<std::vector<int>>> last = f;
  f = ThreadFuture<std::vector<int>>();
  CHECK(&last->result() == here);
  CHECK(last->result() == std::vector<int>{1, 2, 3});
}

TEST_CASE("a void future finishes without a value") {
  ThreadFuture<> f;
  static_assert(std::is_void_v<decltype(f.result())>);
  std::thread producer([&] {
    REQUIRE(f.set_running_or_notify_cancel());
    f.set_result();
  });
  f.result(30s);
  producer.join();
  CHECK(f.done());
  CHECK(f.exception() == nullptr);
  f.take_result();
  CHECK_THROWS_AS(f.set_result(), uvaio::InvalidStateError);
}

TEST_CASE("a move-only result is read by reference and moved out by take_result") {
  ThreadFuture<std::unique_ptr<int>> f;
  f.set_result(std::make_unique<int>(5));
  REQUIRE(f.result() != nullptr);
  CHECK(*f.result() == 5);
  std::unique_ptr<int> taken = f.take_result();
  REQUIRE(taken != nullptr);
  CHECK(*taken == 5);
  // Readers after the move see what it left behind.
  CHECK(f.result() == nullptr);
}

TEST_CASE("a value that cannot be moved is built in place from set_result's arguments") {
  ThreadFuture<Pinned> f;
  f.set_result(2, 3);
  CHECK(f.result().sum == 5);
}

TEST_CASE("a large value is stored once, in the shared state") {
  using Big = std::array<unsigned char, 1 << 16>;
  ThreadFuture<Big> f;
  std::thread producer([&] {
    Big big{};
    big.fill(0xAB);
    f.set_result(big);
  });
  producer.join();
  const Big& value = f.result();
  CHECK(value.front() == 0xAB);
  CHECK(value.back() == 0xAB);
}

TEST_CASE("the value is constructed once and destroyed with the last handle") {
  Counted::reset();
  {
    ThreadFuture<Counted> f;
    f.set_result(7);
    CHECK(Counted::constructed == 1);
    {
      // Copying the handle is the point: it must not copy the value.
      const ThreadFuture<Counted> copy = f;  // NOLINT(performance-unnecessary-copy-initialization)
      CHECK(copy.result().value == 7);
      CHECK(Counted::constructed == 1);
    }
    CHECK(Counted::alive() == 1);
  }
  CHECK(Counted::alive() == 0);
  CHECK(Counted::constructed == 1);
}

TEST_CASE("copies are handles to one future; a moved-from handle is empty and refuses to be used") {
  ThreadFuture<int> f;
  ThreadFuture<int> copy = f;
  CHECK(copy == f);
  CHECK_FALSE(ThreadFuture<int>() == f);
  copy.set_result(4);
  CHECK(f.done());
  CHECK(f.result() == 4);

  CHECK(std::hash<ThreadFuture<int>>()(copy) == std::hash<ThreadFuture<int>>()(f));
  ThreadFuture<int> moved = std::move(copy);
  CHECK(moved == f);
  CHECK_THROWS_AS((void)copy.done(), uvaio::RuntimeError);  // NOLINT(bugprone-use-after-move)
  copy = f;
  CHECK(copy.result() == 4);
}

// --- done callbacks --------------------------------------------------------------------

TEST_CASE("done callbacks run on the completing thread, in registration order") {
  ThreadFuture<int> f;
  std::vector<int> order;
  std::vector<std::thread::id> threads;
  for (int i = 0; i < 3; ++i) {
    f.add_done_callback([&, i](const ThreadFuture<int>& done) {
      CHECK(done == f);
      CHECK(done.result() == 10);
      order.push_back(i);
      threads.push_back(std::this_thread::get_id());
    });
  }
  CHECK(order.empty());
  std::thread::id producer_id;
  std::thread producer([&] {
    producer_id = std::this_thread::get_id();
    f.set_result(10);
  });
  producer.join();
  CHECK(order == std::vector<int>{0, 1, 2});
  REQUIRE(threads.size() == 3);
  for (auto id : threads) CHECK(id == producer_id);
}

TEST_CASE("a done callback added after completion runs at once on the adding thread") {
  ThreadFuture<int> f;
  std::thread producer([&] { f.set_result(1); });
  producer.join();
  std::optional<std::thread::id> ran_on;
  f.add_done_callback([&](const ThreadFuture<int>&) { ran_on = std::this_thread::get_id(); });
  REQUIRE(ran_on.has_value());
  CHECK(*ran_on == std::this_thread::get_id());
}

TEST_CASE("cancel runs the done callbacks on the cancelling thread") {
  ThreadFuture<int> f;
  std::optional<std::thread::id> ran_on;
  bool saw_cancelled = false;
  f.add_done_callback([&](const ThreadFuture<int>& done) {
    ran_on = std::this_thread::get_id();
    saw_cancelled = done.cancelled();
  });
  std::thread::id canceller_id;
  std::thread canceller([&] {
    canceller_id = std::this_thread::get_id();
    CHECK(f.cancel());
  });
  canceller.join();
  REQUIRE(ran_on.has_value());
  CHECK(*ran_on == canceller_id);
  CHECK(saw_cancelled);

  // A second cancel() runs nothing again.
  ran_on.reset();
  CHECK(f.cancel());
  CHECK_FALSE(ran_on.has_value());
}

TEST_CASE("set_exception runs the done callbacks too") {
  ThreadFuture<int> f;
  std::exception_ptr seen;
  f.add_done_callback([&](const ThreadFuture<int>& done) { seen = done.exception(); });
  f.set_exception(Oops{3});
  REQUIRE(seen != nullptr);
  CHECK_THROWS_AS(std::rethrow_exception(seen), Oops);
}

TEST_CASE("a throwing done callback is logged and the other callbacks still run") {
  LogCapture log;
  ThreadFuture<int> f;
  std::vector<int> ran;
  f.add_done_callback([&](const ThreadFuture<int>&) { ran.push_back(1); });
  f.add_done_callback([&](const ThreadFuture<int>&) {
    ran.push_back(2);
    throw std::runtime_error("callback boom");
  });
  f.add_done_callback([&](const ThreadFuture<int>&) {
    ran.push_back(3);
    throw Oops{1};
  });
  f.add_done_callback([&](const ThreadFuture<int>&) {
    ran.push_back(4);
    throw uvaio::CancelledError("inside a callback");
  });
  f.add_done_callback([&](const ThreadFuture<int>&) { ran.push_back(5); });
  f.set_result(0);
  CHECK(ran == std::vector<int>{1, 2, 3, 4, 5});
  CHECK(log.count("exception calling callback for ThreadFuture") == 3);
  CHECK(log.contains("callback boom"));
  CHECK(log.contains("Oops"));
  CHECK(log.contains("inside a callback"));
  CHECK(f.result() == 0);
}

TEST_CASE("a throwing done callback added after completion is logged, not thrown") {
  LogCapture log;
  ThreadFuture<int> f;
  f.set_result(1);
  CHECK_NOTHROW(f.add_done_callback(
      [](const ThreadFuture<int>&) { throw std::runtime_error("already done"); }));
  CHECK(log.count("exception calling callback for ThreadFuture") == 1);
  CHECK(log.contains("already done"));
}

TEST_CASE("a thread blocked in result() is released before the done callbacks run") {
  ThreadFuture<int> f;
  std::latch reader_started{1};
  std::promise<int> reader_got;
  std::thread reader([&] {
    reader_started.count_down();
    reader_got.set_value(f.result());
  });
  reader_started.wait();
  // The callback waits for the reader: if callbacks ran before blocked threads
  // were released (or under the future's lock), this would time out.
  std::future<int> got = reader_got.get_future();
  std::future_status status = std::future_status::deferred;
  f.add_done_callback([&](const ThreadFuture<int>&) { status = got.wait_for(30s); });
  f.set_result(8);
  reader.join();
  CHECK(status == std::future_status::ready);
  CHECK(got.get() == 8);
}

TEST_CASE("a done callback may use its future: read it, add another callback, cancel it") {
  ThreadFuture<int> f;
  std::vector<std::string> ran;
  f.add_done_callback([&](const ThreadFuture<int>& done) {
    ran.push_back("first saw " + std::to_string(done.result()));
    CHECK_FALSE(done.cancel());
    done.add_done_callback([&](const ThreadFuture<int>&) { ran.push_back("nested, at once"); });
    ran.push_back("first ends");
  });
  f.add_done_callback([&](const ThreadFuture<int>&) { ran.push_back("second"); });
  f.set_result(6);
  CHECK(ran == std::vector<std::string>{"first saw 6", "nested, at once", "first ends", "second"});
}

TEST_CASE("a done callback may reassign the handle the future was completed through") {
  // The callbacks must get a handle of their own: the producer's handle now
  // names another (pending) future, and nothing else keeps this one alive.
  ThreadFuture<Counted> producer_handle;
  int later_saw = 0;
  producer_handle.add_done_callback(
      [&](const ThreadFuture<Counted>&) { producer_handle = ThreadFuture<Counted>(); });
  producer_handle.add_done_callback(
      [&](const ThreadFuture<Counted>& done) { later_saw = done.result(0s).value; });
  Counted::reset();
  producer_handle.set_result(9);
  CHECK(later_saw == 9);
  CHECK(Counted::alive() == 0);
  CHECK_FALSE(producer_handle.done());
}

TEST_CASE("a move-only callable can be a done callback") {
  ThreadFuture<int> f;
  int seen = 0;
  auto owned = std::make_unique<int>(4);
  f.add_done_callback([&seen, owned = std::move(owned)](const ThreadFuture<int>& done) {
    seen = *owned + done.result();
  });
  f.set_result(1);
  CHECK(seen == 5);
}

TEST_CASE("done callbacks are destroyed once they ran, or with a future that never completes") {
  Counted::reset();
  {
    ThreadFuture<int> f;
    f.add_done_callback([c = Counted(1)](const ThreadFuture<int>&) {});
    CHECK(Counted::alive() == 1);
    f.set_result(1);
    CHECK(Counted::alive() == 0);

    ThreadFuture<int> never;
    never.add_done_callback([c = Counted(2)](const ThreadFuture<int>&) {});
    CHECK(Counted::alive() == 1);
  }
  CHECK(Counted::alive() == 0);
}

// --- many threads ------------------------------------------------------------------------

TEST_CASE("many threads blocked on one future all wake when it completes") {
  constexpr int waiters = 16;
  ThreadFuture<int> f;
  std::latch started{waiters};
  std::atomic<int> woke_with_value{0};
  std::vector<std::thread> threads;
  threads.reserve(waiters);
  for (int i = 0; i < waiters; ++i) {
    threads.emplace_back([&, i] {
      started.count_down();
      // Half block in result(), half in wait(); generous bounds turn a lost
      // wake-up into a failure instead of a hang.
      if (i % 2 == 0) {
        if (f.result(60s) == 11) ++woke_with_value;
      } else {
        if (f.wait(60s) && f.result() == 11) ++woke_with_value;
      }
    });
  }
  started.wait();
  f.set_result(11);
  for (auto& t : threads) t.join();
  CHECK(woke_with_value == waiters);
}

TEST_CASE("many threads blocked on one future all get CancelledError when it is cancelled") {
  constexpr int waiters = 8;
  ThreadFuture<int> f;
  std::latch started{waiters};
  std::atomic<int> cancelled{0};
  std::vector<std::thread> threads;
  threads.reserve(waiters);
  for (int i = 0; i < waiters; ++i) {
    threads.emplace_back([&] {
      started.count_down();
      try {
        (void)f.result(60s);
      } catch (const uvaio::CancelledError&) {
        ++cancelled;
      } catch (...) {
      }
    });
  }
  started.wait();
  CHECK(f.cancel());
  for (auto& t : threads) t.join();
  CHECK(cancelled == waiters);
}

TEST_CASE("stress: 8 producers complete 10,000 futures each while 8 consumers block on them") {
  constexpr int pairs = 8;
  constexpr int per_thread = 10'000;
  // One row per producer; vector(n) makes n distinct futures (vector(n, f)
  // would make n handles to one).
  std::vector<std::vector<ThreadFuture<int>>> futures;
  futures.reserve(pairs);
  for (int p = 0; p < pairs; ++p) futures.emplace_back(per_thread);
  std::atomic<int> callbacks_run{0};
  std::atomic<int> wrong{0};
  std::atomic<int> values{0};
  std::atomic<int> errors{0};
  std::atomic<int> cancellations{0};
  for (auto& row : futures) {
    for (auto& f : row) f.add_done_callback([&](const ThreadFuture<int>&) { ++callbacks_run; });
  }
  std::latch go{std::ptrdiff_t{2} * pairs};
  std::vector<std::thread> threads;
  threads.reserve(std::size_t{2} * pairs);
  for (int p = 0; p < pairs; ++p) {
    threads.emplace_back([&, p] {  // producer: a value, an exception or a cancellation
      go.arrive_and_wait();
      for (int i = 0; i < per_thread; ++i) {
        ThreadFuture<int>& f = futures[p][i];
        switch (i % 3) {
          case 0:
            if (!f.set_running_or_notify_cancel()) ++wrong;
            f.set_result(i);
            break;
          case 1:
            f.set_exception(std::make_exception_ptr(i));
            break;
          default:
            if (!f.cancel()) ++wrong;
            break;
        }
      }
    });
    threads.emplace_back([&, p] {  // consumer: blocks on each in turn
      go.arrive_and_wait();
      for (int i = 0; i < per_thread; ++i) {
        const ThreadFuture<int>& f = futures[p][i];
        try {
          if (f.result(60s) == i) ++values;
        } catch (int e) {
          if (e == i) ++errors;
        } catch (const uvaio::CancelledError&) {
          ++cancellations;
        } catch (...) {
          ++wrong;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(wrong == 0);
  CHECK(values == pairs * ((per_thread + 2) / 3));
  CHECK(errors == pairs * ((per_thread + 1) / 3));
  CHECK(cancellations == pairs * (per_thread / 3));
  CHECK(callbacks_run == pairs * per_thread);
}

TEST_CASE("stress: cancel racing set_running_or_notify_cancel has exactly one winner") {
  constexpr int count = 20'000;
  std::vector<ThreadFuture<int>> futures(count);
  std::vector<char> cancel_won(count, 0);
  std::vector<char> start_won(count, 0);
  std::latch go{2};
  std::thread canceller([&] {
    go.arrive_and_wait();
    for (int i = 0; i < count; ++i) cancel_won[i] = futures[i].cancel() ? 1 : 0;
  });
  std::thread worker([&] {
    go.arrive_and_wait();
    for (int i = 0; i < count; ++i) {
      if (futures[i].set_running_or_notify_cancel()) {
        start_won[i] = 1;
        futures[i].set_result(i);
      }
    }
  });
  canceller.join();
  worker.join();
  int inconsistent = 0;
  for (int i = 0; i < count; ++i) {
    const bool cancelled = futures[i].cancelled();
    if (cancel_won[i] + start_won[i] != 1 || cancelled != (cancel_won[i] == 1)) ++inconsistent;
    if (start_won[i] == 1 && futures[i].result() != i) ++inconsistent;
  }
  CHECK(inconsistent == 0);
}

TEST_SUITE_END();
