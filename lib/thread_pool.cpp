#include "uvaio/thread_pool.hpp"

#include <pthread.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "log_internal.hpp"
#include "submit_batch.hpp"
#include "uvaio/detail/work_item.hpp"

namespace uvaio {

namespace detail {

PoolJob::~PoolJob() = default;

// The queue and the threads. One mutex guards the queue, the thread list and
// the counters; a worker takes the queue's front under it and runs the entry
// outside it. An entry is a loop's work item (kept as its WorkItemBase, so a
// queued Work costs no allocation of its own) or a submit() job.
//
// Waking is what costs (a futex wake-up is some microseconds on both sides),
// so the pool does as little of it as it can:
// - push() signals a sleeping worker only when no wake-up is already on its way
//   to each sleeper (wakes_pending_), and not for an entry that a spinning
//   worker will take: a burst of 10,000 submissions wakes each sleeper once,
//   not 10,000 times.
// - A worker that finds the queue empty spins for a moment (kSpin) before it
//   sleeps, watching an atomic count, so the next call of a loop that awaits
//   one call after the other finds it awake. At most one worker spins at a
//   time, and only while no other runs anything: on a machine with few cores
//   it would take the CPU that they and the loop thread need.
// - A loop thread's submissions during one iteration wake the sleepers they
//   need once, when its ready callbacks are done (submit_batch.hpp), unless no
//   worker is awake at all: then the first wakes one at once.
class ThreadPoolCore : public std::enable_shared_from_this<ThreadPoolCore> {
 public:
  struct Entry {
    WorkItemBase* work = nullptr;
    PoolJob* job = nullptr;
  };

  ThreadPoolCore(std::size_t max_workers, std::string name)
      : max_workers_(max_workers), name_(std::move(name)) {}

  ~ThreadPoolCore() { stop(true, false); }  // only threads that detached themselves are left

  // Queues an entry. With defer_wake (a loop thread, during an iteration),
  // waking a sleeper may be left to wake_for_queue() at the end of the
  // iteration -- but never when no worker at all is awake or about to be: a
  // queued entry always has a worker on its way, whatever the loop thread does
  // next (even block until the call starts). Returns true if a wake-up was
  // left for later.
  bool push(Entry entry, bool defer_wake) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (shutdown_) {
      lock.unlock();
      drop(entry);
      throw RuntimeError("cannot schedule new futures after shutdown");
    }
    queue_.push_back(entry);
    queued_.store(queue_.size(), std::memory_order_release);
    // asyncio's rule: reuse an idle thread before starting another.
    if (sleeping_ + spinning_ < queue_.size() && threads_.size() < max_workers_) {
      try {
        start_thread_locked();
        return false;
      } catch (...) {
        // No thread could be started (resources). The threads there are will
        // run the entry; with none at all, the call is refused.
        if (threads_.empty()) {
          queue_.pop_back();
          queued_.store(queue_.size(), std::memory_order_release);
          lock.unlock();
          drop(entry);
          throw;
        }
      }
    }
    const bool nobody_awake = running_ + spinning_ + wakes_pending_ == 0;
    if (defer_wake && !nobody_awake) return true;
    const bool wake = sleeping_ > wakes_pending_ && queue_.size() > spinning_ + wakes_pending_;
    if (wake) ++wakes_pending_;
    lock.unlock();
    if (wake) ready_.notify_one();
    return false;
  }

  // One wake-up for each sleeping worker that has a queued entry to take.
  void wake_for_queue() noexcept {
    std::size_t wakes = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      while (sleeping_ > wakes_pending_ && queue_.size() > spinning_ + wakes_pending_) {
        ++wakes_pending_;
        ++wakes;
      }
    }
    for (std::size_t i = 0; i < wakes; ++i) ready_.notify_one();
  }

  void shutdown(bool wait, bool cancel_futures) { stop(wait, cancel_futures); }

