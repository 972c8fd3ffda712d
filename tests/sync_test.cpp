#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdlib>
#include <exception>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "counting_new.hpp"  // this binary counts allocations ("waiting allocates nothing")
#include "support.hpp"
using test_support::settle;

using test_support::run_one_iteration;

using namespace std::chrono_literals;
using test_support::HandlerCapture;

namespace {

using Log = std::vector<std::string>;

// "a b c" for {"a", "b", "c"}: readable when a CHECK fails.
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

// A coroutine that is not a uvaio task: it starts on the caller's stack.
struct Bare {
  struct promise_type {
    Bare get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
};

template <class Awaitable>
Bare await_outside_a_task(Awaitable* awaitable, std::string* error) {
  try {
    co_await *awaitable;
    *error = "<no exception>";
  } catch (const uvaio::RuntimeError& e) {
    *error = e.what();
  }
}

// --- task bodies shared by the tests ----------------------------------------------

uvaio::Async<void> wait_and_log(uvaio::Event* event, Log* log, std::string name) {
  co_await event->wait();
  log->push_back(name);
}

// Acquires and keeps the lock (or semaphore unit): whoever checks releases it.
template <class Primitive>
uvaio::Async<void> acquire_and_log(Primitive* primitive, Log* log, std::string name) {
  co_await primitive->acquire();
  log->push_back(name);
}

// Acquires, holds across one loop iteration, releases.
template <class Primitive>
uvaio::Async<void> acquire_log_release(Primitive* primitive, Log* log, std::string name) {
  auto guard = co_await primitive->scoped();
  log->push_back(name + " in");
  co_await uvaio::sleep(0s);
  log->push_back(name + " out");
}

template <class Primitive>
uvaio::Async<void> acquire_only(Primitive* primitive) {
  co_await primitive->acquire();
}

uvaio::Async<void> wait_for_notify(uvaio::Condition* condition, Log* log, std::string name) {
  auto guard = co_await condition->scoped();
  co_await condition->wait();
  log->push_back(name + (condition->locked() ? " notified, locked" : " notified, UNLOCKED"));
}

// --- Event ------------------------------------------------------------------------

TEST_SUITE_BEGIN("sync");

uvaio::Async<void> wait_on_set_event(uvaio::Event* event, Log* log) {
  uvaio::get_running_loop().call_soon([log] { log->push_back("callback"); });
  event->set();
  co_await event->wait();
  log->push_back("waited");
  co_await uvaio::sleep(0s);
}

TEST_CASE("Event.wait on a set event returns at once, without yielding to the loop") {
  uvaio::Event event;
  Log log;
  uvaio::run(wait_on_set_event(&event, &log));
  CHECK(joined(log) == "waited callback");
}

uvaio::Async<void> set_wakes_all(uvaio::Event* event, Log* log) {
  auto a = uvaio::create_task(wait_and_log(event, log, "a"));
  auto b = uvaio::create_task(wait_and_log(event, log, "b"));
  auto c = uvaio::create_task(wait_and_log(event, log, "c"));
  co_await uvaio::sleep(0s);
  CHECK(log->empty());
  CHECK_FALSE(event->is_set());
  event->set();
  CHECK(event->is_set());
  co_await uvaio::sleep(0s);
  CHECK(joined(*log) == "a b c");
  CHECK((a.done() && b.done() && c.done()));
}

TEST_CASE("set() wakes every waiting task, in the order they started waiting") {
  uvaio::Event event;
  Log log;
  uvaio::run(set_wakes_all(&event, &log));
}

uvaio::Async<void> clear_with_waiters(uvaio::Event* event, Log* log) {
  auto a = uvaio::create_task(wait_and_log(event, log, "a"));
  co_await uvaio::sleep(0s);
  event->set();
  event->clear();
  CHECK_FALSE(event->is_set());
  co_await uvaio::sleep(0s);
  CHECK(joined(*log) == "a");
  auto b = uvaio::create_task(wait_and_log(event, log, "b"));
  co_await uvaio::sleep(0s);
  CHECK_FALSE(b.done());
  event->set();
  co_await b;
  CHECK(joined(*log) == "a b");
}

TEST_CASE("clear() makes later waits block, while a waiter woken before it still returns") {
  uvaio::Event event;
  Log log;
  uvaio::run(clear_with_waiters(&event, &log));
}

uvaio::Async<void> cancel_event_waiter(uvaio::Event* event, Log* log) {
  auto a = uvaio::create_task(wait_and_log(event, log, "a"));
  auto b = uvaio::create_task(wait_and_log(event, log, "b"));
  auto c = uvaio::create_task(wait_and_log(event, log, "c"));
  co_await uvaio::sleep(0s);
  CHECK(b.cancel("stop b"));
  co_await uvaio::sleep(0s);
  CHECK(b.cancelled());
  CHECK(cancelled_message(b) == "stop b");
  event->set();
  co_await uvaio::sleep(0s);
  CHECK(joined(*log) == "a c");
}

TEST_CASE(
    "cancelling a task that waits on an Event ends it cancelled with the message; the others still "
    "wake") {
  uvaio::Event event;
  Log log;
  uvaio::run(cancel_event_waiter(&event, &log));
}

uvaio::Async<int> wait_catch_then_yield(uvaio::Event* event, Log* log) {
  try {
    co_await event->wait();
  } catch (const uvaio::CancelledError& e) {
    log->push_back("cancelled: " + e.message());
  }
  co_await uvaio::sleep(0s);  // not cancelled again
  log->push_back("went on");
  co_return uvaio::current_task().cancelling();
}

uvaio::Async<void> cancel_twice(uvaio::Event* event, Log* log) {
  auto task = uvaio::create_task(wait_catch_then_yield(event, log));
  co_await uvaio::sleep(0s);
  CHECK(task.cancel("first"));
  CHECK(task.cancel("second"));
  const int cancelling = co_await task;
  CHECK(cancelling == 2);
  CHECK(joined(*log) == "cancelled: first went on");
}

TEST_CASE(
    "two cancel() calls on a task waiting on an Event raise one CancelledError, with the first "
    "message") {
  uvaio::Event event;
  Log log;
  uvaio::run(cancel_twice(&event, &log));
}

uvaio::Async<void> cancel_after_set(uvaio::Event* event, Log* log) {
  auto a = uvaio::create_task(wait_and_log(event, log, "a"));
  co_await uvaio::sleep(0s);
  event->set();
  CHECK(a.cancel("late"));
  co_await uvaio::sleep(0s);
  CHECK(a.cancelled());
  CHECK(cancelled_message(a) == "late");
  CHECK(log->empty());
}

TEST_CASE(
    "a task woken by set() but cancelled before it resumes raises CancelledError, as in asyncio") {
  uvaio::Event event;
  Log log;
  uvaio::run(cancel_after_set(&event, &log));
}

uvaio::Async<void> cancel_self_then_wait(uvaio::Event* event, Log* log) {
  uvaio::get_running_loop().call_soon([log] { log->push_back("callback"); });
  uvaio::current_task().cancel("self");
  try {
    co_await event->wait();
  } catch (const uvaio::CancelledError& e) {
    log->push_back("cancelled: " + e.message());
    throw;
  }
}

TEST_CASE(
    "a task cancelled while it runs has its next Event wait cancelled at once, without "
    "suspending") {
  uvaio::Event event;
  Log log;
  uvaio::Loop loop;
  auto task = loop.create_task(cancel_self_then_wait(&event, &log));
  for (int i = 0; i < 3; ++i) run_one_iteration(loop);
  CHECK(task.cancelled());
  CHECK(cancelled_message(task) == "self");
  CHECK(joined(log) == "cancelled: self callback");
}

TEST_CASE("waiting on an Event or a held Lock outside a task throws RuntimeError") {
  uvaio::Event event;
  std::string error;
  auto wait = event.wait();
  await_outside_a_task(&wait, &error);
  CHECK(error == "Event.wait() must be awaited inside a task");

  uvaio::Lock lock;
  uvaio::run(acquire_only(&lock));
  auto acquire = lock.acquire();
  await_outside_a_task(&acquire, &error);
  CHECK(error == "Lock.acquire() must be awaited inside a task");
}

uvaio::Async<void> wait_then_set(uvaio::Event* event) {
  Log log;
  auto waiter = uvaio::create_task(wait_and_log(event, &log, "waiter"));
  co_await uvaio::sleep(0s);
  event->set();
  co_await waiter;
  event->clear();
}

uvaio::Async<void> wait_on(uvaio::Event* event) {
  co_await event->wait();
}

TEST_CASE(
    "an Event binds to the loop of its first waiter: a task of another loop gets RuntimeError") {
  uvaio::Event event;
  uvaio::Loop first;
  uvaio::Loop second;
  first.run_until_complete(wait_then_set(&event));
  CHECK_THROWS_WITH_AS(second.run_until_complete(wait_then_set(&event)),
                       "Event is bound to a different event loop", uvaio::RuntimeError);
  // The first loop may still use it.
  first.run_until_complete(wait_then_set(&event));
}

TEST_CASE(
    "an Event stays bound to its loop after that loop is gone, as in asyncio (no address reuse "
    "fools it)") {
  uvaio::Event event;
  {
    uvaio::Loop first;
    first.run_until_complete(wait_then_set(&event));
  }
  uvaio::Loop second;  // quite possibly where the first one was
  CHECK_THROWS_WITH_AS(second.run_until_complete(wait_then_set(&event)),
                       "Event is bound to a different event loop", uvaio::RuntimeError);
}

TEST_CASE("destroying an Event while a task waits on it wakes the task with RuntimeError") {
  auto event = std::make_unique<uvaio::Event>();
  uvaio::Loop loop;
  auto task = loop.create_task(wait_on(event.get()));
  run_one_iteration(loop);
  REQUIRE_FALSE(task.done());
  event.reset();
  CHECK_THROWS_WITH_AS(loop.run_until_complete(task),
                       "Event was destroyed while a task waited on it", uvaio::RuntimeError);
}

// --- Lock -------------------------------------------------------------------------

uvaio::Async<void> free_lock(uvaio::Lock* lock, Log* log) {
  uvaio::get_running_loop().call_soon([log] { log->push_back("callback"); });
  CHECK_FALSE(lock->locked());
  co_await lock->acquire();
  log->push_back("acquired");
  CHECK(lock->locked());
  lock->release();
  CHECK_FALSE(lock->locked());
  CHECK_THROWS_WITH_AS(lock->release(), "Lock is not acquired.", uvaio::RuntimeError);
  co_await uvaio::sleep(0s);
}

TEST_CASE(
    "acquire on a free Lock does not suspend; release unlocks it, and releasing again throws") {
  uvaio::Lock lock;
  Log log;
  uvaio::run(free_lock(&lock, &log));
  CHECK(joined(log) == "acquired callback");
}

uvaio::Async<void> lock_fifo(uvaio::Lock* lock, Log* log) {
  co_await lock->acquire();
  auto t1 = uvaio::create_task(acquire_and_log(lock, log, "1"));
  auto t2 = uvaio::create_task(acquire_and_log(lock, log, "2"));
  auto t3 = uvaio::create_task(acquire_and_log(lock, log, "3"));
  co_await uvaio::sleep(0s);
  CHECK(log->empty());
  lock->release();
  co_await uvaio::sleep(0s);
  CHECK(joined(*log) == "1");
  co_await uvaio::sleep(0s);
  CHECK(joined(*log) == "1");
  lock->release();
  co_await uvaio::sleep(0s);
  CHECK(joined(*log) == "1 2");
  lock->release();
  co_await uvaio::sleep(0s);
  CHECK(joined(*log) == "1 2 3");
  CHECK((t1.done() && t2.done() && t3.done()));
  CHECK(lock->locked());
  lock->release();
}

TEST_CASE("three tasks waiting for a Lock get it in the order they asked") {
  uvaio::Lock lock;
  Log log;
  uvaio::run(lock_fifo(&lock, &log));
  CHECK_FALSE(lock.locked());
}

uvaio::Async<void> lock_handed_on(uvaio::Lock* lock, Log* log) {
  co_await lock->acquire();
  auto waiter = uvaio::create_task(acquire_log_release(lock, log, "waiter"));
  co_await uvaio::sleep(0s);
  lock->release();
  // Handed straight to the waiter: nobody can take it before the waiter runs.
  CHECK(lock->locked());
  co_await lock->acquire();
  log->push_back("main");
  lock->release();
}

TEST_CASE("release() hands the Lock to the first waiter, so a task asking again queues behind it") {
  uvaio::Lock lock;
  Log log;
  uvaio::run(lock_handed_on(&lock, &log));
  CHECK(joined(log) == "waiter in waiter out main");
  CHECK_FALSE(lock.locked());
}

uvaio::Async<void> cancel_lock_waiter(uvaio::Lock* lock, Log* log) {
  co_await lock->acquire();
  auto a = uvaio::create_task(acquire_log_release(lock, log, "a"));
  auto b = uvaio::create_task(acquire_log_release(lock, log, "b"));
  auto c = uvaio::create_task(acquire_log_release(lock, log, "c"));
  co_await uvaio::sleep(0s);
  b.cancel();
  co_await uvaio::sleep(0s);
  CHECK(b.cancelled());
  lock->release();
  co_await a;
  co_await c;
  CHECK(joined(*log) == "a in a out c in c out");
}

TEST_CASE("cancelling a waiting acquire leaves the Lock usable and the other waiters in order") {
  uvaio::Lock lock;
  Log log;
  uvaio::run(cancel_lock_waiter(&lock, &log));
  CHECK_FALSE(lock.locked());
}

uvaio::Async<void> cancel_lock_grantee(uvaio::Lock* lock, Log* log) {
  co_await lock->acquire();
  auto b = uvaio::create_task(acquire_and_log(lock, log, "b"));
  auto c = uvaio::create_task(acquire_and_log(lock, log, "c"));
  co_await uvaio::sleep(0s);
  lock->release();  // handed to b, which has not resumed yet
  CHECK(b.cancel("too late"));
  co_await settle(c);
  CHECK(b.cancelled());
  CHECK(cancelled_message(b) == "too late");
  CHECK(joined(*log) == "c");
  CHECK(lock->locked());  // c holds it
}

TEST_CASE(
    "a Lock waiter cancelled after the lock was handed to it, before it resumed, hands the lock "
    "on") {
  uvaio::Lock lock;
  Log log;
  uvaio::run(cancel_lock_grantee(&lock, &log));
  lock.release();
}

uvaio::Async<void> cancel_last_lock_grantee(uvaio::Lock* lock, Log* log) {
  co_await lock->acquire();
  auto b = uvaio::create_task(acquire_and_log(lock, log, "b"));
  co_await uvaio::sleep(0s);
  lock->release();  // handed to b
  CHECK(b.cancel());
  CHECK_FALSE(lock->locked());
  co_await uvaio::sleep(0s);
  CHECK(b.cancelled());
  CHECK(log->empty());
}

TEST_CASE(
    "a Lock handed to a waiter that is cancelled before it resumes is free again when nobody else "
    "waits") {
  uvaio::Lock lock;
  Log log;
  uvaio::run(cancel_last_lock_grantee(&lock, &log));
  CHECK_FALSE(lock.locked());
}

uvaio::Async<void> scoped_lock(uvaio::Lock* lock) {
  {
    uvaio::LockGuard guard = co_await lock->scoped();
    CHECK(guard.owns_lock());
    CHECK(lock->locked());
    uvaio::LockGuard moved = std::move(guard);
    CHECK_FALSE(guard.owns_lock());  // NOLINT(bugprone-use-after-move)
    CHECK(moved.owns_lock());
    CHECK(lock->locked());
  }
  CHECK_FALSE(lock->locked());
  try {
    uvaio::LockGuard guard = co_await lock->scoped();
    throw std::runtime_error("boom");
  } catch (const std::runtime_error&) {
  }
  CHECK_FALSE(lock->locked());
  uvaio::LockGuard guard = co_await lock->scoped();
  guard.release();
  CHECK_FALSE(lock->locked());
  CHECK_FALSE(guard.owns_lock());
  CHECK_THROWS_AS(guard.release(), uvaio::RuntimeError);
}

TEST_CASE(
    "Lock.scoped() gives a move-only guard that releases the lock when it goes, also on an "
    "exception") {
  static_assert(!std::is_copy_constructible_v<uvaio::LockGuard>);
  static_assert(std::is_nothrow_move_constructible_v<uvaio::LockGuard>);
  uvaio::Lock lock;
  uvaio::run(scoped_lock(&lock));
  CHECK_FALSE(lock.locked());
}

uvaio::Async<void> cancel_self_then_acquire(uvaio::Lock* lock, Log* log) {
  uvaio::current_task().cancel("self");
  try {
    co_await lock->acquire();
    log->push_back("acquired");
  } catch (const uvaio::CancelledError& e) {
    log->push_back("cancelled: " + e.message());
    throw;
  }
}

uvaio::Async<void> pending_cancel_on_lock(uvaio::Lock* lock, Log* log) {
  co_await lock->acquire();
  auto task = uvaio::create_task(cancel_self_then_acquire(lock, log));
  co_await uvaio::sleep(0s);
  CHECK(task.cancelled());
  CHECK(joined(*log) == "cancelled: self");
  // It never queued: the release leaves the lock free.
  lock->release();
  CHECK_FALSE(lock->locked());
}

TEST_CASE(
    "a task cancelled while it runs has its next contended acquire cancelled at once, without "
    "queueing") {
  uvaio::Lock lock;
  Log log;
  uvaio::run(pending_cancel_on_lock(&lock, &log));
}

uvaio::Async<void> acquire_swallowing_std_exceptions(uvaio::Lock* lock, Log* log) {
  try {
    co_await lock->acquire();
  } catch (const std::exception&) {
    log->push_back("swallowed");
  }
  log->push_back("went on");
}

uvaio::Async<void> cancel_through_std_exception_handler(uvaio::Lock* lock, Log* log) {
  co_await lock->acquire();
  auto task = uvaio::create_task(acquire_swallowing_std_exceptions(lock, log));
  co_await uvaio::sleep(0s);
  task.cancel();
  co_await uvaio::sleep(0s);
  CHECK(task.cancelled());
  CHECK(log->empty());
  lock->release();
}

TEST_CASE("the CancelledError at a Lock wait is not caught by catch (const std::exception&)") {
  uvaio::Lock lock;
  Log log;
  uvaio::run(cancel_through_std_exception_handler(&lock, &log));
}

TEST_CASE(
    "tasks destroyed while waiting for a Lock (loop closing) leave it, and one it was handed to "
    "passes it on") {
  uvaio::Lock lock;
  Log log;
  {
    uvaio::Loop loop;
    HandlerCapture reports(loop);
    loop.run_until_complete(acquire_only(&lock));
    auto b = loop.create_task(acquire_and_log(&lock, &log, "b"));
    auto c = loop.create_task(acquire_and_log(&lock, &log, "c"));
    run_one_iteration(loop);
    lock.release();  // handed to b, which will never resume
    CHECK(lock.locked());
    loop.close();
    CHECK(reports.contexts.size() == 2);
  }
  CHECK(log.empty());
  CHECK_FALSE(lock.locked());
}

TEST_CASE("destroying a Lock while a task waits for it wakes the task with RuntimeError") {
  auto lock = std::make_unique<uvaio::Lock>();
  Log log;
  uvaio::Loop loop;
  loop.run_until_complete(acquire_only(lock.get()));
  auto task = loop.create_task(acquire_and_log(lock.get(), &log, "waiter"));
  run_one_iteration(loop);
  lock.reset();
  CHECK_THROWS_WITH_AS(loop.run_until_complete(task),
                       "Lock was destroyed while a task waited on it", uvaio::RuntimeError);
  CHECK(log.empty());
}

uvaio::Async<void> contend(uvaio::Lock* lock) {
  co_await lock->acquire();
  Log log;
  auto waiter = uvaio::create_task(acquire_and_log(lock, &log, "waiter"));
  co_await uvaio::sleep(0s);
  lock->release();
  co_await waiter;
  lock->release();
}

TEST_CASE("a Lock waited on in one loop refuses waiters from another loop") {
  uvaio::Lock lock;
  uvaio::Loop first;
  uvaio::Loop second;
  first.run_until_complete(contend(&lock));
  CHECK_THROWS_WITH_AS(second.run_until_complete(contend(&lock)),
                       "Lock is bound to a different event loop", uvaio::RuntimeError);
}

// --- Semaphore --------------------------------------------------------------------

TEST_CASE("a Semaphore with a negative initial value throws ValueError") {
  CHECK_THROWS_WITH_AS(uvaio::Semaphore(-1), "Semaphore initial value must be >= 0",
                       uvaio::ValueError);
  CHECK_THROWS_WITH_AS(uvaio::BoundedSemaphore(-1), "Semaphore initial value must be >= 0",
                       uvaio::ValueError);
}

uvaio::Async<void> semaphore_counts(uvaio::Semaphore* semaphore, Log* log) {
  CHECK_FALSE(semaphore->locked());
  auto t1 = uvaio::create_task(acquire_and_log(semaphore, log, "1"));
  auto t2 = uvaio::create_task(acquire_and_log(semaphore, log, "2"));
  auto t3 = uvaio::create_task(acquire_and_log(semaphore, log, "3"));
  auto t4 = uvaio::create_task(acquire_and_log(semaphore, log, "4"));
  co_await uvaio::sleep(0s);
  CHECK(joined(*log) == "1 2 3");
  CHECK(semaphore->locked());
  CHECK_FALSE(t4.done());
  semaphore->release();
  co_await uvaio::sleep(0s);
  CHECK(joined(*log) == "1 2 3 4");
  CHECK(semaphore->locked());
  for (int i = 0; i < 4; ++i) semaphore->release();
  CHECK_FALSE(semaphore->locked());
}

TEST_CASE("a Semaphore lets `value` tasks in at once and makes the next one wait for a release") {
  uvaio::Semaphore semaphore(3);
  Log log;
  uvaio::run(semaphore_counts(&semaphore, &log));
}

uvaio::Async<void> semaphore_zero(uvaio::Semaphore* semaphore, Log* log) {
  CHECK(semaphore->locked());
  auto task = uvaio::create_task(acquire_and_log(semaphore, log, "acquired"));
  co_await uvaio::sleep(0s);
  CHECK(log->empty());
  semaphore->release();
  co_await uvaio::sleep(0s);
  CHECK(joined(*log) == "acquired");
  CHECK(semaphore->locked());
}

TEST_CASE("Semaphore(0) is locked, and acquire waits until a release") {
  uvaio::Semaphore semaphore(0);
  Log log;
  uvaio::run(semaphore_zero(&semaphore, &log));
}

uvaio::Async<void> semaphore_fifo(uvaio::Semaphore* semaphore, Log* log) {
  co_await semaphore->acquire();
  auto a = uvaio::create_task(acquire_log_release(semaphore, log, "a"));
  co_await uvaio::sleep(0s);
  CHECK(semaphore->locked());
  semaphore->release();  // the unit goes to a, not to the counter
  CHECK(semaphore->locked());
  co_await semaphore->acquire();
  log->push_back("main");
  semaphore->release();
}

TEST_CASE(
    "a Semaphore hands a released unit to the first waiter, so a new acquire queues behind it") {
  uvaio::Semaphore semaphore(1);
  Log log;
  uvaio::run(semaphore_fifo(&semaphore, &log));
  CHECK(joined(log) == "a in a out main");
  CHECK_FALSE(semaphore.locked());
}

uvaio::Async<void> cancel_semaphore_waiter(uvaio::Semaphore* semaphore, Log* log) {
  auto a = uvaio::create_task(acquire_and_log(semaphore, log, "a"));
  auto b = uvaio::create_task(acquire_and_log(semaphore, log, "b"));
  co_await uvaio::sleep(0s);
  a.cancel();
  co_await uvaio::sleep(0s);
  CHECK(a.cancelled());
  semaphore->release();
  co_await uvaio::sleep(0s);
  CHECK(joined(*log) == "b");
  CHECK(semaphore->locked());
}

TEST_CASE("cancelling a waiting Semaphore acquire does not use up a unit") {
  uvaio::Semaphore semaphore(0);
  Log log;
  uvaio::run(cancel_semaphore_waiter(&semaphore, &log));
}

uvaio::Async<void> cancel_semaphore_grantees(uvaio::Semaphore* semaphore, Log* log) {
  auto a = uvaio::create_task(acquire_and_log(semaphore, log, "a"));
  auto b = uvaio::create_task(acquire_and_log(semaphore, log, "b"));
  auto c = uvaio::create_task(acquire_and_log(semaphore, log, "c"));
  co_await uvaio::sleep(0s);
  semaphore->release();  // to a
  a.cancel();            // a's unit goes to b
  b.cancel();            // and b's to c
  co_await settle(c);
  CHECK(a.cancelled());
  CHECK(b.cancelled());
  CHECK(joined(*log) == "c");
  CHECK(semaphore->locked());
  semaphore->release();
  CHECK_FALSE(semaphore->locked());
}

TEST_CASE("Semaphore waiters woken but cancelled before they resume pass their unit on") {
  uvaio::Semaphore semaphore(0);
  Log log;
  uvaio::run(cancel_semaphore_grantees(&semaphore, &log));
}

uvaio::Async<void> bounded(uvaio::BoundedSemaphore* semaphore) {
  co_await semaphore->acquire();
  co_await semaphore->acquire();
  CHECK(semaphore->locked());
  semaphore->release();
  semaphore->release();
  CHECK_THROWS_WITH_AS(semaphore->release(), "BoundedSemaphore released too many times",
                       uvaio::ValueError);
  CHECK_FALSE(semaphore->locked());
}

TEST_CASE("a BoundedSemaphore refuses a release past its initial value; a Semaphore does not") {
  uvaio::BoundedSemaphore semaphore(2);
  CHECK_THROWS_WITH_AS(semaphore.release(), "BoundedSemaphore released too many times",
                       uvaio::ValueError);
  uvaio::run(bounded(&semaphore));

  uvaio::Semaphore unbounded(0);
  unbounded.release();
  unbounded.release();
  CHECK_FALSE(unbounded.locked());
}

uvaio::Async<void> scoped_semaphore(uvaio::Semaphore* semaphore) {
  {
    uvaio::SemaphoreGuard one = co_await semaphore->scoped();
    uvaio::SemaphoreGuard two = co_await semaphore->scoped();
    CHECK(semaphore->locked());
    CHECK((one.owns_lock() && two.owns_lock()));
  }
  CHECK_FALSE(semaphore->locked());
  // Both units are back: two more acquisitions do not wait.
  co_await semaphore->acquire();
  co_await semaphore->acquire();
  CHECK(semaphore->locked());
  semaphore->release();
  semaphore->release();
}

TEST_CASE("Semaphore.scoped() gives a guard that gives its unit back when it goes") {
  uvaio::BoundedSemaphore semaphore(2);
  uvaio::run(scoped_semaphore(&semaphore));
}

// --- Condition --------------------------------------------------------------------

uvaio::Async<void> condition_without_lock(uvaio::Condition* condition) {
  std::string error;
  try {
    co_await condition->wait();
  } catch (const uvaio::RuntimeError& e) {
    error = e.what();
  }
  CHECK(error == "cannot wait on un-acquired lock");
  CHECK_THROWS_WITH_AS(condition->notify(), "cannot notify on un-acquired lock",
                       uvaio::RuntimeError);
  CHECK_THROWS_WITH_AS(condition->notify_all(), "cannot notify on un-acquired lock",
                       uvaio::RuntimeError);
  // As in asyncio, wait_for only waits (and so only then fails) if the predicate is false.
  const bool at_once = co_await condition->wait_for([] { return true; });
  CHECK(at_once);
  error.clear();
  try {
    co_await condition->wait_for([] { return false; });
  } catch (const uvaio::RuntimeError& e) {
    error = e.what();
  }
  CHECK(error == "cannot wait on un-acquired lock");
}

TEST_CASE("Condition wait, wait_for, notify and notify_all without the lock throw RuntimeError") {
  uvaio::Condition condition;
  uvaio::run(condition_without_lock(&condition));
  CHECK_FALSE(condition.locked());
}

uvaio::Async<void> notify_one_by_one(uvaio::Condition* condition, Log* log) {
  auto t1 = uvaio::create_task(wait_for_notify(condition, log, "1"));
  auto t2 = uvaio::create_task(wait_for_notify(condition, log, "2"));
  auto t3 = uvaio::create_task(wait_for_notify(condition, log, "3"));
  co_await uvaio::sleep(0s);
  CHECK(log->empty());
  CHECK_FALSE(condition->locked());  // each wait released it

  co_await condition->acquire();
  condition->notify(1);
  co_await uvaio::sleep(0s);
  CHECK(log->empty());  // notified, but the lock is ours
  condition->release();
  co_await uvaio::sleep(0s);
  CHECK(joined(*log) == "1 notified, locked");

  co_await condition->acquire();
  condition->notify(1);
  condition->notify(2048);  // more than are waiting: all of them
  condition->release();
  co_await t2;
  co_await t3;
  CHECK(joined(*log) == "1 notified, locked 2 notified, locked 3 notified, locked");
  CHECK(t1.done());
}

TEST_CASE(
    "notify(1) wakes one Condition waiter at a time, oldest first, and each returns holding the "
    "lock") {
  uvaio::Condition condition;
  Log log;
  uvaio::run(notify_one_by_one(&condition, &log));
  CHECK_FALSE(condition.locked());
}

uvaio::Async<void> wait_then_hold(uvaio::Condition* condition, Log* log, std::string name) {
  auto guard = co_await condition->scoped();
  co_await condition->wait();
  log->push_back(name + " in");
  co_await uvaio::sleep(0s);
  log->push_back(name + " out");
}

uvaio::Async<void> notify_everyone(uvaio::Condition* condition, Log* log) {
  auto t1 = uvaio::create_task(wait_then_hold(condition, log, "1"));
  auto t2 = uvaio::create_task(wait_then_hold(condition, log, "2"));
  auto t3 = uvaio::create_task(wait_then_hold(condition, log, "3"));
  co_await uvaio::sleep(0s);
  co_await condition->acquire();
  condition->notify_all();
  condition->release();
  co_await t1;
  co_await t2;
  co_await t3;
  CHECK(joined(*log) == "1 in 1 out 2 in 2 out 3 in 3 out");
}

TEST_CASE(
    "notify_all wakes every Condition waiter; they get the lock back one after another, in order") {
  uvaio::Condition condition;
  Log log;
  uvaio::run(notify_everyone(&condition, &log));
  CHECK_FALSE(condition.locked());
}

uvaio::Async<void> wait_for_three(uvaio::Condition* condition, int* value, int* calls, Log* log) {
  auto guard = co_await condition->scoped();
  const bool result = co_await condition->wait_for([value, calls] {
    ++*calls;
    return *value == 3;
  });
  log->push_back(result ? "predicate holds" : "returned false");
  CHECK(condition->locked());
}

uvaio::Async<void> wait_for_predicate(uvaio::Condition* condition, Log* log) {
  int value = 0;
  int calls = 0;
  auto task = uvaio::create_task(wait_for_three(condition, &value, &calls, log));
  co_await uvaio::sleep(0s);
  CHECK(calls == 1);

  co_await condition->acquire();
  value = 1;
  condition->notify();
  condition->release();
  co_await uvaio::sleep(0s);
  CHECK(calls == 2);
  CHECK_FALSE(task.done());  // false again: back to waiting

  co_await condition->acquire();
  value = 3;
  condition->notify();
  condition->release();
  co_await task;
  CHECK(calls == 3);
  CHECK(joined(*log) == "predicate holds");

  // A predicate that already holds returns its value without waiting.
  co_await condition->acquire();
  const int seven = co_await condition->wait_for([] { return 7; });
  CHECK(seven == 7);
  condition->release();
}

TEST_CASE(
    "wait_for returns the predicate's value at once when it holds, and otherwise waits until it "
    "does") {
  uvaio::Condition condition;
  Log log;
  uvaio::run(wait_for_predicate(&condition, &log));
  CHECK_FALSE(condition.locked());
}

uvaio::Async<void> wait_logging_cancel(uvaio::Condition* condition, Log* log) {
  auto guard = co_await condition->scoped();
  try {
    co_await condition->wait();
  } catch (const uvaio::CancelledError& e) {
    log->push_back("cancelled: " + e.message() +
                   (guard.owns_lock() && condition->locked() ? ", locked" : ""));
    throw;
  }
}

uvaio::Async<void> cancel_condition_wait(uvaio::Condition* condition, Log* log) {
  auto task = uvaio::create_task(wait_logging_cancel(condition, log));
  co_await uvaio::sleep(0s);
  co_await condition->acquire();
  task.cancel("stop");
  co_await uvaio::sleep(0s);
  co_await uvaio::sleep(0s);
  // It must get the lock back before it raises, and we hold it.
  CHECK_FALSE(task.done());
  CHECK(log->empty());
  condition->release();
  co_await settle(task);
  CHECK(task.cancelled());
  CHECK(cancelled_message(task) == "stop");
  CHECK(joined(*log) == "cancelled: stop, locked");
}

TEST_CASE("a cancelled Condition wait gets the lock back before it raises CancelledError") {
  uvaio::Condition condition;
  Log log;
  uvaio::run(cancel_condition_wait(&condition, &log));
  CHECK_FALSE(condition.locked());
}

uvaio::Async<void> cancel_notified(uvaio::Condition* condition, Log* log,
                                   bool after_lock_handed_over) {
  auto t1 = uvaio::create_task(wait_for_notify(condition, log, "1"));
  auto t2 = uvaio::create_task(wait_for_notify(condition, log, "2"));
  co_await uvaio::sleep(0s);
  co_await condition->acquire();
  condition->notify(1);
  if (after_lock_handed_over) {
    condition->release();  // t1 now holds the lock, but has not resumed
    t1.cancel();
  } else {
    t1.cancel();  // t1 still queues for the lock
    condition->release();
  }
  co_await settle(t2);
  CHECK(t1.cancelled());
  CHECK(t2.done());
  CHECK(joined(*log) == "2 notified, locked");
}

TEST_CASE(
    "a Condition waiter notified but cancelled before it resumes passes the notification on") {
  uvaio::Condition condition;
  Log log;
  SUBCASE("while it queues for the lock") {
    uvaio::run(cancel_notified(&condition, &log, false));
  }
  SUBCASE("after the lock was handed to it") {
    uvaio::run(cancel_notified(&condition, &log, true));
  }
  CHECK_FALSE(condition.locked());
}

uvaio::Async<void> shared_lock(uvaio::Lock* lock, uvaio::Condition* condition, Log* log) {
  co_await lock->acquire();
  CHECK(condition->locked());
  condition->release();
  CHECK_FALSE(lock->locked());
  auto waiter = uvaio::create_task(wait_for_notify(condition, log, "waiter"));
  co_await uvaio::sleep(0s);
  co_await lock->acquire();
  condition->notify();
  lock->release();
  co_await waiter;
  CHECK(joined(*log) == "waiter notified, locked");
  CHECK(&condition->lock() == lock);
}

TEST_CASE("a Condition can share a Lock: holding the lock is holding the condition") {
  uvaio::Lock lock;
  uvaio::Condition condition(lock);
  Log log;
  uvaio::run(shared_lock(&lock, &condition, &log));
  CHECK_FALSE(lock.locked());
}

uvaio::Async<void> cancel_self_then_wait(uvaio::Condition* condition, Log* log) {
  auto guard = co_await condition->scoped();
  uvaio::get_running_loop().call_soon([log] { log->push_back("callback"); });
  uvaio::current_task().cancel("self");
  try {
    co_await condition->wait();
  } catch (const uvaio::CancelledError& e) {
    log->push_back("cancelled: " + e.message() + (condition->locked() ? ", locked" : ""));
    throw;
  }
}

TEST_CASE(
    "a task cancelled while it runs has its next Condition wait cancelled at once, still holding "
    "the lock") {
  uvaio::Condition condition;
  Log log;
  uvaio::Loop loop;
  auto task = loop.create_task(cancel_self_then_wait(&condition, &log));
  for (int i = 0; i < 3; ++i) run_one_iteration(loop);
  CHECK(task.cancelled());
  CHECK(joined(log) == "cancelled: self, locked callback");
  CHECK_FALSE(condition.locked());
}

// No guard here: a LockGuard must not outlive its Lock (the condition's own).
uvaio::Async<void> wait_without_guard(uvaio::Condition* condition) {
  co_await condition->acquire();
  co_await condition->wait();
  condition->release();
}

TEST_CASE("destroying a Condition while a task waits on it wakes the task with RuntimeError") {
  auto condition = std::make_unique<uvaio::Condition>();
  uvaio::Loop loop;
  auto task = loop.create_task(wait_without_guard(condition.get()));
  run_one_iteration(loop);
  REQUIRE_FALSE(task.done());
  condition.reset();
  CHECK_THROWS_WITH_AS(loop.run_until_complete(task),
                       "Condition (or its Lock) was destroyed while a task waited on it",
                       uvaio::RuntimeError);
}

uvaio::Async<void> notify_then_destroy(uvaio::Lock* lock,
                                       std::unique_ptr<uvaio::Condition>* condition, Log* log) {
  auto waiter = uvaio::create_task(wait_for_notify(condition->get(), log, "waiter"));
  co_await uvaio::sleep(0s);
  co_await lock->acquire();
  (*condition)->notify();
  condition->reset();  // the waiter already queues for the lock, which lives on
  waiter.cancel();     // would pass the notification on to the condition that is gone
  lock->release();
  co_await settle(waiter);
  CHECK(waiter.cancelled());
}

TEST_CASE(
    "a Condition waiter already queued for a shared Lock outlives the destroyed Condition safely") {
  uvaio::Lock lock;
  auto condition = std::make_unique<uvaio::Condition>(lock);
  Log log;
  uvaio::run(notify_then_destroy(&lock, &condition, &log));
  CHECK(log.empty());
  CHECK_FALSE(lock.locked());
}

// --- allocation -------------------------------------------------------------------

struct Primitives {
  uvaio::Event event;
  uvaio::Lock lock;
  uvaio::Semaphore semaphore{0};
  uvaio::Condition condition;
  uvaio::Event go;     // lets the notifier run
  uvaio::Event never;  // where every task ends up, still pending
  std::vector<int> woken;
};

uvaio::Async<void> event_waiter(Primitives* p) {
  co_await p->event.wait();
  p->woken.push_back(1);
  co_await p->never.wait();
}

uvaio::Async<void> lock_waiter(Primitives* p) {
  co_await p->lock.acquire();
  p->woken.push_back(2);
  p->lock.release();
  co_await p->never.wait();
}

uvaio::Async<void> semaphore_waiter(Primitives* p) {
  co_await p->semaphore.acquire();
  p->woken.push_back(3);
  co_await p->never.wait();
}

uvaio::Async<void> condition_waiter(Primitives* p) {
  co_await p->condition.acquire();
  co_await p->condition.wait();
  p->woken.push_back(4);
  p->condition.release();
  co_await p->never.wait();
}

uvaio::Async<void> notifier(Primitives* p) {
  co_await p->go.wait();
  co_await p->condition.acquire();
  p->condition.notify();
  p->condition.release();
  co_await p->never.wait();
}

TEST_CASE(
    "waiting on and waking from an Event, a Lock, a Semaphore and a Condition allocates nothing") {
  Primitives p;
  p.woken.reserve(8);
  uvaio::Loop loop;
  HandlerCapture reports(loop);  // the tasks are still pending when the loop closes
  loop.run_until_complete(acquire_only(&p.lock));
  std::vector<uvaio::Task<void>> tasks;
  tasks.push_back(loop.create_task(event_waiter(&p)));
  tasks.push_back(loop.create_task(lock_waiter(&p)));
  tasks.push_back(loop.create_task(semaphore_waiter(&p)));
  tasks.push_back(loop.create_task(condition_waiter(&p)));
  tasks.push_back(loop.create_task(notifier(&p)));
  for (int i = 0; i < 3; ++i) run_one_iteration(loop);
  REQUIRE(p.woken.empty());

  const std::size_t before = allocations();
  p.event.set();
  p.lock.release();
  p.semaphore.release();
  p.go.set();
  for (int i = 0; i < 5; ++i) run_one_iteration(loop);
  const std::size_t after = allocations();

  CHECK(after == before);
  CHECK(p.woken == std::vector<int>{1, 2, 3, 4});
  for (const auto& task : tasks) CHECK_FALSE(task.done());
  loop.close();  // while `reports` still lives
}

TEST_SUITE_END();

}  // namespace
