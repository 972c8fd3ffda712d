// uvaio::Runner: one loop for several run() calls, as asyncio.Runner. A task
// started in the first run is still owned by the loop and goes on in the second.

#include <chrono>
#include <cstdio>
#include <memory>

#include <uvaio/uvaio.hpp>

using namespace std::chrono_literals;

// Counts ticks until it is cancelled (by Runner::close()).
uvaio::Async<void> heartbeat(std::shared_ptr<int> beats) {
  for (;;) {
    co_await uvaio::sleep(5ms);
    ++*beats;
  }
}

uvaio::Async<int> load_settings(std::shared_ptr<int> beats) {
  uvaio::create_task(heartbeat(beats), "heartbeat");  // the loop keeps it alive
  co_await uvaio::sleep(20ms);
  co_return 3;
}

uvaio::Async<int> serve(int rounds) {
  // This task and the heartbeat from the first run.
  std::printf("tasks on the loop: %zu\n", uvaio::all_tasks().size());
  int served = 0;
  for (int i = 0; i < rounds; ++i) {
    co_await uvaio::sleep(10ms);
    ++served;
  }
  co_return served;
}

int main() {
  auto beats = std::make_shared<int>(0);
  uvaio::Runner runner;
  const int rounds = runner.run(load_settings(beats));
  const int after_first = *beats;
  const int served = runner.run(serve(rounds));
  std::printf(
      "settings: %d rounds; served %d; heartbeats: %d after the first run, %d after the second\n",
      rounds, served, after_first, *beats);
  runner.close();  // cancels the heartbeat, shuts the default executor down, closes the loop
  return served == rounds && *beats > after_first ? 0 : 1;
}
