// A program that takes uvaio as a meson subproject: it awaits
// uvaio::to_thread and checks the result, that the call ran on another thread
// and that the coroutine resumed on the loop thread. Exit code 0 on success.
#include <uvaio/uvaio.hpp>

#include <cstdio>
#include <thread>

namespace {

uvaio::Async<int> consumer_main() {
  const std::thread::id loop_thread = std::this_thread::get_id();
  std::thread::id worker_thread;
  const int product = co_await uvaio::to_thread(
      [&worker_thread](int a, int b) {
        worker_thread = std::this_thread::get_id();
        return a * b;
      },
      6, 7);
  if (product != 42) {
    std::fprintf(stderr, "to_thread returned %d, expected 42\n", product);
    co_return 1;
  }
  if (worker_thread == loop_thread) {
    std::fprintf(stderr, "to_thread ran its function on the loop thread\n");
    co_return 1;
  }
  if (std::this_thread::get_id() != loop_thread) {
    std::fprintf(stderr, "the coroutine did not resume on the loop thread\n");
    co_return 1;
  }
  co_return 0;
}

}  // namespace

int main() {
  try {
    const int status = uvaio::run(consumer_main());
    if (status == 0) std::printf("uvaio %s as a subproject: to_thread ok\n", UVAIO_VERSION_STRING);
    return status;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "uncaught exception: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "uncaught exception of an unknown type\n");
  }
  return 1;
}
