#pragma once

// asyncio's queues for the tasks of one loop: Queue (FIFO), LifoQueue and
// PriorityQueue, with asyncio 3.13's shutdown().

#include <algorithm>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "uvaio/detail/core.hpp"
#include "uvaio/detail/waiters.hpp"
#include "uvaio/errors.hpp"

namespace uvaio {

namespace detail {

// The orders a queue can hand its items out in. Each has push (a new item),
// pop (the next item), unget (an item a woken getter gave back: it comes out
// next again), size, empty and clear.

template <class T>
class FifoBuffer {
 public:
  std::size_t size() const noexcept { return items_.size(); }
  bool empty() const noexcept { return items_.empty(); }
  void push(T&& item) { items_.push_back(std::move(item)); }
  void unget(T&& item) { items_.push_front(std::move(item)); }
  T pop() {
    T item(std::move(items_.front()));
    items_.pop_front();
    return item;
  }
  void clear() noexcept { items_.clear(); }

 private:
  std::deque<T> items_;
};

template <class T>
class LifoBuffer {
 public:
  std::size_t size() const noexcept { return items_.size(); }
  bool empty() const noexcept { return items_.empty(); }
  void push(T&& item) { items_.push_back(std::move(item)); }
  void unget(T&& item) { items_.push_back(std::move(item)); }
  T pop() {
    T item(std::move(items_.back()));
    items_.pop_back();
    return item;
  }
  void clear() noexcept { items_.clear(); }

 private:
  std::vector<T> items_;
};

// A binary heap (std::push_heap) of the items plus a sequence number, so that
// items that compare equal come out in the order they were put.
template <class T, class Compare>
class PriorityBuffer {
 public:
  std::size_t size() const noexcept { return heap_.size(); }
  bool empty() const noexcept { return heap_.empty(); }
  void push(T&& item) { insert(std::move(item), next_seq_++); }
  // Before everything that compares equal to it, as if never taken out.
  void unget(T&& item) { insert(std::move(item), first_seq_--); }
  T pop() {
    std::pop_heap(heap_.begin(), heap_.end(), later());
    try {
      T item(std::move(heap_.back().item));
      heap_.pop_back();
      return item;
    } catch (...) {
      std::push_heap(heap_.begin(), heap_.end(), later());
      throw;
    }
  }
  void clear() noexcept { heap_.clear(); }

 private:
  struct Entry {
    std::uint64_t seq;
    T item;
  };
  // std::*_heap keep the greatest element first; "greatest" here is the entry
  // that comes out first: the lowest item (asyncio's heapq order), then the
  // oldest.
  auto later() {
    return [this](const Entry& a, const Entry& b) {
      if (compare_(a.item, b.item)) return false;
      if (compare_(b.item, a.item)) return true;
      return a.seq > b.seq;
    };
  }
  void insert(T&& item, std::uint64_t seq) {
    heap_.push_back(Entry{seq, std::move(item)});
    std::push_heap(heap_.begin(), heap_.end(), later());
  }

  static constexpr std::uint64_t middle = std::uint64_t{1} << 63;
  std::vector<Entry> heap_;
  [[no_unique_address]] Compare compare_{};
  std::uint64_t next_seq_ = middle;
  std::uint64_t first_seq_ = middle - 1;
};

// Everything Queue, LifoQueue and PriorityQueue share (see Queue).
template <class T, class Buffer>
class BasicQueue {
 public:
  class GetAwaiter;
  class PutAwaiter;
  class JoinAwaiter;
  using value_type = T;

  explicit BasicQueue(std::size_t maxsize = 0) : maxsize_(maxsize) {}
  BasicQueue(const BasicQueue&) = delete;
  BasicQueue& operator=(const BasicQueue&) = delete;
  ~BasicQueue() = default;

  // The items a get_nowait() could take now.
  std::size_t qsize() const noexcept { return buffer_.size(); }
  bool empty() const noexcept { return buffer_.empty(); }
  // True when a put() would wait. Counts, besides qsize(), the items already
  // handed to woken getters and the slots promised to woken putters until
  // those tasks resume. Never true with maxsize 0.
  bool full() const noexcept {
    return maxsize_ > 0 && buffer_.size() + in_transit_ + reserved_ >= maxsize_;
  }
  std::size_t maxsize() const noexcept { return maxsize_; }
  bool is_shutdown() const noexcept { return shutdown_; }

  // `co_await q.put(std::move(item));` -- waits while full(). The item is
  // moved (or copied) in only when the put succeeds: after CancelledError or
  // QueueShutDown the argument still holds it. The awaiter refers to the
  // argument, so await it at once. (With g++ 12, make an item that owns
  // something in its own statement, not inside the co_await expression.)
  [[nodiscard]] PutAwaiter put(T&& item) noexcept { return PutAwaiter(*this, &item, true); }
  [[nodiscard]] PutAwaiter put(const T& item) noexcept requires std::copy_constructible<T> {
    return PutAwaiter(*this, &item, false);
  }
  // QueueShutDown after shutdown(); QueueFull if a put() would wait. The
  // argument is moved from only when the item goes in.
  void put_nowait(T&& item) {
    check_can_put_nowait();
    admit(std::move(item));
  }
  void put_nowait(const T& item) requires std::copy_constructible<T> {
    check_can_put_nowait();
    T copy(item);
    admit(std::move(copy));
  }

