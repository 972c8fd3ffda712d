#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "counting_new.hpp"  // this binary counts allocations ("waiting allocates nothing")
#include "support.hpp"
using test_support::settle;

using test_support::run_one_iteration;

using namespace std::chrono_literals;
using test_support::Counted;
using test_support::HandlerCapture;

namespace {

using Log = std::vector<std::string>;
using IntQueue = uvaio::Queue<int>;

std::string joined(const Log& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : " ") + item;
  return text;
}

template <class T>
std::string cancelled_message(const uvaio::Task<T>& task) {
  try {
    task.result();
  } catch (const uvaio::CancelledError& e) {
    return e.message();
  } catch (...) {
    return "<another exception>";
  }
  return "<no exception>";
}

template <class Queue>
uvaio::Async<void> get_and_log(Queue* queue, Log* log, std::string name) {
  int value = co_await queue->get();
  log->push_back(name + "=" + std::to_string(value));
}

uvaio::Async<void> put_and_log(IntQueue* queue, int value, Log* log) {
  co_await queue->put(value);
  log->push_back("put " + std::to_string(value));
}

// What get() threw, or the value it returned.
uvaio::Async<std::string> get_outcome(IntQueue* queue) {
  try {
    int value = co_await queue->get();
    co_return std::to_string(value);
  } catch (const uvaio::QueueShutDown&) {
    co_return "QueueShutDown";
  }
}

uvaio::Async<std::string> put_outcome(IntQueue* queue, int value) {
  try {
    co_await queue->put(value);
    co_return "put";
  } catch (const uvaio::QueueShutDown&) {
    co_return "QueueShutDown";
  }
}

TEST_SUITE_BEGIN("queue");

// --- non-blocking use ---------------------------------------------------------------

TEST_CASE(
    "a new Queue is empty, not full, and has the maxsize it was given; maxsize 0 is unbounded") {
  IntQueue unbounded;
  CHECK(unbounded.maxsize() == 0);
  CHECK(unbounded.empty());
  for (int i = 0; i < 100; ++i) unbounded.put_nowait(i);
  CHECK(unbounded.qsize() == 100);
  CHECK_FALSE(unbounded.full());

  IntQueue bounded(2);
  CHECK(bounded.maxsize() == 2);
  CHECK(bounded.empty());
  CHECK_FALSE(bounded.full());
  bounded.put_nowait(1);
  CHECK_FALSE(bounded.empty());
  CHECK_FALSE(bounded.full());
  bounded.put_nowait(2);
  CHECK(bounded.full());
  CHECK(bounded.qsize() == 2);
}

TEST_CASE("put_nowait and get_nowait keep FIFO order; QueueEmpty when empty, QueueFull when full") {
  IntQueue queue(3);
  CHECK_THROWS_AS(queue.get_nowait(), uvaio::QueueEmpty);
  queue.put_nowait(1);
  queue.put_nowait(3);
  queue.put_nowait(2);
  CHECK_THROWS_AS(queue.put_nowait(4), uvaio::QueueFull);
  CHECK(queue.get_nowait() == 1);
  CHECK(queue.get_nowait() == 3);
  CHECK(queue.get_nowait() == 2);
  CHECK_THROWS_AS(queue.get_nowait(), uvaio::QueueEmpty);
}

TEST_CASE("a LifoQueue hands out the last item put first") {
  uvaio::LifoQueue<int> queue;
  for (int i : {1, 2, 3}) queue.put_nowait(i);
  CHECK(queue.get_nowait() == 3);
  queue.put_nowait(4);
  CHECK(queue.get_nowait() == 4);
  CHECK(queue.get_nowait() == 2);
  CHECK(queue.get_nowait() == 1);
}

struct ByPriority {
  bool operator()(const std::pair<int, std::string>& a,
                  const std::pair<int, std::string>& b) const {
    return a.first < b.first;
  }
};

