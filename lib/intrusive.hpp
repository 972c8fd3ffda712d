#pragma once

// The lists the loop keeps without allocating: they thread through pointers
// that live in the elements themselves, and own nothing.

#include "uvaio/detail/core.hpp"

namespace uvaio::detail {

// Doubly linked through the members Prev and Next of T: O(1) insert and remove.
template <class T, T* T::*Prev, T* T::*Next>
class IntrusiveList {
 public:
  void push_front(T& item) noexcept {
    item.*Prev = nullptr;
    item.*Next = first_;
    if (first_ != nullptr) first_->*Prev = &item;
    first_ = &item;
  }
  void remove(T& item) noexcept {
    if (item.*Prev != nullptr) {
      item.*Prev->*Next = item.*Next;
    } else if (first_ == &item) {
      first_ = item.*Next;
    }
    if (item.*Next != nullptr) item.*Next->*Prev = item.*Prev;
    item.*Prev = item.*Next = nullptr;
  }
  T* first() const noexcept { return first_; }
  static T* next(const T& item) noexcept { return item.*Next; }
  bool empty() const noexcept { return first_ == nullptr; }
  // Forgets every element (their links are left as they are).
  void clear() noexcept { first_ = nullptr; }

 private:
  T* first_ = nullptr;
};

// A FIFO of Runnables linked through Runnable::next_runnable_.
class RunnableFifo {
 public:
  bool empty() const noexcept { return first_ == nullptr; }
  Runnable* last() const noexcept { return last_; }

  void push(Runnable& entry) noexcept {
    entry.next_runnable_ = nullptr;
    if (last_ != nullptr) {
      last_->next_runnable_ = &entry;
    } else {
      first_ = &entry;
    }
    last_ = &entry;
  }
  // Appends a list taken from another RunnableFifo, keeping its order.
  void splice(Runnable* first) noexcept {
    if (first == nullptr) return;
    Runnable* last = first;
    while (last->next_runnable_ != nullptr) last = last->next_runnable_;
    if (last_ != nullptr) {
      last_->next_runnable_ = first;
    } else {
      first_ = first;
    }
    last_ = last;
  }
  Runnable* pop() noexcept {
    Runnable* entry = first_;
    first_ = entry->next_runnable_;
    if (first_ == nullptr) last_ = nullptr;
    entry->next_runnable_ = nullptr;
    return entry;
  }
  // The whole list, oldest first; the FIFO is empty afterwards.
  Runnable* take_all() noexcept {
    Runnable* first = first_;
    first_ = last_ = nullptr;
    return first;
  }

 private:
  Runnable* first_ = nullptr;
  Runnable* last_ = nullptr;
};

// Walks a list taken with take_all(), unlinking each entry before fn sees it.
template <class F>
void for_each_entry(Runnable* first, F&& fn) {
  while (first != nullptr) {
    Runnable* next = first->next_runnable_;
    first->next_runnable_ = nullptr;
    fn(*first);
    first = next;
  }
}

}  // namespace uvaio::detail
