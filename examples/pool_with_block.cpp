// Python's `with ThreadPoolExecutor() as pool:` is a scope: the pool's
// destructor is shutdown(wait=true), so nothing submitted inside outlives it.
// map() hands the results back in input order.
//
//   with ThreadPoolExecutor(max_workers=4) as executor:
//       for number, prime in zip(PRIMES, executor.map(is_prime, PRIMES)):
//           print('%d is prime: %s' % (number, prime))

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <vector>

#include <uvaio/uvaio.hpp>

bool is_prime(std::uint64_t n) {
  if (n < 2) return false;
  if (n % 2 == 0) return n == 2;
  for (std::uint64_t d = 3; d * d <= n; d += 2) {
    if (n % d == 0) return false;
  }
  return true;
}

void log_line(std::atomic<int>* written) { written->fetch_add(1); }

int main() {
  const std::vector<std::uint64_t> primes = {
      112272535095293, 112582705942171, 112272535095293, 115280095190773, 115797848077099, 1099726899285419,
  };
  std::vector<bool> answers;
  std::atomic<int> written{0};

  // [snippet:with]
  {
    uvaio::ThreadPoolExecutor executor({.max_workers = 4});
    std::size_t i = 0;
    for (bool prime : executor.map(is_prime, primes)) {  // waits for each result in turn
      std::printf("%llu is prime: %s\n", static_cast<unsigned long long>(primes[i++]), prime ? "True" : "False");
      answers.push_back(prime);
    }
    // Nobody keeps these futures: leaving the scope waits for the calls anyway.
    for (int k = 0; k < 3; ++k) (void)executor.submit(log_line, &written);
  }  // ~ThreadPoolExecutor(): shutdown(wait=true) -- every call has finished, every thread joined
  std::printf("%d log lines written\n", written.load());
  // [end]

  const std::vector<bool> expected = {true, true, true, true, true, false};
  return answers == expected && written.load() == 3 ? 0 : 1;
}