  // `T item = co_await q.get();` -- waits while the queue is empty.
  // QueueShutDown once the queue is shut down and empty.
  [[nodiscard]] GetAwaiter get() noexcept { return GetAwaiter(*this); }
  // QueueEmpty, or QueueShutDown once the queue is shut down and empty.
  T get_nowait() {
    if (buffer_.empty()) {
      if (shutdown_) throw QueueShutDown();
      throw QueueEmpty();
    }
    T item = buffer_.pop();
    wake_putters();
    return item;
  }

  // One item taken out has been dealt with; ValueError past the number put.
  void task_done() {
    if (unfinished_ == 0) throw ValueError("task_done() called too many times");
    if (--unfinished_ == 0) joiners_.wake_all();
  }
  // `co_await q.join();` -- waits until task_done() was called for every item
  // put (at once if there is none).
  [[nodiscard]] JoinAwaiter join() noexcept { return JoinAwaiter(*this); }

  // asyncio 3.13: put and put_nowait throw QueueShutDown from now on; get and
  // get_nowait once the queue is empty -- at once with `immediate`, which also
  // drops the items (counting them as done for join()). Waiting putters and
  // getters are woken with QueueShutDown. Items already handed to a woken
  // getter are delivered to it.
  void shutdown(bool immediate = false) {
    shutdown_ = true;
    if (immediate) {
      immediate_ = true;
      const std::size_t dropped = buffer_.size();
      buffer_.clear();
      unfinished_ -= std::min(unfinished_, dropped);
      if (unfinished_ == 0) joiners_.wake_all();
    }
    // Getters wait only while the buffer is empty: they all fail.
    getters_.wake_all();
    putters_.wake_all();
  }

  // --- the awaiters (in the awaiting frame; made by put/get/join) ---------------

  class [[nodiscard]] GetAwaiter final : public Waiter {
   public:
    explicit GetAwaiter(BasicQueue& queue) noexcept : queue_(&queue) {}
    ~GetAwaiter() override { leave(); }

    bool await_ready() {
      if (queue_->buffer_.empty()) return queue_->shutdown_;  // then await_resume throws
      item_.emplace(queue_->buffer_.pop());
      queue_->wake_putters();
      return true;
    }
    bool await_suspend(std::coroutine_handle<> h) {
      return suspend_in(queue_->getters_, queue_->binding_, "Queue", "get", h);
    }
    T await_resume() {
      if (finish_wait("Queue") == Wake::granted) {
        --queue_->in_transit_;
        queue_->wake_putters();
      }
      if (!item_) throw QueueShutDown();
      return T(std::move(*item_));
    }

   private:
    friend class BasicQueue;
    // Woken with an item but cancelled, or destroyed, before resuming.
    void pass_on() noexcept override {
      --queue_->in_transit_;
      queue_->give_back(std::move(*item_));
      item_.reset();
    }

    BasicQueue* queue_;
    std::optional<T> item_;
  };

  class [[nodiscard]] PutAwaiter final : public Waiter {
   public:
    PutAwaiter(BasicQueue& queue, const T* item, bool movable) noexcept
        : queue_(&queue), item_(item), movable_(movable) {}
    ~PutAwaiter() override { leave(); }

    bool await_ready() {
      if (queue_->shutdown_) return true;  // then await_resume throws
      // FIFO: behind the putters already waiting, even if a slot is free.
      if (queue_->putters_.has_waiters() || queue_->full()) return false;
      put_item();
      done_ = true;
      return true;
    }
    bool await_suspend(std::coroutine_handle<> h) {
      return suspend_in(queue_->putters_, queue_->binding_, "Queue", "put", h);
    }
    void await_resume() {
      const Wake wake = finish_wait("Queue");
      if (done_) return;
      if (wake == Wake::granted) {
        // A slot was promised to us; asyncio also refuses the put if the queue
        // was shut down meanwhile.
        --queue_->reserved_;
        if (!queue_->shutdown_) {
          try {
            put_item();
          } catch (...) {
            queue_->wake_putters();
            throw;
          }
          return;
        }
      }
      throw QueueShutDown();
    }

   private:
    friend class BasicQueue;
    void put_item() {
      if constexpr (std::copy_constructible<T>) {
        if (!movable_) {
          T copy(*item_);
          queue_->admit(std::move(copy));
          return;
        }
      }
      // put(T&&) gave us a non-const object.
      queue_->admit(std::move(*const_cast<T*>(item_)));
    }
    // Promised a slot but cancelled, or destroyed, before resuming.
    void pass_on() noexcept override {
      --queue_->reserved_;
      queue_->wake_putters();
    }