TEST_CASE(
    "a PriorityQueue hands out the lowest item first, and equal ones in the order they were put") {
  uvaio::PriorityQueue<int> numbers;
  for (int i : {5, 1, 4, 2, 3}) numbers.put_nowait(i);
  std::vector<int> out;
  while (!numbers.empty()) out.push_back(numbers.get_nowait());
  CHECK(out == std::vector<int>{1, 2, 3, 4, 5});

  uvaio::PriorityQueue<std::pair<int, std::string>, ByPriority> jobs;
  jobs.put_nowait({2, "b1"});
  jobs.put_nowait({1, "a1"});
  jobs.put_nowait({2, "b2"});
  jobs.put_nowait({1, "a2"});
  jobs.put_nowait({2, "b3"});
  Log names;
  while (!jobs.empty()) names.push_back(jobs.get_nowait().second);
  CHECK(joined(names) == "a1 a2 b1 b2 b3");
}

TEST_CASE("a Queue of move-only items; a refused put_nowait leaves its argument alone") {
  uvaio::Queue<std::unique_ptr<int>> queue(1);
  auto first = std::make_unique<int>(1);
  queue.put_nowait(std::move(first));
  CHECK(first == nullptr);  // NOLINT(bugprone-use-after-move)
  auto second = std::make_unique<int>(2);
  CHECK_THROWS_AS(queue.put_nowait(std::move(second)), uvaio::QueueFull);
  REQUIRE(second != nullptr);  // NOLINT(bugprone-use-after-move)
  CHECK(*second == 2);
  std::unique_ptr<int> out = queue.get_nowait();
  CHECK(*out == 1);
}

uvaio::Async<void> move_only_through(uvaio::Queue<std::unique_ptr<int>>* queue,
                                     std::vector<int>* out) {
  auto consumer = [](uvaio::Queue<std::unique_ptr<int>>* q,
                     std::vector<int>* o) -> uvaio::Async<void> {
    for (int i = 0; i < 3; ++i) {
      std::unique_ptr<int> item = co_await q->get();
      o->push_back(*item);
    }
  };
  auto task = uvaio::create_task(consumer(queue, out));
  for (int i = 1; i <= 3; ++i) {
    auto item = std::make_unique<int>(i * 10);
    co_await queue->put(std::move(item));
  }
  co_await task;
}

TEST_CASE("move-only items go through blocking put and get") {
  uvaio::Queue<std::unique_ptr<int>> queue(1);
  std::vector<int> out;
  uvaio::run(move_only_through(&queue, &out));
  CHECK(out == std::vector<int>{10, 20, 30});
}

uvaio::Async<void> failed_puts_keep_their_item(uvaio::Queue<std::unique_ptr<int>>* queue,
                                               Log* log) {
  auto blocked = [](uvaio::Queue<std::unique_ptr<int>>* q, Log* l) -> uvaio::Async<void> {
    auto item = std::make_unique<int>(2);
    try {
      co_await q->put(std::move(item));
    } catch (const uvaio::CancelledError&) {
      l->push_back(item ? "cancelled, still holding " + std::to_string(*item)
                        : "cancelled, item lost");
      throw;
    }
  };
  auto first = std::make_unique<int>(1);
  queue->put_nowait(std::move(first));
  auto putter = uvaio::create_task(blocked(queue, log));
  co_await uvaio::sleep(0s);
  putter.cancel();
  co_await uvaio::sleep(0s);
  CHECK(putter.cancelled());
  queue->shutdown();
  auto refused = std::make_unique<int>(3);
  try {
    co_await queue->put(std::move(refused));
  } catch (const uvaio::QueueShutDown&) {
    log->push_back(refused ? "shut down, still holding " + std::to_string(*refused)
                           : "shut down, item lost");
  }
}

TEST_CASE("a put that ends in CancelledError or QueueShutDown leaves the item with the caller") {
  uvaio::Queue<std::unique_ptr<int>> queue(1);
  Log log;
  uvaio::run(failed_puts_keep_their_item(&queue, &log));
  CHECK(joined(log) == "cancelled, still holding 2 shut down, still holding 3");
  CHECK(queue.qsize() == 1);
}

// --- blocking get and put -----------------------------------------------------------

uvaio::Async<void> blocking_get(IntQueue* queue, Log* log) {
  auto getter = uvaio::create_task(get_and_log(queue, log, "getter"));
  co_await uvaio::sleep(0s);
  CHECK_FALSE(getter.done());
  queue->put_nowait(7);
  // Straight to the waiting getter: no longer in the queue.
  CHECK(queue->empty());
  co_await uvaio::sleep(0s);
  CHECK(joined(*log) == "getter=7");
}

