// Cancelling tasks: Task::cancel(msg) is a request that reaches the innermost
// awaited thing, CancelledError unwinds every frame (running destructors), a
// coroutine may catch it and go on, and a to_thread call still queued when its
// task is cancelled never runs.

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <uvaio/uvaio.hpp>

using namespace std::chrono_literals;

// What happened, in order; touched on the loop thread only.
using Log = std::vector<std::string>;

void note(Log& log, std::string line) {
  std::printf("%s\n", line.c_str());
  log.push_back(std::move(line));
}

// [snippet:unwind]
// Closes its connection however the download ends: when CancelledError
// unwinds the frame, destructors run as for any exception.
struct Connection {
  std::shared_ptr<Log> log;
  ~Connection() { note(*log, "connection closed"); }
};

uvaio::Async<std::string> read_body() {
  co_await uvaio::sleep(10s);  // the innermost awaited thing: the cancellation lands here
  co_return "body";
}

uvaio::Async<std::string> download(std::shared_ptr<Log> log) {
  Connection connection{log};
  try {
    std::string body = co_await read_body();
    co_return body;
  } catch (const std::exception& error) {  // never catches a CancelledError
    note(*log, std::string("download failed: ") + error.what());
    co_return "";
  }
}

uvaio::Async<void> cancel_a_download(std::shared_ptr<Log> log) {
  uvaio::Task<std::string> task = uvaio::create_task(download(log), "download");
  co_await uvaio::sleep(10ms);
  task.cancel("user pressed stop");  // a request: nothing has happened yet
  try {
    co_await task;
  } catch (const uvaio::CancelledError& e) {
    note(*log, "download: CancelledError(\"" + e.message() + "\"), cancelled() = " +
                   std::to_string(task.cancelled()));
  }
}
// [end]

// [snippet:go_on]
// Collects readings until it is cancelled, then reports what it has: it
// catches CancelledError and goes on, so the task ends with a value.
uvaio::Async<int> collect(std::shared_ptr<Log> log) {
  int readings = 0;
  try {
    for (;;) {
      co_await uvaio::sleep(2ms);
      ++readings;
    }
  } catch (const uvaio::CancelledError&) {
    // Handled: take the request back, so that code further on that asks
    // cancelling() (is this task being cancelled?) is not misled.
    uvaio::current_task().uncancel();
  }
  co_await uvaio::sleep(1ms);  // awaiting again is fine: the request was handled
  note(*log, "collect: still running after the cancellation, cancelling() = " +
                 std::to_string(uvaio::current_task().cancelling()));
  co_return readings;
}

uvaio::Async<bool> stop_collecting(std::shared_ptr<Log> log) {
  uvaio::Task<int> task = uvaio::create_task(collect(log), "collect");
  co_await uvaio::sleep(20ms);
  task.cancel();
  int readings = co_await task;
  note(*log, "collect: returned " + std::string(readings > 0 ? "its readings" : "nothing") +
                 ", cancelled() = " + std::to_string(task.cancelled()));
  co_return readings > 0 && !task.cancelled();
}
// [end]

// [snippet:queued]
// A blocking call that holds the only pool thread until told to let go.
void hold_the_pool(const std::shared_ptr<std::atomic<bool>>& release) {
  while (!*release) std::this_thread::sleep_for(1ms);
}

void export_report(const std::shared_ptr<std::atomic<bool>>& ran) {
  *ran = true;
}

uvaio::Async<void> export_in_background(std::shared_ptr<std::atomic<bool>> ran) {
  co_await uvaio::to_thread(export_report, ran);  // queued behind hold_the_pool
}

uvaio::Async<void> cancel_queued_work(std::shared_ptr<Log> log, std::shared_ptr<std::atomic<bool>> ran) {
  auto release = std::make_shared<std::atomic<bool>>(false);
  uvaio::Future<void> holder = uvaio::to_thread(hold_the_pool, release);
  uvaio::Task<void> task = uvaio::create_task(export_in_background(ran), "export");
  co_await uvaio::sleep(5ms);
  task.cancel("not needed");  // reaches the to_thread future: its work item is dequeued
  try {
    co_await task;
  } catch (const uvaio::CancelledError& e) {
    note(*log, "export: CancelledError(\"" + e.message() + "\") while its call was queued");
  }
  *release = true;
  co_await holder;
}
// [end]

uvaio::Async<int> main_coroutine(std::shared_ptr<Log> log, std::shared_ptr<std::atomic<bool>> ran) {
  co_await cancel_a_download(log);
  const bool collected = co_await stop_collecting(log);
  co_await cancel_queued_work(log, ran);
  co_return collected ? 0 : 1;
}

int main() {
  // One pool thread, set before anything uses libuv's threadpool, so that the
  // export call waits behind hold_the_pool deterministically.
  ::setenv("UV_THREADPOOL_SIZE", "1", 1);
  auto log = std::make_shared<Log>();
  auto ran = std::make_shared<std::atomic<bool>>(false);
  const int status = uvaio::run(main_coroutine(log, ran));
  std::printf("export_report %s\n", *ran ? "ran" : "never ran");

  const Log expected = {
      "connection closed",
      "download: CancelledError(\"user pressed stop\"), cancelled() = 1",
      "collect: still running after the cancellation, cancelling() = 0",
      "collect: returned its readings, cancelled() = 0",
      "export: CancelledError(\"not needed\") while its call was queued",
  };
  if (*log != expected || *ran) {
    std::fprintf(stderr, "cancellation: unexpected behaviour\n");
    return 1;
  }
  return status;
}
