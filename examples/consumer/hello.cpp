// The smallest uvaio program: a coroutine run to completion on a new loop.

#include <chrono>
#include <cstdio>

#include <uvaio/uvaio.hpp>

uvaio::Async<int> main_coroutine() {
  co_await uvaio::sleep(std::chrono::milliseconds(10));
  std::puts("hello from uvaio " UVAIO_VERSION_STRING);
  co_return 0;
}

int main() {
  return uvaio::run(main_coroutine());
}
