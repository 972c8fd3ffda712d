// Loop::add_signal_handler / remove_signal_handler over uv_signal_t.

#include <csignal>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "io.hpp"
#include "log_internal.hpp"

namespace uvaio::detail {

// One signal's watcher on one loop. Freed in its close callback (the handle
// lives until then); unregistered from the loop when it starts closing.
class SignalWatcher final : public IoResource {
 public:
  SignalWatcher(LoopImpl& loop, int signum, std::function<void()> callback)
      : loop_(loop), signum_(signum), callback_(std::make_shared<std::function<void()>>(std::move(callback))) {}

  // Throws UvError (or RuntimeError for an uncatchable signal); then the
  // watcher is freed.
  static SignalWatcher* start(LoopImpl& loop, int signum, std::function<void()> callback) {
    auto* watcher = new SignalWatcher(loop, signum, std::move(callback));
    int rc = uv_signal_init(&loop.uv_, &watcher->handle_);
    if (rc != 0) {
      delete watcher;  // uv_signal_init failed before the handle was registered
      throw_uv_error(rc, "uv_signal_init");
    }
    watcher->handle_.data = watcher;
    rc = uv_signal_start(&watcher->handle_, &SignalWatcher::on_signal, signum);
    if (rc != 0) {
      watcher->close_handle();
      if (rc == UV_EINVAL) throw RuntimeError("sig " + std::to_string(signum) + " cannot be caught");
      throw_uv_error(rc, "uv_signal_start(" + std::to_string(signum) + ")");
    }
    loop.register_io(*watcher);
    return watcher;
  }

  void replace_callback(std::function<void()> callback) {
    callback_ = std::make_shared<std::function<void()>>(std::move(callback));
  }

  // Stops watching at once (libuv restores SIG_DFL if this was the last
  // watcher of the signal); the memory goes in the close callback.
  void stop() noexcept {
    loop_.signal_watchers_.erase(signum_);
    loop_.unregister_io(*this);
    close_handle();
  }

  void close_for_loop() noexcept override { stop(); }

 private:
  void close_handle() noexcept {
    uv_close(reinterpret_cast<uv_handle_t*>(&handle_), [](uv_handle_t* h) {
      delete static_cast<SignalWatcher*>(h->data);
    });
  }

  static void on_signal(uv_signal_t* handle, int /*signum*/) {
    auto* self = static_cast<SignalWatcher*>(handle->data);
    if (self->loop_.closing()) return;
    // The callback runs from the ready queue, like call_soon's; it keeps its
    // own reference, so removing the handler meanwhile is safe.
    try {
      std::shared_ptr<std::function<void()>> callback = self->callback_;
      self->loop_.owner_.call_soon([callback] { (*callback)(); });
    } catch (...) {
      report_callback_exception(&self->loop_, std::current_exception(),
                                "scheduling the handler of signal " + std::to_string(self->signum_));
    }
  }

  uv_signal_t handle_{};
  LoopImpl& loop_;
  int signum_;
  std::shared_ptr<std::function<void()>> callback_;
};

}  // namespace uvaio::detail

namespace uvaio {

void Loop::add_signal_handler_impl(int signum, std::function<void()> callback) {
  impl_->check_usable("add_signal_handler");
  if (signum <= 0 || signum >= NSIG) throw ValueError("invalid signal number " + std::to_string(signum));
  if (!callback) throw ValueError("add_signal_handler: the callback is empty");
  auto& watchers = impl_->signal_watchers_;
  if (auto found = watchers.find(signum); found != watchers.end()) {
    found->second->replace_callback(std::move(callback));
    return;
  }
  // The slot first: once the watcher runs, nothing may fail.
  auto slot = watchers.emplace(signum, nullptr).first;
  try {
    slot->second = detail::SignalWatcher::start(*impl_, signum, std::move(callback));
  } catch (...) {
    watchers.erase(signum);
    throw;
  }
}

bool Loop::remove_signal_handler(int signum) {
  auto& watchers = impl_->signal_watchers_;
  auto found = watchers.find(signum);
  if (found == watchers.end()) return false;
  found->second->stop();  // erases the entry
  return true;
}

}  // namespace uvaio