TEST_CASE("get waits while the Queue is empty and resumes with the next item put") {
  IntQueue queue;
  Log log;
  uvaio::run(blocking_get(&queue, &log));
}

uvaio::Async<void> blocking_put(IntQueue* queue, Log* log) {
  queue->put_nowait(1);
  auto putter = uvaio::create_task(put_and_log(queue, 2, log));
  co_await uvaio::sleep(0s);
  CHECK_FALSE(putter.done());
  CHECK(queue->full());
  CHECK(queue->get_nowait() == 1);
  // The free slot is promised to the waiting putter: nobody jumps the queue.
  CHECK(queue->full());
  CHECK_THROWS_AS(queue->put_nowait(3), uvaio::QueueFull);
  co_await uvaio::sleep(0s);
  CHECK(joined(*log) == "put 2");
  CHECK(queue->qsize() == 1);
  CHECK(queue->get_nowait() == 2);
}

TEST_CASE("put waits while the Queue is full and resumes once a get makes room") {
  IntQueue queue(1);
  Log log;
  uvaio::run(blocking_put(&queue, &log));
}

uvaio::Async<void> produce(IntQueue* queue, int count) {
  for (int i = 0; i < count; ++i) co_await queue->put(i);
}

uvaio::Async<void> consume(IntQueue* queue, int count, std::vector<int>* out) {
  for (int i = 0; i < count; ++i) {
    int value = co_await queue->get();
    out->push_back(value);
  }
}

uvaio::Async<void> producer_consumer(IntQueue* queue, std::vector<int>* out) {
  auto consumer = uvaio::create_task(consume(queue, 20, out));
  auto producer = uvaio::create_task(produce(queue, 20));
  co_await producer;
  co_await consumer;
}

TEST_CASE("a producer and a consumer through a Queue of maxsize 1 pass every item, in order") {
  IntQueue queue(1);
  std::vector<int> out;
  uvaio::run(producer_consumer(&queue, &out));
  std::vector<int> expected;
  expected.reserve(20);
  for (int i = 0; i < 20; ++i) expected.push_back(i);
  CHECK(out == expected);
  CHECK(queue.empty());
}

uvaio::Async<void> getters_in_order(IntQueue* queue, Log* log) {
  auto a = uvaio::create_task(get_and_log(queue, log, "a"));
  auto b = uvaio::create_task(get_and_log(queue, log, "b"));
  auto c = uvaio::create_task(get_and_log(queue, log, "c"));
  co_await uvaio::sleep(0s);
  for (int i = 1; i <= 3; ++i) queue->put_nowait(i);
  co_await uvaio::sleep(0s);
  CHECK(joined(*log) == "a=1 b=2 c=3");
}

TEST_CASE("tasks waiting to get from a Queue are served in the order they started waiting") {
  IntQueue queue;
  Log log;
  uvaio::run(getters_in_order(&queue, &log));
}

uvaio::Async<void> putters_in_order(IntQueue* queue, Log* log) {
  queue->put_nowait(0);
  auto p1 = uvaio::create_task(put_and_log(queue, 1, log));
  auto p2 = uvaio::create_task(put_and_log(queue, 2, log));
  auto p3 = uvaio::create_task(put_and_log(queue, 3, log));
  co_await uvaio::sleep(0s);
  std::vector<int> got;
  for (int i = 0; i < 4; ++i) {
    got.push_back(queue->get_nowait());
    // The slot just freed is promised to the next waiting putter.
    if (i < 3) CHECK_THROWS_AS(queue->put_nowait(99), uvaio::QueueFull);
    co_await uvaio::sleep(0s);
  }
  CHECK(got == std::vector<int>{0, 1, 2, 3});
  CHECK(joined(*log) == "put 1 put 2 put 3");
  CHECK(queue->empty());
}

TEST_CASE(
    "tasks waiting to put on a full Queue are served in order, and put_nowait does not jump "
    "ahead") {
  IntQueue queue(1);
  Log log;
  uvaio::run(putters_in_order(&queue, &log));
}

// --- cancellation ---------------------------------------------------------------------

