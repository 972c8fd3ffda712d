#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "support.hpp"

using test_support::run_one_iteration;

using namespace std::chrono_literals;
using test_support::Counted;

TEST_SUITE_BEGIN("handle");

TEST_CASE("a handle cancelled before its callback runs means the callback never runs") {
  uvaio::Loop loop;
  int runs = 0;
  uvaio::Handle handle = loop.call_soon([&runs] { ++runs; });
  CHECK_FALSE(handle.cancelled());
  handle.cancel();
  CHECK(handle.cancelled());
  CHECK_NOTHROW(handle.cancel());
  CHECK(handle.cancelled());
  run_one_iteration(loop);
  run_one_iteration(loop);
  CHECK(runs == 0);
  CHECK(handle.cancelled());
}

TEST_CASE("a handle whose callback ran is not cancelled, and cancelling it afterwards changes nothing") {
  uvaio::Loop loop;
  int runs = 0;
  uvaio::Handle handle = loop.call_soon([&runs] { ++runs; });
  run_one_iteration(loop);
  CHECK(runs == 1);
  CHECK_FALSE(handle.cancelled());
  CHECK_NOTHROW(handle.cancel());
  run_one_iteration(loop);
  CHECK(runs == 1);
}

TEST_CASE("a call_soon_threadsafe handle cancelled from another thread before the callback starts never runs") {
  uvaio::Loop loop;
  bool ran = false;
  bool cancelled_seen_by_other_thread = false;
  loop.call_soon([&] {
    // The loop is running, and blocked here until the other thread is done.
    std::thread other([&loop, &ran, &cancelled_seen_by_other_thread] {
      uvaio::Handle handle = loop.call_soon_threadsafe([&ran] { ran = true; });
      handle.cancel();
      cancelled_seen_by_other_thread = handle.cancelled();
    });
    other.join();
  });
  run_one_iteration(loop);
  run_one_iteration(loop);
  CHECK(cancelled_seen_by_other_thread);
  CHECK_FALSE(ran);
}

TEST_CASE("a call_soon_threadsafe handle cancelled from another thread while it runs waits for the callback to return") {
  uvaio::Loop loop;
  std::latch callback_running(1);
  std::atomic<bool> cancel_coming{false};
  std::atomic<bool> callback_returned{false};
  std::atomic<bool> returned_before_cancel_ended{false};
  std::atomic<bool> cancelled_after{true};

  uvaio::Handle handle = loop.call_soon_threadsafe([&] {
    callback_running.count_down();
    while (!cancel_coming.load()) std::this_thread::yield();
    // Give cancel() time to start waiting; the checks below hold either way.
    std::this_thread::sleep_for(20ms);
    loop.stop();
    callback_returned.store(true);
  });
  std::thread canceller([&, handle] {
    callback_running.wait();
    cancel_coming.store(true);
    handle.cancel();
    returned_before_cancel_ended.store(callback_returned.load());
    cancelled_after.store(handle.cancelled());
  });
  loop.run_forever();
  canceller.join();
  CHECK(callback_returned.load());
  CHECK(returned_before_cancel_ended.load());
  CHECK_FALSE(cancelled_after.load());
  CHECK_FALSE(handle.cancelled());
}

TEST_CASE("cancelled() from another thread while the callback runs waits for it to return and reports false") {
  uvaio::Loop loop;
  std::latch callback_running(1);
  std::atomic<bool> check_coming{false};
  std::atomic<bool> callback_returned{false};
  std::atomic<bool> returned_before_check_ended{false};
  std::atomic<bool> reported_cancelled{true};

  uvaio::Handle handle = loop.call_soon_threadsafe([&] {
    callback_running.count_down();
    while (!check_coming.load()) std::this_thread::yield();
    std::this_thread::sleep_for(20ms);
    loop.stop();
    callback_returned.store(true);
  });
  std::thread checker([&, handle] {
    callback_running.wait();
    check_coming.store(true);
    const bool cancelled = handle.cancelled();
    returned_before_check_ended.store(callback_returned.load());
    reported_cancelled.store(cancelled);
  });
  loop.run_forever();
  checker.join();
  CHECK(returned_before_check_ended.load());
  CHECK_FALSE(reported_cancelled.load());
}

TEST_CASE("a callback cancelling its own handle does not deadlock and the handle is then cancelled") {
  uvaio::Loop loop;
  SUBCASE("call_soon") {
    uvaio::Handle handle;
    bool cancelled_inside = false;
    int runs = 0;
    handle = loop.call_soon([&] {
      ++runs;
      handle.cancel();
      cancelled_inside = handle.cancelled();
    });
    run_one_iteration(loop);
    CHECK(runs == 1);
    CHECK(cancelled_inside);
    CHECK(handle.cancelled());
  }
  SUBCASE("call_soon_threadsafe") {
    uvaio::Handle handle;
    bool cancelled_inside = false;
    int runs = 0;
    handle = loop.call_soon_threadsafe([&] {
      ++runs;
      handle.cancel();
      cancelled_inside = handle.cancelled();
    });
    run_one_iteration(loop);
    CHECK(runs == 1);
    CHECK(cancelled_inside);
    CHECK(handle.cancelled());
  }
}

TEST_CASE("copies of a handle share one callback") {
  static_assert(std::is_copy_constructible_v<uvaio::Handle>);
  static_assert(std::is_copy_assignable_v<uvaio::Handle>);
  uvaio::Loop loop;
  Counted::reset();
  int runs = 0;
  {
    uvaio::Handle original = loop.call_soon([&runs, c = Counted(1)] { runs += c.value; });
    CHECK(Counted::alive() == 1);
    uvaio::Handle copy = original;
    uvaio::Handle assigned;
    assigned = copy;
    uvaio::Handle moved = std::move(assigned);
    CHECK(Counted::alive() == 1);  // the callable itself was not copied
    CHECK_FALSE(static_cast<bool>(assigned));  // NOLINT(bugprone-use-after-move)
    copy.cancel();
    CHECK(original.cancelled());
    CHECK(moved.cancelled());
  }
  run_one_iteration(loop);
  CHECK(runs == 0);
  CHECK(Counted::alive() == 0);
}

TEST_CASE("an empty handle throws RuntimeError on cancel() and cancelled()") {
  uvaio::Handle empty;
  CHECK_FALSE(static_cast<bool>(empty));
  CHECK_THROWS_AS(empty.cancel(), uvaio::RuntimeError);
  CHECK_THROWS_WITH(empty.cancel(), "operation on an empty Handle handle");
  CHECK_THROWS_AS(empty.cancelled(), uvaio::RuntimeError);

  uvaio::TimerHandle empty_timer;
  CHECK_THROWS_AS(empty_timer.cancel(), uvaio::RuntimeError);
  CHECK_THROWS_AS(empty_timer.when(), uvaio::RuntimeError);
}

TEST_CASE("a timer handle cancelled before it is due never runs, and copies share it") {
  uvaio::Loop loop;
  bool ran = false;
  uvaio::TimerHandle timer = loop.call_later(5ms, [&ran] { ran = true; });
  uvaio::TimerHandle copy = timer;
  CHECK(copy.when() == timer.when());
  copy.cancel();
  CHECK(timer.cancelled());
  CHECK_NOTHROW(timer.cancel());
  (void)loop.call_later(20ms, [&loop] { loop.stop(); });
  loop.run_forever();
  CHECK_FALSE(ran);
}

TEST_SUITE_END();
