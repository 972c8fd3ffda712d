// An Executor of your own: one std::jthread per call, in about twenty lines.
// execute() receives each call as a Work; calling it (once, on any thread)
// runs the function and hands the outcome to the loop that submitted it.

#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <uvaio/uvaio.hpp>

// [snippet:executor]
class ThreadPerCallExecutor final : public uvaio::Executor {
 public:
  ~ThreadPerCallExecutor() override { shutdown(true, false); }

  void execute(uvaio::Work work) override {
    std::lock_guard<std::mutex> lock(mutex_);
    // Throwing is fine: the Work dies unrun, so its future ends cancelled.
    if (shut_down_) throw uvaio::RuntimeError("cannot schedule new futures after shutdown");
    threads_.emplace_back([work = std::move(work)]() mutable { work(); });
  }

  // Nothing waits in a queue here, so cancel_futures has nothing to drop; an
  // executor with a queue drops it by destroying the Work objects.
  void shutdown(bool wait, bool /*cancel_futures*/) override {
    std::vector<std::jthread> finished;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      shut_down_ = true;
      if (wait) finished.swap(threads_);
    }
  }  // destroying the jthreads joins them

 private:
  std::mutex mutex_;
  std::vector<std::jthread> threads_;
  bool shut_down_ = false;
};
// [end]

int twice(int x) { return 2 * x; }

// [snippet:use]
uvaio::Async<int> main_coroutine() {
  uvaio::Loop& loop = uvaio::get_running_loop();
  ThreadPerCallExecutor mine;
  uvaio::Future<int> a = loop.run_in_executor(&mine, twice, 20);  // explicitly
  int x = co_await a;

  loop.set_default_executor(std::make_shared<ThreadPerCallExecutor>());  // or as the default
  int y = co_await uvaio::to_thread(twice, 1);
  std::printf("%d + %d = %d\n", x, y, x + y);
  co_return x + y == 42 ? 0 : 1;
}
// [end]

int main() {
  return uvaio::run(main_coroutine());
}