uvaio::Async<void> cancel_waiting_getter(IntQueue* queue, Log* log) {
  auto a = uvaio::create_task(get_and_log(queue, log, "a"));
  auto b = uvaio::create_task(get_and_log(queue, log, "b"));
  co_await uvaio::sleep(0s);
  a.cancel("not needed");
  co_await uvaio::sleep(0s);
  CHECK(a.cancelled());
  CHECK(cancelled_message(a) == "not needed");
  queue->put_nowait(1);
  co_await uvaio::sleep(0s);
  CHECK(joined(*log) == "b=1");
  CHECK(queue->empty());
}

TEST_CASE("cancelling a waiting get leaves the other getters and the items alone") {
  IntQueue queue;
  Log log;
  uvaio::run(cancel_waiting_getter(&queue, &log));
}

uvaio::Async<void> cancel_handed_getter(IntQueue* queue, Log* log) {
  auto a = uvaio::create_task(get_and_log(queue, log, "a"));
  auto b = uvaio::create_task(get_and_log(queue, log, "b"));
  co_await uvaio::sleep(0s);
  queue->put_nowait(1);  // handed to a
  a.cancel();            // a gives it to b
  co_await settle(b);
  CHECK(a.cancelled());
  CHECK(joined(*log) == "b=1");

  // With no other getter waiting, the item goes back to the front.
  auto c = uvaio::create_task(get_and_log(queue, log, "c"));
  co_await uvaio::sleep(0s);
  queue->put_nowait(2);  // handed to c
  queue->put_nowait(3);
  c.cancel();
  CHECK(queue->qsize() == 2);
  CHECK(queue->get_nowait() == 2);
  CHECK(queue->get_nowait() == 3);
  co_await uvaio::sleep(0s);
  CHECK(c.cancelled());
  CHECK(joined(*log) == "b=1");
}

TEST_CASE(
    "a getter handed an item but cancelled before it resumes passes the item on, so none is lost") {
  IntQueue queue;
  Log log;
  uvaio::run(cancel_handed_getter(&queue, &log));
}

uvaio::Async<void> in_transit_counts(IntQueue* queue, Log* log) {
  auto getter = uvaio::create_task(get_and_log(queue, log, "getter"));
  co_await uvaio::sleep(0s);
  queue->put_nowait(1);
  CHECK(queue->qsize() == 0);
  CHECK(queue->full());
  CHECK_THROWS_AS(queue->put_nowait(2), uvaio::QueueFull);
  getter.cancel();  // the item comes back, and still fits
  CHECK(queue->qsize() == 1);
  CHECK(queue->full());
  co_await uvaio::sleep(0s);
  CHECK(getter.cancelled());
  CHECK(queue->get_nowait() == 1);
  CHECK_FALSE(queue->full());
}

TEST_CASE(
    "full() counts an item handed to a getter that has not resumed, so maxsize is never exceeded") {
  IntQueue queue(1);
  Log log;
  uvaio::run(in_transit_counts(&queue, &log));
}

uvaio::Async<void> cancel_promised_putter(IntQueue* queue, Log* log) {
  queue->put_nowait(1);
  auto p2 = uvaio::create_task(put_and_log(queue, 2, log));
  auto p3 = uvaio::create_task(put_and_log(queue, 3, log));
  auto p4 = uvaio::create_task(put_and_log(queue, 4, log));
  co_await uvaio::sleep(0s);
  std::vector<int> got;
  got.push_back(queue->get_nowait());  // the free slot is promised to p2
  p2.cancel();                         // p2 passes it to p3
  co_await uvaio::sleep(0s);
  CHECK(p2.cancelled());
  for (int i = 0; i < 2; ++i) {
    got.push_back(queue->get_nowait());
    co_await uvaio::sleep(0s);
  }
  CHECK(got == std::vector<int>{1, 3, 4});
  CHECK(joined(*log) == "put 3 put 4");
  CHECK(queue->empty());
}

TEST_CASE(
    "a putter promised a slot but cancelled before it resumes passes the slot on, and does not "
    "put") {
  IntQueue queue(1);
  Log log;
  uvaio::run(cancel_promised_putter(&queue, &log));
}

