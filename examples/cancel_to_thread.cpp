// Cancelling work that already runs on a worker thread: the function takes a
// std::stop_token first, and cancelling the awaited future requests stop.

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <stop_token>
#include <thread>

#include <uvaio/uvaio.hpp>

using namespace std::chrono_literals;

// Written on the worker thread, read after uvaio::run() returns: atomics, held
// by shared_ptr so that the worker never touches freed memory.
struct Scan {
  std::atomic<int> chunks_done{0};
  std::atomic<bool> stopped_early{false};
};

// Runs on libuv's threadpool; uvaio passes the token because it comes first.
int scan(const std::stop_token& stop, int chunks, const std::shared_ptr<Scan>& progress) {
  for (int i = 0; i < chunks; ++i) {
    if (stop.stop_requested()) {
      progress->stopped_early = true;
      return i;
    }
    std::this_thread::sleep_for(1ms);  // one chunk of blocking work
    progress->chunks_done = i + 1;
  }
  return chunks;
}

uvaio::Async<int> main_coroutine(std::shared_ptr<Scan> progress) {
  uvaio::Future<int> work = uvaio::to_thread(scan, 10'000, progress);
  co_await uvaio::sleep(50ms);  // the scan is running by now
  work.cancel("no longer needed");
  try {
    int chunks = co_await work;
    std::printf("finished all %d chunks\n", chunks);
  } catch (const uvaio::CancelledError& e) {
    if (uvaio::current_task().cancelling() > 0) throw;  // this task's own cancellation
    std::printf("cancelled: %s\n", e.what());
  }
  co_return 0;
}

int main() {
  auto progress = std::make_shared<Scan>();
  const auto start = std::chrono::steady_clock::now();
  const int status = uvaio::run(main_coroutine(progress));
  // run() returns only after the worker returned: closing waits for running work.
  const auto took =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
  const int chunks = progress->chunks_done.load();
  if (progress->stopped_early) {
    std::printf("the worker stopped early, after %d of 10000 chunks\n", chunks);
  } else if (chunks == 0) {
    std::printf("the worker never ran: it was cancelled before it started\n");
  } else {
    std::printf("the worker ran all %d chunks: the stop request was missed\n", chunks);
    return 1;
  }
  std::printf("uvaio::run() returned after %.0f ms\n", took.count());
  return status;
}
