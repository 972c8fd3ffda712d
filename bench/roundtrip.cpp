// One to_thread round trip at a time (await, then the next) through uvaio,
// against the same chain of uv_queue_work callbacks written against libuv
// directly, alternating in one process. Prints ns per operation and the ratio.
//
//   bench/roundtrip [ops] [rounds] [both|raw|uvaio]
//
// With `raw` or `uvaio` only that side runs (for valgrind --tool=callgrind:
// instructions per op = (I(2n) - I(n)) / n, a figure that does not depend on
// how busy the machine is).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <uv.h>

#include <uvaio/uvaio.hpp>

namespace {

using Clock = std::chrono::steady_clock;

struct RawChain {
  uv_loop_t loop{};
  uv_work_t request{};
  long remaining = 0;

  static void work(uv_work_t*) {}
  static void after(uv_work_t* req, int) {
    auto* self = static_cast<RawChain*>(req->data);
    if (--self->remaining > 0) uv_queue_work(&self->loop, &self->request, work, after);
  }
  double run(long ops) {
    uv_loop_init(&loop);
    request.data = this;
    remaining = ops;
    const auto start = Clock::now();
    uv_queue_work(&loop, &request, work, after);
    uv_run(&loop, UV_RUN_DEFAULT);
    const auto took = Clock::now() - start;
    uv_loop_close(&loop);
    return std::chrono::duration<double, std::nano>(took).count() / static_cast<double>(ops);
  }
};

uvaio::Async<void> chain(long ops) {
  for (long i = 0; i < ops; ++i) {
    co_await uvaio::to_thread([] {});
  }
}

double run_uvaio(long ops) {
  uvaio::Loop loop;
  const auto start = Clock::now();
  loop.run_until_complete(chain(ops));
  const auto took = Clock::now() - start;
  return std::chrono::duration<double, std::nano>(took).count() / static_cast<double>(ops);
}

}  // namespace

int main(int argc, char** argv) {
  const long ops = argc > 1 ? std::atol(argv[1]) : 100000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  const std::string mode = argc > 3 ? argv[3] : "both";
  if (mode == "raw") {
    RawChain{}.run(ops);
    return 0;
  }
  if (mode == "uvaio") {
    run_uvaio(ops);
    return 0;
  }
  std::vector<double> raw;
  std::vector<double> ours;
  RawChain warm;
  warm.run(1000);
  for (int r = 0; r < rounds; ++r) {
    raw.push_back(RawChain{}.run(ops));
    ours.push_back(run_uvaio(ops));
  }
  std::sort(raw.begin(), raw.end());
  std::sort(ours.begin(), ours.end());
  const double raw_median = raw[raw.size() / 2];
  const double ours_median = ours[ours.size() / 2];
  std::printf("%-12s %14s %18s %8s\n", "name", "uvaio_ns_per_op", "baseline_ns_per_op", "ratio");
  std::printf("%-12s %14.0f %18.0f %8.3f\n", "roundtrip", ours_median, raw_median, ours_median / raw_median);
  return 0;
}