uvaio::Async<void> cancel_waiting_putter(IntQueue* queue, Log* log) {
  queue->put_nowait(1);
  auto putter = uvaio::create_task(put_and_log(queue, 2, log));
  co_await uvaio::sleep(0s);
  putter.cancel();
  co_await uvaio::sleep(0s);
  CHECK(putter.cancelled());
  CHECK(queue->get_nowait() == 1);
  CHECK(queue->empty());
  CHECK_FALSE(queue->full());
  queue->put_nowait(3);
  CHECK(queue->get_nowait() == 3);
  CHECK(log->empty());
}

TEST_CASE("cancelling a waiting put does not put its item") {
  IntQueue queue(1);
  Log log;
  uvaio::run(cancel_waiting_putter(&queue, &log));
}

uvaio::Async<void> get_after_self_cancel(IntQueue* queue, Log* log) {
  uvaio::current_task().cancel("self");
  try {
    int value = co_await queue->get();
    log->push_back(std::to_string(value));
  } catch (const uvaio::CancelledError& e) {
    log->push_back("cancelled: " + e.message());
    throw;
  }
}

TEST_CASE("a task cancelled while it runs has its next get on an empty Queue cancelled at once") {
  IntQueue queue;
  Log log;
  uvaio::Loop loop;
  auto task = loop.create_task(get_after_self_cancel(&queue, &log));
  run_one_iteration(loop);
  CHECK(task.cancelled());
  CHECK(joined(log) == "cancelled: self");
  queue.put_nowait(1);  // nobody is waiting for it
  CHECK(queue.qsize() == 1);
}

// --- task_done and join -----------------------------------------------------------------

uvaio::Async<void> join_and_log(IntQueue* queue, Log* log) {
  co_await queue->join();
  log->push_back("joined");
}

uvaio::Async<void> join_waits(IntQueue* queue, Log* log) {
  for (int i = 0; i < 3; ++i) queue->put_nowait(i);
  auto joiner = uvaio::create_task(join_and_log(queue, log));
  auto second = uvaio::create_task(join_and_log(queue, log));
  co_await uvaio::sleep(0s);
  for (int i = 0; i < 2; ++i) {
    (void)queue->get_nowait();
    queue->task_done();
    co_await uvaio::sleep(0s);
    CHECK_FALSE(joiner.done());
  }
  (void)queue->get_nowait();
  co_await uvaio::sleep(0s);
  CHECK_FALSE(joiner.done());  // gotten, but not done
  queue->task_done();
  co_await uvaio::sleep(0s);
  CHECK(joined(*log) == "joined joined");
  CHECK_THROWS_WITH_AS(queue->task_done(), "task_done() called too many times", uvaio::ValueError);
}

TEST_CASE(
    "join waits until task_done was called for every item put; one task_done too many throws") {
  IntQueue queue;
  Log log;
  CHECK_THROWS_WITH_AS(queue.task_done(), "task_done() called too many times", uvaio::ValueError);
  uvaio::run(join_waits(&queue, &log));
}

uvaio::Async<void> join_at_once(IntQueue* queue, Log* log) {
  uvaio::get_running_loop().call_soon([log] { log->push_back("callback"); });
  co_await queue->join();
  log->push_back("joined");
  co_await uvaio::sleep(0s);
}

TEST_CASE("join on a Queue with nothing unfinished returns at once, without yielding") {
  IntQueue queue;
  Log log;
  uvaio::run(join_at_once(&queue, &log));
  CHECK(joined(log) == "joined callback");
}

// --- shutdown ---------------------------------------------------------------------------

uvaio::Async<void> shutdown_then_drain(IntQueue* queue) {
  queue->put_nowait(1);
  queue->put_nowait(2);
  queue->shutdown();
  CHECK(queue->is_shutdown());
  CHECK_THROWS_AS(queue->put_nowait(3), uvaio::QueueShutDown);
  const std::string put = co_await put_outcome(queue, 3);
  CHECK(put == "QueueShutDown");
  const std::string first = co_await get_outcome(queue);
  CHECK(first == "1");
  CHECK(queue->get_nowait() == 2);
  const std::string after = co_await get_outcome(queue);
  CHECK(after == "QueueShutDown");
  CHECK_THROWS_AS(queue->get_nowait(), uvaio::QueueShutDown);
}

