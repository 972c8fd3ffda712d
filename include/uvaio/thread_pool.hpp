#pragma once

#include <cstddef>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <stop_token>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "uvaio/detail/core.hpp"
#include "uvaio/detail/work_item.hpp"
#include "uvaio/executor.hpp"
#include "uvaio/export.hpp"
#include "uvaio/thread_future.hpp"

namespace uvaio {

namespace detail {

class ThreadPoolCore;

// A call submitted with ThreadPoolExecutor::submit(): runs on a worker and
// completes its ThreadFuture there.
class UVAIO_API PoolJob {
 public:
  virtual ~PoolJob();
  virtual void run() noexcept = 0;     // on a worker thread; deletes the job
  virtual void cancel() noexcept = 0;  // never ran (shutdown with cancel_futures); deletes the job
};

template <class R, class F, class... Args>
class SubmitJob final : public PoolJob {
 public:
  template <class G, class... A>
  SubmitJob(ThreadFuture<R> future, G&& fn, A&&... args)
      : future_(std::move(future)), fn_(std::forward<G>(fn)), args_(std::forward<A>(args)...) {}

  void run() noexcept override {
    if (future_.set_running_or_notify_cancel()) {
      try {
        if constexpr (std::is_void_v<R>) {
          invoke();
          future_.set_result();
        } else {
          future_.set_result(invoke());
        }
      } catch (...) {
        future_.set_exception(std::current_exception());
      }
    }
    delete this;
  }
  void cancel() noexcept override {
    future_.cancel();
    delete this;
  }

 private:
  decltype(auto) invoke() {
    return std::apply(
        [this](Args&... args) -> decltype(auto) {
          if constexpr (takes_stop_token_v<F, Args...>) {
            return std::invoke(std::move(fn_), std::stop_token(), std::move(args)...);
          } else {
            return std::invoke(std::move(fn_), std::move(args)...);
          }
        },
        args_);
  }

  ThreadFuture<R> future_;
  F fn_;
  std::tuple<Args...> args_;
};

}  // namespace detail

// concurrent.futures.ThreadPoolExecutor: a pool of threads of its own, not
// libuv's shared threadpool, so CPU-bound or long blocking work does not starve
// libuv's file-system and DNS requests. It serves two worlds:
// - as an Executor, for run_in_executor(&pool, f, args...) or as a loop's
//   default executor: any number of loops, on any threads; each completion goes
//   back to its own loop through that loop's single wake-up handle, in batches.
// - without a loop: submit(f, args...) returns a ThreadFuture; map(f, range).
// Threads are started on demand, up to max_workers (default min(32, cores + 4)
// as asyncio), and named "<name>_<n>". shutdown(wait, cancel_futures) as
// concurrent.futures: afterwards execute()/submit() throw RuntimeError("cannot
// schedule new futures after shutdown"); cancel_futures cancels what has not
// started (loop futures and ThreadFutures complete as cancelled); wait joins
// the threads. The destructor is shutdown(true). Thread-safe.
//
// Threads and CPU: an idle worker spins (yielding) for up to 20 us before it
// sleeps, one worker at a time and only while no other runs a call, so that a
// loop awaiting one call after the other finds it awake. A loop thread's
// calls during one loop iteration are queued at once; waking sleeping workers
// for them waits for the end of that iteration, unless no worker is awake at
// all (then the first call wakes one at once). If no thread can be started and
// the pool has none, execute()/submit() throw std::system_error (std::bad_alloc
// when memory ran out) and the call never runs.
class UVAIO_API ThreadPoolExecutor final : public Executor {
 public:
  struct Options {
    std::size_t max_workers = 0;  // 0: min(32, hardware threads + 4)
    std::string name = "uvaio-worker";
  };

  ThreadPoolExecutor();
  explicit ThreadPoolExecutor(Options options);
  ThreadPoolExecutor(const ThreadPoolExecutor&) = delete;
  ThreadPoolExecutor& operator=(const ThreadPoolExecutor&) = delete;
  ~ThreadPoolExecutor() override;

  void execute(Work work) override;
  void shutdown(bool wait = true, bool cancel_futures = false) override;

