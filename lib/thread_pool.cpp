#include "uvaio/thread_pool.hpp"

#include <pthread.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "log_internal.hpp"
#include "uvaio/detail/work_item.hpp"

namespace uvaio {

namespace detail {

PoolJob::~PoolJob() = default;

// The queue and the threads. One mutex guards the queue, the thread list and
// the flags; workers take the whole queue's front under it and run the entry
// outside it. An entry is a loop's work item (kept as its WorkItemBase, so a
// queued Work costs no allocation of its own) or a submit() job.
class ThreadPoolCore : public std::enable_shared_from_this<ThreadPoolCore> {
 public:
  struct Entry {
    WorkItemBase* work = nullptr;
    PoolJob* job = nullptr;
  };

  ThreadPoolCore(std::size_t max_workers, std::string name)
      : max_workers_(max_workers), name_(std::move(name)) {}

  ~ThreadPoolCore() { shutdown(true, false); }  // only threads that detached themselves are left

  void push(Entry entry) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (shutdown_) {
      lock.unlock();
      drop(entry);
      throw RuntimeError("cannot schedule new futures after shutdown");
    }
    queue_.push_back(entry);
    // asyncio's rule: reuse an idle thread before starting another.
    if (idle_ < queue_.size() && threads_.size() < max_workers_) start_thread_locked();
    lock.unlock();
    ready_.notify_one();
  }

  void shutdown(bool wait, bool cancel_futures) {
    std::deque<Entry> dropped;
    std::vector<std::thread> to_join;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      shutdown_ = true;
      if (cancel_futures) dropped.swap(queue_);
      if (wait) {
        for (std::thread& t : threads_) {
          if (t.get_id() == std::this_thread::get_id()) {
            t.detach();  // shutdown(wait) from one of our own threads: it cannot join itself
          } else if (t.joinable()) {
            to_join.push_back(std::move(t));
          }
        }
        threads_.clear();
      }
    }
    ready_.notify_all();
    for (Entry& entry : dropped) drop(entry);
    for (std::thread& t : to_join) t.join();
  }

  std::size_t max_workers() const noexcept { return max_workers_; }
  std::size_t threads() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return started_;
  }

 private:
  static void run(Entry entry) noexcept {
    if (entry.work != nullptr) {
      Work work(entry.work);
      work();
    } else {
      entry.job->run();
    }
  }

  // Never runs: a loop's work item completes as cancelled, a ThreadFuture is cancelled.
  static void drop(Entry entry) noexcept {
    if (entry.work != nullptr) {
      Work discarded(entry.work);
    } else {
      entry.job->cancel();
    }
  }

  void start_thread_locked() {
    const std::size_t index = started_++;
    threads_.emplace_back([self = shared_from_this(), index] {
      // Linux limits thread names to 15 characters.
      const std::string thread_name = (self->name_ + "_" + std::to_string(index)).substr(0, 15);
      pthread_setname_np(pthread_self(), thread_name.c_str());
      self->work_loop();
    });
  }

  void work_loop() noexcept {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      ++idle_;
      ready_.wait(lock, [this] { return !queue_.empty() || shutdown_; });
      --idle_;
      if (queue_.empty()) return;  // shut down and nothing left to run
      Entry entry = queue_.front();
      queue_.pop_front();
      lock.unlock();
      run(entry);
      lock.lock();
    }
  }

  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Entry> queue_;
  std::vector<std::thread> threads_;
  std::size_t started_ = 0;
  std::size_t idle_ = 0;
  bool shutdown_ = false;
  const std::size_t max_workers_;
  const std::string name_;
};

}  // namespace detail

namespace {
std::size_t default_max_workers() {
  const unsigned cores = std::max(1U, std::thread::hardware_concurrency());
  return std::min<std::size_t>(32, cores + 4);
}
}  // namespace

ThreadPoolExecutor::ThreadPoolExecutor() : ThreadPoolExecutor(Options{}) {}

ThreadPoolExecutor::ThreadPoolExecutor(Options options)
    : core_(std::make_shared<detail::ThreadPoolCore>(
          options.max_workers == 0 ? default_max_workers() : options.max_workers, std::move(options.name))) {}

ThreadPoolExecutor::~ThreadPoolExecutor() { core_->shutdown(true, false); }

void ThreadPoolExecutor::execute(Work work) {
  detail::WorkItemBase* item = work.release();
  if (item == nullptr) return;
  core_->push({item, nullptr});
}

void ThreadPoolExecutor::enqueue(detail::PoolJob* job) { core_->push({nullptr, job}); }

void ThreadPoolExecutor::shutdown(bool wait, bool cancel_futures) { core_->shutdown(wait, cancel_futures); }

std::size_t ThreadPoolExecutor::max_workers() const noexcept { return core_->max_workers(); }

std::size_t ThreadPoolExecutor::threads() const { return core_->threads(); }

}  // namespace uvaio
