// Signals and Ctrl-C: a handler for SIGUSR1 on the loop, and what uvaio::run()
// does with SIGINT. The program sends itself the signals, so it runs unattended.

#include <csignal>
#include <chrono>
#include <cstdio>
#include <string>

#include <uvaio/uvaio.hpp>

using namespace std::chrono_literals;

// [snippet:handler]
uvaio::Async<int> reload_on_sigusr1() {
  int reloads = 0;
  uvaio::Loop& loop = uvaio::get_running_loop();
  // Runs on the loop thread, from the ready queue, after each SIGUSR1.
  loop.add_signal_handler(SIGUSR1, [&reloads] {
    ++reloads;
    std::printf("SIGUSR1: reloading the configuration\n");
  });
  std::raise(SIGUSR1);  // as `kill -USR1 <pid>` would
  while (reloads == 0) co_await uvaio::sleep(1ms);
  loop.remove_signal_handler(SIGUSR1);  // SIGUSR1 has its default action again
  co_return reloads;
}
// [end]

// [snippet:sigint]
uvaio::Async<void> serve_until_interrupted() {
  std::raise(SIGINT);  // as Ctrl-C would: uvaio::run() cancels this task
  try {
    co_await uvaio::sleep(1h);
  } catch (const uvaio::CancelledError&) {
    std::printf("main task cancelled by SIGINT; cleaning up\n");
    throw;  // ends cancelled: run() throws KeyboardInterrupt
  }
}

int main() {
  const int reloads = uvaio::run(reload_on_sigusr1());
  try {
    uvaio::run(serve_until_interrupted());
  } catch (const uvaio::KeyboardInterrupt&) {  // not a std::exception, like CancelledError
    std::printf("interrupted after %d reload(s)\n", reloads);
    return 0;
  }
  return 1;
}
// [end]