  std::size_t max_workers() const noexcept { return max_workers_; }
  std::size_t threads() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return started_;
  }

 private:
  void stop(bool wait, bool cancel_futures) {
    std::deque<Entry> dropped;
    std::vector<std::thread> to_join;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      shutdown_ = true;
      shutting_down_.store(true, std::memory_order_release);
      if (cancel_futures) {
        dropped.swap(queue_);
        queued_.store(0, std::memory_order_release);
      }
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

  // How long an idle worker watches the queue before it sleeps: longer than a
  // loop takes to wake up, run the awaiting task and submit its next call.
  static constexpr auto kSpin = std::chrono::microseconds(20);

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

  static void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }

  void start_thread_locked() {
    // The name is built here, where a bad_alloc reaches the caller: the new
    // thread allocates nothing before work_loop() (an exception escaping a
    // thread's function terminates the program). Linux limits thread names
    // to 15 characters.
    std::array<char, 16> thread_name{};
    (name_ + "_" + std::to_string(started_)).copy(thread_name.data(), thread_name.size() - 1);
    threads_.emplace_back([self = shared_from_this(), thread_name] {
      pthread_setname_np(pthread_self(), thread_name.data());
      self->work_loop();
    });
    ++started_;
  }

  // Unlocked: true as soon as an entry is queued (or the pool shuts down),
  // false once kSpin has passed.
  bool spin_for_work() const noexcept {
    const auto deadline = std::chrono::steady_clock::now() + kSpin;
    for (;;) {
      for (int i = 0; i < 64; ++i) {
        if (queued_.load(std::memory_order_acquire) != 0 || shutting_down_.load(std::memory_order_acquire)) {
          return true;
        }
        cpu_relax();
      }
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::yield();  // a runnable thread on this core (the loop's) goes first
    }
  }

  void work_loop() noexcept {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      if (!queue_.empty()) {
        Entry entry = queue_.front();
        queue_.pop_front();
        queued_.store(queue_.size(), std::memory_order_release);
        ++running_;
        lock.unlock();
        run(entry);
        lock.lock();
        --running_;
        continue;
      }
      if (shutdown_) return;  // shut down and nothing left to run
      // Spinning pays when the pool is otherwise idle (one call awaited after
      // the other); with other workers busy, it takes CPU that they need.
      if (spinning_ == 0 && running_ == 0) {
        ++spinning_;
        lock.unlock();
        const bool found = spin_for_work();
        lock.lock();
        --spinning_;
        // Look again before sleeping: push() does not wake anyone for an
        // entry a spinner will take, and a shutdown's notify_all() may have
        // come while this worker was between its spin and the lock.
        if (found || !queue_.empty() || shutdown_) continue;
      }
      ++sleeping_;
      ready_.wait(lock);  // one wake-up (or a spurious one): look again
      --sleeping_;
      if (wakes_pending_ > 0) --wakes_pending_;
    }
  }

  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Entry> queue_;
  std::vector<std::thread> threads_;
  std::atomic<std::size_t> queued_{0};  // queue_.size(), for spinning workers
  std::atomic<bool> shutting_down_{false};
  std::size_t started_ = 0;
  std::size_t sleeping_ = 0;
  std::size_t spinning_ = 0;
  std::size_t running_ = 0;  // workers running an entry
  std::size_t wakes_pending_ = 0;  // notify_one calls whose sleeper has not woken yet
  bool shutdown_ = false;
  const std::size_t max_workers_;
  const std::string name_;
};

// --- wake-ups held back during a loop iteration (submit_batch.hpp) -----------

namespace {

// What every loop iteration touches is trivial and initial-exec (no
// __tls_get_addr call in a shared library: uvaio is linked, not dlopen'ed
// late, and glibc keeps static TLS room for small libraries that are); the
// list of pools, with its constructor and destructor, only when a pool is used.
__attribute__((tls_model("initial-exec"))) thread_local int t_batch_scopes = 0;
__attribute__((tls_model("initial-exec"))) thread_local bool t_wakes_owed = false;
thread_local std::vector<std::shared_ptr<ThreadPoolCore>> t_owed;  // pools owed a wake-up (usually one)

}  // namespace

SubmitBatchScope::SubmitBatchScope() noexcept { ++t_batch_scopes; }

SubmitBatchScope::~SubmitBatchScope() {
  --t_batch_scopes;
  flush_submit_batches();
}

void flush_submit_batches() noexcept {
  if (!t_wakes_owed) return;
  t_wakes_owed = false;
  // Taken out first: a pool's last reference may go here, and nothing of this
  // thread's list may be in use then.
  std::vector<std::shared_ptr<ThreadPoolCore>> owed = std::move(t_owed);
  t_owed.clear();
  for (const auto& pool : owed) pool->wake_for_queue();
}

void submit_from_this_thread(ThreadPoolCore& pool, ThreadPoolCore::Entry entry) {
  if (!pool.push(entry, t_batch_scopes != 0)) return;
  t_wakes_owed = true;
  for (const auto& owed : t_owed) {
    if (owed.get() == &pool) return;
  }
  try {
    t_owed.push_back(pool.shared_from_this());
  } catch (...) {
    pool.wake_for_queue();  // no memory to note it: wake now
  }
}

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
  detail::submit_from_this_thread(*core_, {item, nullptr});
}

void ThreadPoolExecutor::enqueue(detail::PoolJob* job) { core_->push({nullptr, job}, false); }

void ThreadPoolExecutor::shutdown(bool wait, bool cancel_futures) { core_->shutdown(wait, cancel_futures); }

std::size_t ThreadPoolExecutor::max_workers() const noexcept { return core_->max_workers(); }

std::size_t ThreadPoolExecutor::threads() const { return core_->threads(); }

}  // namespace uvaio
