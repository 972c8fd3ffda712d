// The callback layer under the coroutines: call_soon, call_later,
// call_soon_threadsafe from another thread, and the loop's exception handler.
// A Loop used directly, as asyncio's low-level API.

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>

#include <uvaio/uvaio.hpp>

using namespace std::chrono_literals;

int main() {
  uvaio::Loop loop;
  int events = 0;  // touched on the loop thread only: no lock needed
  auto event = [&loop, &events](const std::string& what) {
    std::printf("%s\n", what.c_str());
    if (++events == 5) loop.stop();
  };

  // An exception escaping a callback goes to the handler, and the loop goes on.
  loop.set_exception_handler([&event](uvaio::Loop&, const uvaio::ExceptionContext& context) {
    std::string what = "exception handler: " + context.message;
    try {
      if (context.exception) std::rethrow_exception(context.exception);
    } catch (const std::exception& e) {
      what += std::string(": ") + e.what();
    }
    event(what);
  });

  loop.call_later(30ms, [&event] { event("call_later(30ms)"); });
  loop.call_soon([&event] { event("call_soon, first"); });
  loop.call_soon([] { throw std::runtime_error("boom"); });
  uvaio::Handle skipped = loop.call_soon([&event] { event("never printed"); });
  skipped.cancel();
  loop.call_soon([&event] { event("call_soon, third (FIFO order)"); });

  // Another thread may only use call_soon_threadsafe; the callback runs on the loop thread.
  std::jthread worker([&loop, &event] {
    const std::thread::id worker_id = std::this_thread::get_id();
    loop.call_soon_threadsafe([&event, worker_id] {
      const bool on_worker = std::this_thread::get_id() == worker_id;
      event(on_worker ? "call_soon_threadsafe: ran on the worker?!"
                      : "call_soon_threadsafe: ran on the loop thread");
    });
  });

  loop.run_forever();  // until the fifth event calls stop()
  loop.close();
  return events == 5 ? 0 : 1;
}