TEST_CASE(
    "after shutdown, put and put_nowait throw QueueShutDown, and get drains what is left before "
    "throwing it") {
  IntQueue queue;
  uvaio::run(shutdown_then_drain(&queue));
}

uvaio::Async<void> shutdown_wakes_waiters(IntQueue* empty, IntQueue* full) {
  full->put_nowait(0);
  auto g1 = uvaio::create_task(get_outcome(empty));
  auto g2 = uvaio::create_task(get_outcome(empty));
  auto p1 = uvaio::create_task(put_outcome(full, 1));
  co_await uvaio::sleep(0s);
  empty->shutdown();
  full->shutdown();
  co_await uvaio::sleep(0s);
  REQUIRE((g1.done() && g2.done() && p1.done()));
  CHECK(g1.result() == "QueueShutDown");
  CHECK(g2.result() == "QueueShutDown");
  CHECK(p1.result() == "QueueShutDown");
  CHECK(full->get_nowait() == 0);  // what was in stays gettable
}

TEST_CASE("shutdown wakes the getters and putters that wait with QueueShutDown") {
  IntQueue empty;
  IntQueue full(1);
  uvaio::run(shutdown_wakes_waiters(&empty, &full));
}

uvaio::Async<void> shutdown_immediately(IntQueue* queue, Log* log) {
  for (int i = 0; i < 3; ++i) queue->put_nowait(i);
  CHECK(queue->get_nowait() == 0);  // taken, task_done not called yet
  auto joiner = uvaio::create_task(join_and_log(queue, log));
  co_await uvaio::sleep(0s);
  queue->shutdown(true);
  CHECK(queue->empty());
  CHECK_THROWS_AS(queue->get_nowait(), uvaio::QueueShutDown);
  const std::string got = co_await get_outcome(queue);
  CHECK(got == "QueueShutDown");
  co_await uvaio::sleep(0s);
  CHECK_FALSE(joiner.done());  // the item taken is still unfinished
  queue->task_done();
  co_await uvaio::sleep(0s);
  CHECK(joined(*log) == "joined");
}

TEST_CASE(
    "shutdown(immediate) drops the items, counts them as done for join, and makes get throw at "
    "once") {
  IntQueue queue;
  Log log;
  uvaio::run(shutdown_immediately(&queue, &log));
}

uvaio::Async<void> handed_then_shutdown(IntQueue* queue, Log* log) {
  auto getter = uvaio::create_task(get_and_log(queue, log, "getter"));
  co_await uvaio::sleep(0s);
  queue->put_nowait(5);
  queue->shutdown(true);
  co_await uvaio::sleep(0s);
  CHECK(joined(*log) == "getter=5");
}

TEST_CASE("an item already handed to a woken getter is still delivered after shutdown(immediate)") {
  IntQueue queue;
  Log log;
  uvaio::run(handed_then_shutdown(&queue, &log));
}

// --- other threads ---------------------------------------------------------------------

uvaio::Async<std::vector<int>> collect(IntQueue* queue, int count) {
  std::vector<int> items;
  items.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    int value = co_await queue->get();
    items.push_back(value);
  }
  co_return items;
}

TEST_CASE(
    "other threads feed a Queue through call_soon_threadsafe, each thread's items in its order") {
  constexpr int threads = 4;
  constexpr int per_thread = 200;
  IntQueue queue;
  uvaio::Loop loop;
  std::vector<std::thread> producers;
  for (int t = 0; t < threads; ++t) {
    producers.emplace_back([&loop, &queue, t] {
      for (int i = 0; i < per_thread; ++i) {
        const int item = t * per_thread + i;
        (void)loop.call_soon_threadsafe([&queue, item] { queue.put_nowait(item); });
      }
    });
  }
  const std::vector<int> items = loop.run_until_complete(collect(&queue, threads * per_thread));
  for (auto& producer : producers) producer.join();
  REQUIRE(items.size() == static_cast<std::size_t>(threads * per_thread));
  std::vector<int> last(threads, -1);
  bool in_order = true;
  for (int item : items) {
    const int t = item / per_thread;
    in_order = in_order && item > last[static_cast<std::size_t>(t)];
    last[static_cast<std::size_t>(t)] = item;
  }
  CHECK(in_order);
  CHECK(queue.empty());
}

// --- lifetimes, loops, destruction --------------------------------------------------