  // Runs fn(args...) on a worker; the ThreadFuture completes there. A fn whose
  // first parameter is a std::stop_token gets one that is never signalled.
  template <class F, class... Args>
  ThreadFuture<detail::work_result_t<std::decay_t<F>, std::decay_t<Args>...>> submit(F&& fn, Args&&... args) {
    using R = detail::work_result_t<std::decay_t<F>, std::decay_t<Args>...>;
    ThreadFuture<R> future;
    enqueue(new detail::SubmitJob<R, std::decay_t<F>, std::decay_t<Args>...>(future, std::forward<F>(fn),
                                                                               std::forward<Args>(args)...));
    return future;
  }

  // concurrent.futures' map: submits fn(item) for every item at once and
  // returns the results in input order, each waited for when the iteration
  // reaches it (its exception is rethrown there). With a timeout, an item not
  // done by then throws TimeoutError. Calls not yet started when the result
  // object is destroyed are cancelled.
  template <class F, std::ranges::input_range R>
  auto map(F fn, R&& items, std::optional<Duration> timeout = std::nullopt);

  std::size_t max_workers() const noexcept;
  // Threads started so far.
  std::size_t threads() const;

 private:
  void enqueue(detail::PoolJob* job);

  // Shared with the worker threads, so that a worker that ends up destroying
  // the pool (shutdown from inside a job) never returns into freed memory.
  std::shared_ptr<detail::ThreadPoolCore> core_;
};

// The results of ThreadPoolExecutor::map(), in input order.
template <class T>
class MapResults {
 public:
  MapResults(std::vector<ThreadFuture<T>> futures, std::optional<TimePoint> deadline)
      : futures_(std::move(futures)), deadline_(deadline) {}
  MapResults(MapResults&&) noexcept = default;
  MapResults& operator=(MapResults&&) noexcept = default;
  MapResults(const MapResults&) = delete;
  MapResults& operator=(const MapResults&) = delete;
  ~MapResults() {
    for (auto& f : futures_) f.cancel();
  }

  class iterator {
   public:
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    iterator(MapResults* owner, std::size_t index) : owner_(owner), index_(index) {}
    // Waits for this item; moves its result out (each item is read once).
    T operator*() const { return owner_->take(index_); }
    iterator& operator++() {
      ++index_;
      return *this;
    }
    void operator++(int) { ++index_; }
    friend bool operator==(const iterator& a, const iterator& b) noexcept { return a.index_ == b.index_; }

   private:
    MapResults* owner_ = nullptr;
    std::size_t index_ = 0;
  };

  iterator begin() { return iterator(this, 0); }
  iterator end() { return iterator(this, futures_.size()); }
  std::size_t size() const noexcept { return futures_.size(); }

  // All results in a vector (waits for every item; rethrows the first failure).
  std::vector<T> to_vector() {
    std::vector<T> out;
    out.reserve(futures_.size());
    for (std::size_t i = 0; i < futures_.size(); ++i) out.push_back(take(i));
    return out;
  }

 private:
  T take(std::size_t index) {
    std::optional<Duration> left;
    if (deadline_) left = *deadline_ - Clock::now();
    if (left && *left < Duration::zero()) left = Duration::zero();
    return futures_[index].take_result(left);
  }

  std::vector<ThreadFuture<T>> futures_;
  std::optional<TimePoint> deadline_;
};

template <class F, std::ranges::input_range R>
auto ThreadPoolExecutor::map(F fn, R&& items, std::optional<Duration> timeout) {
  using Item = std::ranges::range_reference_t<R>;
  using T = std::decay_t<std::invoke_result_t<F&, Item>>;
  static_assert(!std::is_void_v<T>, "map() needs a function that returns a value");
  std::optional<TimePoint> deadline;
  if (timeout) deadline = detail::deadline_after(*timeout);
  std::vector<ThreadFuture<T>> futures;
  for (auto&& item : items) {
    futures.push_back(submit([fn, value = std::decay_t<Item>(item)]() mutable -> T { return fn(std::move(value)); }));
  }
  return MapResults<T>(std::move(futures), deadline);
}

}  // namespace uvaio
