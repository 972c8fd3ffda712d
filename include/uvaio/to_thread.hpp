#pragma once

#include <utility>

#include "uvaio/loop.hpp"

namespace uvaio {

// asyncio.to_thread: runs fn(args...) on the running loop's default executor
// (libuv's threadpool unless replaced) and returns a Future for the result,
// completed on the loop thread. Arguments are moved into the call; move-only
// arguments and results work. If fn takes a std::stop_token first, it gets one
// that cancelling the future signals. Work that has not started when the future
// is cancelled never runs; running work finishes and its result is dropped.
// RuntimeError("no running event loop") outside a loop.
template <class F, class... Args>
[[nodiscard]] auto to_thread(F&& fn, Args&&... args) {
  return get_running_loop().run_in_executor(nullptr, std::forward<F>(fn), std::forward<Args>(args)...);
}

}  // namespace uvaio