uvaio::Async<void> counted_traffic(uvaio::Queue<Counted>* queue) {
  auto getter = [](uvaio::Queue<Counted>* q) -> uvaio::Async<int> {
    Counted item = co_await q->get();
    co_return item.value;
  };
  auto cancelled = uvaio::create_task(getter(queue));
  auto served = uvaio::create_task(getter(queue));
  co_await uvaio::sleep(0s);
  queue->put_nowait(Counted(1));  // to `cancelled`, which gives it to `served`
  cancelled.cancel();
  co_await settle(served);
  REQUIRE(served.done());
  CHECK(served.result() == 1);
  for (int i = 2; i <= 4; ++i) {
    Counted item(i);
    co_await queue->put(std::move(item));
  }
  CHECK(queue->qsize() == 3);
}

TEST_CASE("every item that goes through a Queue is destroyed exactly once") {
  Counted::reset();
  {
    uvaio::Queue<Counted> queue;
    uvaio::run(counted_traffic(&queue));
    CHECK(Counted::alive() == 3);
    (void)queue.get_nowait();
    CHECK(Counted::alive() == 2);
    queue.shutdown(true);
    CHECK(Counted::alive() == 0);
    CHECK_THROWS_AS(queue.put_nowait(Counted(9)), uvaio::QueueShutDown);
  }
  CHECK(Counted::alive() == 0);
}

TEST_CASE("a getter destroyed after being handed an item (loop closing) gives the item back") {
  IntQueue queue;
  Log log;
  {
    uvaio::Loop loop;
    HandlerCapture reports(loop);
    auto getter = loop.create_task(get_and_log(&queue, &log, "getter"));
    run_one_iteration(loop);
    queue.put_nowait(7);  // handed to the getter, which will never resume
    CHECK(queue.empty());
    loop.close();
  }
  CHECK(log.empty());
  CHECK(queue.qsize() == 1);
  CHECK(queue.get_nowait() == 7);
}

uvaio::Async<void> wait_for_item(IntQueue* queue) {
  Log log;
  auto getter = uvaio::create_task(get_and_log(queue, &log, "getter"));
  co_await uvaio::sleep(0s);
  queue->put_nowait(1);
  co_await getter;
}

TEST_CASE(
    "a Queue binds to the loop of its first waiter: a task of another loop gets RuntimeError") {
  IntQueue queue;
  uvaio::Loop first;
  uvaio::Loop second;
  first.run_until_complete(wait_for_item(&queue));
  CHECK_THROWS_WITH_AS(second.run_until_complete(wait_for_item(&queue)),
                       "Queue is bound to a different event loop", uvaio::RuntimeError);
}

TEST_CASE("destroying a Queue while a task waits on it wakes the task with RuntimeError") {
  auto queue = std::make_unique<IntQueue>();
  Log log;
  uvaio::Loop loop;
  auto getter = loop.create_task(get_and_log(queue.get(), &log, "getter"));
  run_one_iteration(loop);
  REQUIRE_FALSE(getter.done());
  queue.reset();
  CHECK_THROWS_WITH_AS(loop.run_until_complete(getter),
                       "Queue was destroyed while a task waited on it", uvaio::RuntimeError);
}

uvaio::Async<void> get_forever(IntQueue* queue, IntQueue* never, std::vector<int>* out) {
  int value = co_await queue->get();
  out->push_back(value);
  (void)co_await never->get();
}

TEST_CASE(
    "waiting to get from a Queue allocates nothing: an item put meanwhile goes straight to the "
    "getter") {
  IntQueue queue;
  IntQueue never;
  std::vector<int> out;
  out.reserve(4);
  uvaio::Loop loop;
  HandlerCapture reports(loop);  // the task is still pending when the loop closes
  auto task = loop.create_task(get_forever(&queue, &never, &out));
  run_one_iteration(loop);

  const std::size_t before = allocations();
  queue.put_nowait(42);
  for (int i = 0; i < 3; ++i) run_one_iteration(loop);
  const std::size_t after = allocations();

  CHECK(after == before);
  CHECK(out == std::vector<int>{42});
  CHECK_FALSE(task.done());
  loop.close();  // while `reports` still lives
}

TEST_SUITE_END();

}  // namespace
