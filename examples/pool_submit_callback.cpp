// concurrent.futures without an event loop: ThreadPoolExecutor::submit()
// returns a ThreadFuture; a done callback runs on the thread that completes it.
//
//   with ThreadPoolExecutor(max_workers=4) as pool:
//       for n in (20, 25, 30):
//           pool.submit(fib, n).add_done_callback(report)

#include <cstdint>
#include <cstdio>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <uvaio/uvaio.hpp>

// A CPU-bound call: it runs on one of the pool's threads.
std::uint64_t fib(unsigned n) {
  if (n > 93) throw std::overflow_error("fib(" + std::to_string(n) + ") does not fit in 64 bits");
  std::uint64_t a = 0;
  std::uint64_t b = 1;
  for (unsigned i = 0; i < n; ++i) {
    const std::uint64_t next = a + b;
    a = b;
    b = next;
  }
  return a;
}

// [snippet:callbacks]
// Filled in by the done callbacks, on the pool's threads: hence the mutex.
struct Report {
  std::mutex mutex;
  std::map<unsigned, std::string> lines;
  std::latch all_reported{3};
};

int main() {
  uvaio::ThreadPoolExecutor pool({.max_workers = 4, .name = "fib"});
  auto report = std::make_shared<Report>();
  for (unsigned n : {20U, 25U, 30U}) {
    uvaio::ThreadFuture<std::uint64_t> future = pool.submit(fib, n);
    // Runs on the thread that completes the future -- or at once, here, if it
    // is done already. It must not block: it holds up that pool thread.
    future.add_done_callback([report, n](const uvaio::ThreadFuture<std::uint64_t>& done) {
      const std::string line = "fib(" + std::to_string(n) + ") = " + std::to_string(done.result());
      std::lock_guard<std::mutex> lock(report->mutex);
      report->lines[n] = line;
      report->all_reported.count_down();
    });
  }
  report->all_reported.wait();
  for (const auto& [n, line] : report->lines) std::printf("%s\n", line.c_str());

  // result() blocks the calling thread and rethrows the call's exception.
  uvaio::ThreadFuture<std::uint64_t> too_big = pool.submit(fib, 100U);
  try {
    std::printf("fib(100) = %llu\n", static_cast<unsigned long long>(too_big.result()));
  } catch (const std::overflow_error& e) {
    std::printf("fib(100) failed: %s\n", e.what());
  }
  // [end]

  const bool ok = report->lines.size() == 3 && report->lines[30] == "fib(30) = 832040" &&
                  too_big.exception() != nullptr;
  return ok ? 0 : 1;
}
