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
//
// g++ 12: do not write a capturing lambda inside the co_await expression
// (`co_await to_thread([path] { return load(path); })`): g++ 12 destroys the
// temporary's captures twice (a compiler bug; clang is fine). Pass the function
// and its arguments (`co_await to_thread(load, path)`) or name the lambda first.
template <class F, class... Args>
[[nodiscard]] auto to_thread(F&& fn, Args&&... args) {
  return get_running_loop().run_in_executor(nullptr, std::forward<F>(fn), std::forward<Args>(args)...);
}

}  // namespace uvaio
