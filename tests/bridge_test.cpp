#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <latch>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include "support.hpp"

using namespace std::chrono_literals;
using test_support::Counted;
using test_support::LogCapture;
using uvaio::ThreadFuture;

TEST_SUITE_BEGIN("bridge");

namespace {

struct Oops {
  int code;
};

struct ParseError : std::runtime_error {
  ParseError(const std::string& what, int l) : std::runtime_error(what), line(l) {}
  int line;
};

// --- wrap_future (item 36) --------------------------------------------------------------

struct AlreadyDone {
  bool done_at_once = true;
  bool done_after_one_iteration = false;
  int value = 0;
  std::thread::id callback;
};

uvaio::Async<void> wrap_a_done_future(AlreadyDone* out) {
  ThreadFuture<int> source;
  source.set_result(5);
  uvaio::Future<int> f = uvaio::wrap_future(source);
  out->done_at_once = f.done();  // never completed inline
  f.add_done_callback([out](const uvaio::Future<int>&) { out->callback = std::this_thread::get_id(); });
  co_await uvaio::sleep(0s);
  out->done_after_one_iteration = f.done();
  int v = co_await f;
  out->value = v;
  co_await uvaio::sleep(0s);  // the done callback
}

TEST_CASE("wrap_future of a done ThreadFuture gives a Future that completes on a later iteration, not inline") {
  uvaio::Loop loop;
  AlreadyDone out;
  loop.run_until_complete(wrap_a_done_future(&out));
  CHECK_FALSE(out.done_at_once);
  CHECK(out.done_after_one_iteration);
  CHECK(out.value == 5);
  CHECK(out.callback == std::this_thread::get_id());
}

struct Elsewhere {
  int value = 0;
  std::thread::id producer;
  std::thread::id callback;
  std::thread::id resumed;
};

uvaio::Async<void> wrap_completed_elsewhere(Elsewhere* out) {
  ThreadFuture<int> source;
  uvaio::Future<int> f = uvaio::wrap_future(source);
  f.add_done_callback([out](const uvaio::Future<int>&) { out->callback = std::this_thread::get_id(); });
  // Whether the result comes before or after the co_await, the loop thread delivers it.
  std::jthread producer([source, out] {
    out->producer = std::this_thread::get_id();
    source.set_result(42);
  });
  int v = co_await f;
  out->value = v;
  out->resumed = std::this_thread::get_id();
  co_await uvaio::sleep(0s);  // the done callback
}

TEST_CASE("wrap_future delivers a result set on another thread on the loop thread") {
  uvaio::Loop loop;
  Elsewhere out;
  loop.run_until_complete(wrap_completed_elsewhere(&out));
  CHECK(out.value == 42);
  CHECK(out.producer != std::thread::id());
  CHECK(out.producer != std::this_thread::get_id());
  CHECK(out.callback == std::this_thread::get_id());
  CHECK(out.resumed == std::this_thread::get_id());
}

uvaio::Async<int> wrap_move_only() {
  ThreadFuture<std::unique_ptr<int>> source;
  uvaio::Future<std::unique_ptr<int>> f = uvaio::wrap_future(source);
  std::jthread([source] { source.set_result(std::make_unique<int>(11)); }).join();
  std::unique_ptr<int> p = co_await std::move(f);
  co_return p ? *p : -1;
}

TEST_CASE("wrap_future moves a move-only result out of the ThreadFuture") {
  uvaio::Loop loop;
  CHECK(loop.run_until_complete(wrap_move_only()) == 11);
}

struct Failures {
  int oops = 0;
  int parse_line = 0;
};

uvaio::Async<void> wrap_failures(Failures* out) {
  ThreadFuture<int> oops;
  uvaio::Future<int> f = uvaio::wrap_future(oops);
  std::jthread([oops] { oops.set_exception(Oops{8}); }).join();
  try {
    int v = co_await f;
    (void)v;
  } catch (const Oops& e) {
    out->oops = e.code;
  }

  ThreadFuture<std::string> parse;
  uvaio::Future<std::string> g = uvaio::wrap_future(parse);
  std::jthread([parse] { parse.set_exception(ParseError("bad", 4)); }).join();
  try {
    std::string v = co_await g;
  } catch (const ParseError& e) {
    out->parse_line = e.line;
  }
}

TEST_CASE("wrap_future delivers an exception of any type set on another thread") {
  uvaio::Loop loop;
  Failures out;
  loop.run_until_complete(wrap_failures(&out));
  CHECK(out.oops == 8);
  CHECK(out.parse_line == 4);
}

struct Cancelled {
  bool cancelled_error = false;
  bool future_cancelled = false;
  std::thread::id callback;
};

uvaio::Async<void> wrap_cancelled(Cancelled* out) {
  ThreadFuture<void> source;
  uvaio::Future<void> f = uvaio::wrap_future(source);
  f.add_done_callback([out](const uvaio::Future<void>& done) {
    out->callback = std::this_thread::get_id();
    out->future_cancelled = done.cancelled();
  });
  std::jthread([source] { (void)source.cancel(); }).join();
  try {
    co_await f;
  } catch (const uvaio::CancelledError&) {
    out->cancelled_error = true;
  }
  co_await uvaio::sleep(0s);  // the done callback
}

TEST_CASE("wrap_future of a ThreadFuture cancelled on another thread gives a cancelled Future") {
  uvaio::Loop loop;
  Cancelled out;
  loop.run_until_complete(wrap_cancelled(&out));
  CHECK(out.cancelled_error);
  // asyncio's _copy_future_state: a cancelled source cancels the destination,
  // so cancelled() is true -- not a Future that failed with CancelledError.
  CHECK(out.future_cancelled);
  CHECK(out.callback == std::this_thread::get_id());
}

struct CancelWrapped {
  bool source_cancelled_at_once = false;
  bool running_source_cancelled = true;
  bool future_still_cancelled = false;
  int callbacks = 0;
};

uvaio::Async<void> cancel_the_wrapper(CancelWrapped* out) {
  ThreadFuture<int> pending;
  uvaio::Future<int> f = uvaio::wrap_future(pending);
  f.cancel();
  out->source_cancelled_at_once = pending.cancelled();

  // A source that is already running cannot be cancelled: its result, set
  // later on another thread, is dropped and the Future stays cancelled.
  ThreadFuture<int> running;
  running.set_running_or_notify_cancel();
  uvaio::Future<int> g = uvaio::wrap_future(running);
  g.add_done_callback([out](const uvaio::Future<int>&) { ++out->callbacks; });
  g.cancel();
  out->running_source_cancelled = running.cancelled();
  std::jthread([running] { running.set_result(3); }).join();
  co_await uvaio::sleep(0s);
  co_await uvaio::sleep(0s);
  out->future_still_cancelled = g.cancelled();
}

TEST_CASE("cancelling the Future from wrap_future cancels its ThreadFuture, if that has not started") {
  uvaio::Loop loop;
  CancelWrapped out;
  loop.run_until_complete(cancel_the_wrapper(&out));
  CHECK(out.source_cancelled_at_once);
  CHECK_FALSE(out.running_source_cancelled);
  CHECK(out.future_still_cancelled);
  CHECK(out.callbacks == 1);
}

uvaio::Async<uvaio::Future<Counted>> wrap_running(ThreadFuture<Counted> source) {
  uvaio::Future<Counted> f = uvaio::wrap_future(source);
  co_return f;
}

TEST_CASE("a ThreadFuture completed on another thread after its loop closed does not touch the loop") {
  Counted::reset();
  ThreadFuture<Counted> source;
  source.set_running_or_notify_cancel();  // a producer is working on it: nothing can cancel it now
  uvaio::Future<Counted> f;
  {
    uvaio::Loop loop;
    f = loop.run_until_complete(wrap_running(source));
    CHECK_FALSE(f.done());
  }  // the loop is closed and gone; the Future ends cancelled
  CHECK(f.cancelled());
  std::jthread([source] { source.set_result(Counted(7)); }).join();
  CHECK(f.cancelled());
  CHECK(source.result().value == 7);
  CHECK(Counted::alive() == 1);  // only the source's value: no copy was made for the closed loop
  f = uvaio::Future<Counted>();
  source = ThreadFuture<Counted>();
  CHECK(Counted::alive() == 0);
}

uvaio::Async<void> nothing() { co_return; }

TEST_CASE("wrap_future outside a running loop throws RuntimeError") {
  ThreadFuture<int> source;
  CHECK_THROWS_WITH_AS((void)uvaio::wrap_future(source), "no running event loop", uvaio::RuntimeError);
  uvaio::Loop loop;  // exists, but does not run here
  loop.run_until_complete(nothing());
  CHECK_THROWS_WITH_AS((void)uvaio::wrap_future(source), "no running event loop", uvaio::RuntimeError);
  CHECK_FALSE(source.done());
}

// --- run_coroutine_threadsafe (item 37) ------------------------------------------------------

// Runs `client` on another thread while this thread runs `loop`; the loop
// stops once the client returns. Returns what the client threw, if anything.
template <class F>
std::string run_with_client(uvaio::Loop& loop, F client) {
  std::string error;
  std::jthread thread([&loop, &client, &error] {
    try {
      client();
    } catch (const std::exception& e) {
      error = std::string("client threw: ") + e.what();
    } catch (...) {
      error = "client threw something";
    }
    loop.call_soon_threadsafe([&loop] { loop.stop(); });
  });
  loop.run_forever();
  thread.join();
  return error;
}

uvaio::Async<int> add_later(int a, int b, std::thread::id* ran_on) {
  co_await uvaio::sleep(1ms);
  *ran_on = std::this_thread::get_id();
  co_return a + b;
}

TEST_CASE("run_coroutine_threadsafe from another thread runs the coroutine on the loop and returns its result") {
  uvaio::Loop loop;
  std::thread::id ran_on;
  int result = 0;
  const std::string error = run_with_client(loop, [&] {
    ThreadFuture<int> f = uvaio::run_coroutine_threadsafe(add_later(1, 2, &ran_on), loop);
    result = f.result(30s);
  });
  CHECK(error == "");
  CHECK(result == 3);
  CHECK(ran_on == std::this_thread::get_id());
}

uvaio::Async<int> fail_later(int line) {
  co_await uvaio::sleep(0s);
  throw ParseError("parse failed", line);
}

uvaio::Async<void> throw_oops() {
  co_await uvaio::sleep(0s);
  throw Oops{21};
}

TEST_CASE("run_coroutine_threadsafe passes the coroutine's exception, of any type, to the ThreadFuture") {
  uvaio::Loop loop;
  int line = 0;
  int code = 0;
  const std::string error = run_with_client(loop, [&] {
    ThreadFuture<int> f = uvaio::run_coroutine_threadsafe(fail_later(17), loop);
    try {
      (void)f.result(30s);
    } catch (const ParseError& e) {
      line = e.line;
    }
    ThreadFuture<void> g = uvaio::run_coroutine_threadsafe(throw_oops(), loop);
    try {
      g.result(30s);
    } catch (const Oops& e) {
      code = e.code;
    }
  });
  CHECK(error == "");
  CHECK(line == 17);
  CHECK(code == 21);
}

uvaio::Async<int> wait_forever(ThreadFuture<void> started, ThreadFuture<void> saw_cancel) {
  started.set_result();
  try {
    co_await uvaio::sleep(1h);
  } catch (const uvaio::CancelledError&) {
    saw_cancel.set_result();
    throw;
  }
  co_return 1;
}

TEST_CASE("result(timeout) throwing TimeoutError, then cancel(), cancels the task on the loop") {
  uvaio::Loop loop;
  bool timed_out = false;
  bool cancel_returned = false;
  bool coroutine_saw_cancel = false;
  bool future_cancelled = false;
  const std::string error = run_with_client(loop, [&] {
    ThreadFuture<void> started;
    ThreadFuture<void> saw_cancel;
    ThreadFuture<int> f = uvaio::run_coroutine_threadsafe(wait_forever(started, saw_cancel), loop);
    started.wait(30s);
    try {
      (void)f.result(10ms);
    } catch (const uvaio::TimeoutError&) {
      timed_out = true;
    }
    cancel_returned = f.cancel();
    coroutine_saw_cancel = saw_cancel.wait(30s);
    future_cancelled = f.cancelled();
  });
  CHECK(error == "");
  CHECK(timed_out);
  CHECK(cancel_returned);
  CHECK(coroutine_saw_cancel);
  CHECK(future_cancelled);
}

uvaio::Async<int> set_flag(std::shared_ptr<std::atomic<bool>> ran) {
  ran->store(true);
  co_return 1;
}

uvaio::Async<void> a_few_iterations() {
  for (int i = 0; i < 5; ++i) co_await uvaio::sleep(0s);
}

TEST_CASE("cancelling the ThreadFuture before the task started means the coroutine never runs") {
  uvaio::Loop loop;
  auto ran = std::make_shared<std::atomic<bool>>(false);
  bool cancelled = false;
  bool cancelled_after = false;
  // The loop does not run while the other thread submits and cancels.
  std::jthread([&] {
    ThreadFuture<int> f = uvaio::run_coroutine_threadsafe(set_flag(ran), loop);
    cancelled = f.cancel();
    cancelled_after = f.cancelled();
  }).join();
  loop.run_until_complete(a_few_iterations());
  CHECK(cancelled);
  CHECK(cancelled_after);
  CHECK_FALSE(ran->load());
}

uvaio::Async<void> until_done(ThreadFuture<void> started) {
  uvaio::Future<void> wrapped = uvaio::wrap_future(started);
  co_await wrapped;
}

TEST_CASE("closing the loop while the task is pending cancels the ThreadFuture: a blocked result() wakes") {
  LogCapture log;  // "Task was destroyed but it is pending!"
  std::string outcome;
  ThreadFuture<void> started;
  ThreadFuture<void> saw_cancel;
  {
    uvaio::Loop loop;
    std::latch submitted(1);
    std::jthread client([&] {
      ThreadFuture<int> f = uvaio::run_coroutine_threadsafe(wait_forever(started, saw_cancel), loop);
      submitted.count_down();
      try {
        (void)f.result(30s);  // 30 s: a hang becomes a failure
        outcome = "value";
      } catch (const uvaio::CancelledError&) {
        outcome = "cancelled";
      } catch (const uvaio::TimeoutError&) {
        outcome = "timed out";
      }
    });
    submitted.wait();
    loop.run_until_complete(until_done(started));  // the task is now waiting in its sleep
    loop.close();
    client.join();
  }
  CHECK(outcome == "cancelled");
  CHECK(log.contains("Task was destroyed but it is pending!"));
}

uvaio::Async<int> remember_call(std::shared_ptr<bool> ran, int value) {
  *ran = true;
  co_return value;
}

struct SameThread {
  bool ran_at_call = true;
  bool done_at_call = true;
  int value = 0;
};

uvaio::Async<void> from_the_loop_thread(SameThread* out) {
  auto ran = std::make_shared<bool>(false);
  ThreadFuture<int> f = uvaio::run_coroutine_threadsafe(remember_call(ran, 9), uvaio::get_running_loop());
  out->ran_at_call = *ran;
  out->done_at_call = f.done();
  uvaio::Future<int> wrapped = uvaio::wrap_future(f);
  int v = co_await wrapped;
  out->value = v;
}

TEST_CASE("run_coroutine_threadsafe called on the loop thread itself runs the coroutine on a later iteration") {
  uvaio::Loop loop;
  SameThread out;
  loop.run_until_complete(from_the_loop_thread(&out));
  CHECK_FALSE(out.ran_at_call);
  CHECK_FALSE(out.done_at_call);
  CHECK(out.value == 9);
}

TEST_CASE("run_coroutine_threadsafe on a closed loop throws RuntimeError(\"Event loop is closed\")") {
  uvaio::Loop loop;
  loop.close();
  auto ran = std::make_shared<bool>(false);
  CHECK_THROWS_WITH_AS((void)uvaio::run_coroutine_threadsafe(remember_call(ran, 1), loop), "Event loop is closed",
                       uvaio::RuntimeError);
  CHECK_FALSE(*ran);
}

}  // namespace

TEST_SUITE_END();