    BasicQueue* queue_;
    const T* item_;
    bool movable_;
    bool done_ = false;
  };

  class [[nodiscard]] JoinAwaiter final : public Waiter {
   public:
    explicit JoinAwaiter(BasicQueue& queue) noexcept : queue_(&queue) {}
    ~JoinAwaiter() override { leave(); }

    bool await_ready() const noexcept { return queue_->unfinished_ == 0; }
    bool await_suspend(std::coroutine_handle<> h) {
      return suspend_in(queue_->joiners_, queue_->binding_, "Queue", "join", h);
    }
    void await_resume() { (void)finish_wait("Queue"); }

   private:
    BasicQueue* queue_;
  };

 private:
  void check_can_put_nowait() const {
    if (shutdown_) throw QueueShutDown();
    if (putters_.has_waiters() || full()) throw QueueFull();
  }

  // A new item goes straight to the first waiting getter if there is one (the
  // buffer is then empty: getters wait only while it is), else into the buffer.
  void admit(T&& item) {
    if (Waiter* first = getters_.first_waiter()) {
      static_cast<GetAwaiter&>(*first).item_.emplace(std::move(item));
      ++in_transit_;
      getters_.wake_first(true);
    } else {
      buffer_.push(std::move(item));
    }
    ++unfinished_;
  }

  // Capacity freed: promise the free slots to the putters that wait, in order.
  void wake_putters() noexcept {
    while (!shutdown_ && putters_.has_waiters() && !full()) {
      ++reserved_;
      putters_.wake_first(true);
    }
  }

  // An item a woken getter will not take: to the next getter, or back where the
  // next get() finds it first. Its slot was still counted (in_transit_), so
  // this never goes past maxsize.
  void give_back(T&& item) noexcept {
    if (!immediate_) {
      try {
        if (Waiter* first = getters_.first_waiter()) {
          static_cast<GetAwaiter&>(*first).item_.emplace(std::move(item));
          ++in_transit_;
          getters_.wake_first(true);
        } else {
          buffer_.unget(std::move(item));
        }
        return;
      } catch (...) {
        report_callback_exception(
            binding_.loop(), std::current_exception(),
            "Queue: an item a cancelled getter gave back could not be queued again");
      }
    }
    // Dropped (shut down immediately, or it could not be stored): count it as
    // done, as shutdown(immediate) does, so that join() does not hang.
    if (unfinished_ > 0 && --unfinished_ == 0) joiners_.wake_all();
  }

  Buffer buffer_;
  std::size_t maxsize_;
  std::size_t in_transit_ = 0;  // items handed to woken getters that have not resumed
  std::size_t reserved_ = 0;    // slots promised to woken putters that have not resumed
  std::size_t unfinished_ = 0;  // put and not yet task_done()
  bool shutdown_ = false;
  bool immediate_ = false;
  WaitList getters_;
  WaitList putters_;
  WaitList joiners_;
  LoopBinding binding_;
};

}  // namespace detail

// asyncio.Queue: a FIFO of T (move-only types are fine) for the tasks of one
// loop, bounded by maxsize (0: unbounded). Loop thread only; it binds to the
// loop of the first task that waits on it (RuntimeError from a task of another
// loop, or when waiting outside a task). Waiting getters and putters are
// served in the order they started waiting; a new item goes straight to the
// first waiting getter, and a woken getter or putter that is cancelled before
// it resumes passes its item or slot on, so nothing is lost. The items live in
// a std::deque the queue owns; waiting allocates nothing. Destroying a queue
// that tasks wait on wakes them with RuntimeError.
template <class T>
class Queue : public detail::BasicQueue<T, detail::FifoBuffer<T>> {
 public:
  using detail::BasicQueue<T, detail::FifoBuffer<T>>::BasicQueue;
};

// asyncio.LifoQueue: a Queue that hands out the most recently put item first
// (a std::vector). Same rules as Queue.
template <class T>
class LifoQueue : public detail::BasicQueue<T, detail::LifoBuffer<T>> {
 public:
  using detail::BasicQueue<T, detail::LifoBuffer<T>>::BasicQueue;
};

// asyncio.PriorityQueue: a Queue that hands out the lowest item first, as
// asyncio's heapq does (with Compare = std::less<T>: the item no other compares
// less than); equal items in the order they were put. A binary heap in a
// std::vector. Same rules as Queue.
template <class T, class Compare = std::less<T>>
class PriorityQueue : public detail::BasicQueue<T, detail::PriorityBuffer<T, Compare>> {
 public:
  using detail::BasicQueue<T, detail::PriorityBuffer<T, Compare>>::BasicQueue;
};

}  // namespace uvaio
