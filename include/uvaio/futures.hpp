#pragma once

// concurrent.futures' module functions over ThreadFutures: wait() and
// as_completed(). They block the calling thread (no loop involved); call them
// qualified (futures::wait), as uvaio::wait is asyncio's.

#include <condition_variable>
#include <cstddef>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_set>
#include <utility>
#include <vector>

#include "uvaio/detail/core.hpp"
#include "uvaio/export.hpp"
#include "uvaio/thread_future.hpp"

namespace uvaio::futures {

enum class ReturnWhen { first_completed, first_exception, all_completed };

template <class T>
struct DoneAndNotDone {
  std::vector<ThreadFuture<T>> done;      // in the order first given
  std::vector<ThreadFuture<T>> not_done;  // likewise
};

}  // namespace uvaio::futures

namespace uvaio::detail {

// Blocks until `when` holds for `futures` (distinct, non-null) or `timeout`
// passes, with a waiter the futures notify (Python's _Waiter); no polling.
UVAIO_API void wait_for_thread_futures(const std::vector<ThreadFutureCore*>& futures,
                                       std::optional<Duration> timeout, futures::ReturnWhen when);

// The waiter behind futures::as_completed: installed on every future at
// construction (already-done ones are queued at once, in the order given),
// removed at destruction. Used by one thread at a time.
class UVAIO_API AsCompletedQueue final : public ThreadFutureWaiter {
 public:
  static constexpr std::size_t none = static_cast<std::size_t>(-1);

  // `futures` are distinct and must outlive the queue.
  AsCompletedQueue(std::vector<ThreadFutureCore*> futures, std::optional<Duration> timeout);
  AsCompletedQueue(const AsCompletedQueue&) = delete;
  AsCompletedQueue& operator=(const AsCompletedQueue&) = delete;
  ~AsCompletedQueue();

  // The index of the next future to complete, `none` once every one was
  // handed out; throws TimeoutError("N (of M) futures unfinished") when the
  // deadline passes first.
  std::size_t next();

  void future_done(std::size_t index, bool failed) noexcept override;

 private:
  std::vector<ThreadFutureCore*> futures_;
  std::optional<TimePoint> deadline_;
  std::mutex mutex_;
  std::condition_variable changed_;
  // Indices in completion order; room for all is reserved up front, so that
  // future_done() never allocates. handed_out_ counts those next() returned.
  std::vector<std::size_t> finished_;
  std::size_t handed_out_ = 0;
};

// The distinct futures of `fs` (by shared state), in the order first given.
template <class T>
std::vector<ThreadFuture<T>> distinct_thread_futures(const std::vector<ThreadFuture<T>>& fs) {
  std::vector<ThreadFuture<T>> distinct;
  distinct.reserve(fs.size());
  std::unordered_set<const ThreadFutureCore*> seen;
  seen.reserve(fs.size());
  for (const auto& f : fs) {
    if (seen.insert(&f.core()).second) distinct.push_back(f);
  }
  return distinct;
}

template <class T>
std::vector<ThreadFutureCore*> cores_of(const std::vector<ThreadFuture<T>>& fs) {
  std::vector<ThreadFutureCore*> cores;
  cores.reserve(fs.size());
  for (const auto& f : fs) cores.push_back(&f.core());
  return cores;
}

}  // namespace uvaio::detail

namespace uvaio::futures {

// concurrent.futures.wait: blocks until `when` holds or `timeout` passes (never
// throws TimeoutError: what is unfinished is in not_done), then splits the
// futures into done (finished or cancelled) and not_done. first_exception
// returns when one finishes with an exception (a cancellation does not count)
// or all are done. Duplicates are collapsed. Any thread; cancels nothing.
template <class T>
DoneAndNotDone<T> wait(const std::vector<ThreadFuture<T>>& fs,
                       std::optional<Duration> timeout = std::nullopt,
                       ReturnWhen when = ReturnWhen::all_completed) {
  std::vector<ThreadFuture<T>> distinct = detail::distinct_thread_futures(fs);
  detail::wait_for_thread_futures(detail::cores_of(distinct), timeout, when);
  DoneAndNotDone<T> split;
  for (auto& f : distinct) (f.done() ? split.done : split.not_done).push_back(std::move(f));
  return split;
}

// concurrent.futures.as_completed: an input range that yields each distinct
// future as it completes (finished or cancelled), those already done first,
// blocking the iterating thread in between. The deadline is `timeout` after
// this call; a future done by then is still yielded, but waiting past it throws
// TimeoutError("N (of M) futures unfinished"). It watches the futures from
// construction to destruction; one thread iterates at a time, and the range
// must outlive its iterators.
//   for (const auto& f : futures::as_completed(fs, 5s)) use(f.result());
template <class T>
class AsCompleted {
 public:
  class iterator {
   public:
    using iterator_concept = std::input_iterator_tag;
    using value_type = ThreadFuture<T>;
    using difference_type = std::ptrdiff_t;
    using reference = const ThreadFuture<T>&;

    iterator() = default;
    reference operator*() const { return *owner_->current_; }
    const ThreadFuture<T>* operator->() const { return &*owner_->current_; }
    iterator& operator++() {
      owner_->advance();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
      return it.at_end();
    }

   private:
    friend class AsCompleted;
    explicit iterator(AsCompleted* owner) noexcept : owner_(owner) {}
    bool at_end() const noexcept { return owner_ == nullptr || !owner_->current_.has_value(); }
    AsCompleted* owner_ = nullptr;
  };

  AsCompleted(const std::vector<ThreadFuture<T>>& fs, std::optional<Duration> timeout)
      : futures_(detail::distinct_thread_futures(fs)),
        queue_(std::make_unique<detail::AsCompletedQueue>(detail::cores_of(futures_), timeout)) {}

  // Blocks for the first future (TimeoutError past the deadline).
  iterator begin() {
    if (!started_) {
      started_ = true;
      advance();
    }
    return iterator(this);
  }
  std::default_sentinel_t end() const noexcept { return {}; }

  // How many distinct futures it watches.
  std::size_t size() const noexcept { return futures_.size(); }

 private:
  void advance() {
    if (!queue_) {  // moved from
      current_.reset();
      return;
    }
    const std::size_t index = queue_->next();
    if (index == detail::AsCompletedQueue::none) {
      current_.reset();
    } else {
      current_ = futures_[index];
    }
  }

  // Declared before queue_: the queue points into these futures' states and is
  // destroyed (uninstalled) first.
  std::vector<ThreadFuture<T>> futures_;
  std::unique_ptr<detail::AsCompletedQueue> queue_;
  std::optional<ThreadFuture<T>> current_;
  bool started_ = false;
};

template <class T>
AsCompleted<T> as_completed(const std::vector<ThreadFuture<T>>& fs,
                            std::optional<Duration> timeout = std::nullopt) {
  return AsCompleted<T>(fs, timeout);
}

}  // namespace uvaio::futures
