// The README's first example: uvaio::run(main()), tasks, sleep and to_thread.

#include <chrono>
#include <cstdio>
#include <string>

#include <uvaio/uvaio.hpp>

using namespace std::chrono_literals;

// A blocking, CPU-bound call. to_thread runs it on libuv's threadpool.
long count_primes(long limit) {
  long count = 0;
  for (long n = 2; n < limit; ++n) {
    bool prime = true;
    for (long d = 2; d * d <= n && prime; ++d) prime = n % d != 0;
    count += prime ? 1 : 0;
  }
  return count;
}

uvaio::Async<std::string> greet(std::string name, uvaio::Duration delay) {
  co_await uvaio::sleep(delay);
  co_return "hello, " + name;
}

uvaio::Async<int> main_coroutine() {
  // Both tasks start at the next loop iteration and sleep concurrently.
  uvaio::Task<std::string> slow = uvaio::create_task(greet("slow", 50ms));
  uvaio::Task<std::string> fast = uvaio::create_task(greet("fast", 10ms));

  // The loop keeps running the tasks while a worker thread counts.
  long primes = co_await uvaio::to_thread(count_primes, 200'000L);
  std::printf("%ld primes below 200000\n", primes);

  std::string first = co_await fast;
  std::string second = co_await slow;
  std::printf("%s / %s\n", first.c_str(), second.c_str());
  co_return 0;
}

int main() {
  return uvaio::run(main_coroutine());
}
