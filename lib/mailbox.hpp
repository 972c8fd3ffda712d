#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

#include <uv.h>

#include "uvaio/detail/core.hpp"

namespace uvaio::detail {

// The loop's thread-safe inbox: call_soon_threadsafe callbacks and work
// completions from executors' threads, woken through one uv_async_t.
//
// Posting takes no lock: entries are pushed on an atomic stack (newest first)
// with one compare-and-swap, and only the post that finds the inbox empty calls
// uv_async_send -- every later one knows that a wake-up is already on its way
// and that the loop will take its entry with the rest. The loop takes the whole
// stack at once (take_all: one exchange) and reverses it, so entries come out
// in the order they were posted (each producer's order kept).
//
// It is reference counted (atomically) because work items that an executor
// still holds may post to it after their loop is gone: once closed, post()
// refuses and the poster lets go of the entry itself. close() waits until no
// poster is between its push and its uv_async_send, so the async handle is
// never closed under one.
class Mailbox {
 public:
  explicit Mailbox(uv_async_t* async) noexcept : async_(async) {}
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Any thread. False once the loop closed the mailbox.
  bool post(Runnable& entry) noexcept {
    posting_.fetch_add(1, std::memory_order_seq_cst);
    Runnable* head = head_.load(std::memory_order_seq_cst);
    do {
      if (head == closed_marker()) {
        posting_.fetch_sub(1, std::memory_order_release);
        return false;
      }
      entry.next_runnable_ = head;
    } while (!head_.compare_exchange_weak(head, &entry, std::memory_order_seq_cst, std::memory_order_seq_cst));
    if (head == nullptr) uv_async_send(async_);  // the inbox was empty: nobody has woken the loop yet
    posting_.fetch_sub(1, std::memory_order_release);
    return true;
  }

  // Loop thread: the whole list, oldest first (linked through next_runnable_).
  Runnable* take_all() noexcept {
    Runnable* head = head_.load(std::memory_order_acquire);
    do {
      if (head == nullptr || head == closed_marker()) return nullptr;
    } while (!head_.compare_exchange_weak(head, nullptr, std::memory_order_acquire, std::memory_order_acquire));
    return reversed(head);
  }

  // Loop thread: refuse further posts; returns what was still queued. Returns
  // only when no poster is left between its push and its uv_async_send.
  Runnable* close() noexcept {
    Runnable* head = head_.exchange(closed_marker(), std::memory_order_seq_cst);
    while (posting_.load(std::memory_order_acquire) != 0) std::this_thread::yield();  // a few instructions' wait
    return head == closed_marker() ? nullptr : reversed(head);
  }

  bool closed() const noexcept { return head_.load(std::memory_order_acquire) == closed_marker(); }

  // A cheap hint for the loop thread; take_all() is the truth.
  bool has_entries() const noexcept {
    Runnable* head = head_.load(std::memory_order_acquire);
    return head != nullptr && head != closed_marker();
  }

 private:
  ~Mailbox() = default;

  // Never the address of a Runnable: marks a closed mailbox.
  static Runnable* closed_marker() noexcept { return reinterpret_cast<Runnable*>(&closed_tag_); }
  static Runnable* reversed(Runnable* newest_first) noexcept {
    Runnable* oldest_first = nullptr;
    while (newest_first != nullptr) {
      Runnable* next = newest_first->next_runnable_;
      newest_first->next_runnable_ = oldest_first;
      oldest_first = newest_first;
      newest_first = next;
    }
    return oldest_first;
  }

  static inline char closed_tag_ = 0;
  std::atomic<Runnable*> head_{nullptr};
  std::atomic<std::uint32_t> posting_{0};
  std::atomic<std::uint32_t> refs_{1};
  uv_async_t* async_;
};

}  // namespace uvaio::detail
