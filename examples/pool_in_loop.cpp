// A ThreadPoolExecutor and an event loop together: run_in_executor(&pool, ...),
// a pool as the loop's default executor, wrap_future (a ThreadFuture awaited by
// a task) and run_coroutine_threadsafe (a plain thread asking the loop for work).

#include <pthread.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include <uvaio/uvaio.hpp>

using namespace std::chrono_literals;

std::string thread_name() {
  char name[16] = {};
  pthread_getname_np(pthread_self(), name, sizeof name);
  return name;
}

// CPU-bound: it would hold one of libuv's few shared threads for its whole run.
std::uint64_t checksum(const std::string& text, int rounds) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a, many times over
  for (int r = 0; r < rounds; ++r) {
    for (char c : text) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  }
  return h;
}

// [snippet:run_in_executor]
uvaio::Async<bool> on_a_dedicated_pool(uvaio::ThreadPoolExecutor& pool) {
  uvaio::Loop& loop = uvaio::get_running_loop();
  // Like run_in_executor(nullptr, ...), but on the pool's threads ("crc_0", ...).
  uvaio::Future<std::uint64_t> sum = loop.run_in_executor(&pool, checksum, std::string("uvaio"), 200'000);
  uvaio::Future<std::string> where = loop.run_in_executor(&pool, thread_name);
  std::uint64_t value = co_await sum;
  std::string name = co_await where;
  std::printf("checksum %016llx computed on a pool thread: %s\n", static_cast<unsigned long long>(value),
              name.rfind("crc_", 0) == 0 ? "yes" : "no");
  co_return name.rfind("crc_", 0) == 0;
}
// [end]

// [snippet:default_executor]
uvaio::Async<bool> with_a_pool_as_default() {
  uvaio::Loop& loop = uvaio::get_running_loop();
  loop.set_default_executor(
      std::make_shared<uvaio::ThreadPoolExecutor>(uvaio::ThreadPoolExecutor::Options{.max_workers = 4, .name = "cpu"}));
  // to_thread and run_in_executor(nullptr, ...) now use the pool; uvaio::run()
  // shuts it down at the end, as it would libuv's.
  std::string name = co_await uvaio::to_thread(thread_name);
  std::printf("to_thread ran on %s\n", name.c_str());
  co_return name == "cpu_0";
}
// [end]

// [snippet:wrap_future]
uvaio::Async<bool> await_a_thread_future(uvaio::ThreadPoolExecutor& pool) {
  // A ThreadFuture from code that knows nothing of loops...
  uvaio::ThreadFuture<std::uint64_t> plain = pool.submit(checksum, std::string("plain"), 1000);
  // ...becomes a Future of this loop: awaitable, cancellable, completed on the loop thread.
  uvaio::Future<std::uint64_t> awaitable = uvaio::wrap_future(plain);
  std::uint64_t value = co_await awaitable;
  std::printf("wrap_future: %016llx\n", static_cast<unsigned long long>(value));
  co_return value == checksum("plain", 1000);
}
// [end]

// [snippet:run_coroutine_threadsafe]
uvaio::Async<std::string> lookup(std::string key) {
  co_await uvaio::sleep(5ms);  // stands in for I/O done by the loop
  co_return key + " -> 42";
}

uvaio::Async<bool> answer_a_plain_thread() {
  uvaio::Loop& loop = uvaio::get_running_loop();
  uvaio::ThreadFuture<std::string> report;  // how the thread hands its result back
  std::jthread legacy([&loop, report] {
    // Not a loop thread: it schedules a coroutine on the loop and blocks until it is done.
    uvaio::ThreadFuture<std::string> reply = uvaio::run_coroutine_threadsafe(lookup("answer"), loop);
    report.set_result("the thread got '" + reply.result() + "'");
  });
  uvaio::Future<std::string> done = uvaio::wrap_future(report);  // the loop keeps running meanwhile
  std::string line = co_await done;
  std::printf("%s\n", line.c_str());
  co_return line == "the thread got 'answer -> 42'";
}
// [end]

uvaio::Async<int> main_coroutine() {
  uvaio::ThreadPoolExecutor pool({.max_workers = 2, .name = "crc"});
  bool ok = co_await on_a_dedicated_pool(pool);
  bool wrapped = co_await await_a_thread_future(pool);
  bool answered = co_await answer_a_plain_thread();
  bool by_default = co_await with_a_pool_as_default();
  co_return ok && wrapped && answered && by_default ? 0 : 1;
}

int main() {
  return uvaio::run(main_coroutine());
}
