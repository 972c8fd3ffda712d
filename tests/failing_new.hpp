#pragma once

// Fault injection: replaces the global operator new (every form) and delete
// for the whole test binary, like counting_new.hpp, and can be armed to make
// one allocation fail with std::bad_alloc. Include it in exactly one source
// file of a binary.
//
// - fault::arm(n): the n-th allocation made by *this thread* from now on
//   fails (then the arming is spent). Thread-local, so that libuv's workers,
//   pool threads and spdlog are not hit unpredictably. fault::disarm() cancels
//   it; fault::hit() tells whether it fired; fault::seen() counts the
//   allocations this thread made while armed.
// - fault::arm_other_threads(n): the n-th allocation made by any thread other
//   than the calling one fails (for allocations a library thread makes, e.g. a
//   pool worker starting up). fault::other_hit() tells whether it fired.
// - fault::live(): operator new minus operator delete, every thread: a leak
//   shows as a count that does not return to its baseline.
//
// The nothrow forms return null instead of throwing, as the standard says.

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace fault {

inline std::atomic<long> g_live{0};
inline std::atomic<long> g_other_countdown{0};
inline std::atomic<bool> g_other_hit{false};
inline thread_local long t_countdown = 0;
inline thread_local long t_seen = 0;
inline thread_local bool t_hit = false;
inline thread_local bool t_exempt = false;  // the thread that called arm_other_threads

inline void arm(long n) noexcept {
  t_hit = false;
  t_seen = 0;
  t_countdown = n;
}
inline void disarm() noexcept { t_countdown = 0; }
inline bool hit() noexcept { return t_hit; }
inline long seen() noexcept { return t_seen; }

inline void arm_other_threads(long n) noexcept {
  t_exempt = true;
  g_other_hit.store(false);
  g_other_countdown.store(n);
}
inline void disarm_other_threads() noexcept {
  g_other_countdown.store(0);
  t_exempt = false;
}
inline bool other_hit() noexcept { return g_other_hit.load(); }

inline long live() noexcept { return g_live.load(std::memory_order_relaxed); }

inline void maybe_fail() {
  if (t_countdown > 0) {
    ++t_seen;
    if (--t_countdown == 0) {
      t_hit = true;
      throw std::bad_alloc();
    }
  }
  if (!t_exempt && g_other_countdown.load(std::memory_order_relaxed) > 0) {
    if (g_other_countdown.fetch_sub(1) == 1) {
      g_other_hit.store(true);
      throw std::bad_alloc();
    }
  }
}

inline void* alloc(std::size_t size) {
  maybe_fail();
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) throw std::bad_alloc();
  g_live.fetch_add(1, std::memory_order_relaxed);
  return p;
}

inline void* aligned_alloc(std::size_t size, std::align_val_t alignment) {
  maybe_fail();
  std::size_t align = static_cast<std::size_t>(alignment);
  if (align < sizeof(void*)) align = sizeof(void*);
  void* p = nullptr;
  if (::posix_memalign(&p, align, size == 0 ? 1 : size) != 0) throw std::bad_alloc();
  g_live.fetch_add(1, std::memory_order_relaxed);
  return p;
}

inline void release(void* p) noexcept {
  if (p == nullptr) return;
  g_live.fetch_sub(1, std::memory_order_relaxed);
  std::free(p);
}

}  // namespace fault

void* operator new(std::size_t size) { return fault::alloc(size); }
void* operator new[](std::size_t size) { return fault::alloc(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return fault::alloc(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return fault::alloc(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new(std::size_t size, std::align_val_t alignment) { return fault::aligned_alloc(size, alignment); }
void* operator new[](std::size_t size, std::align_val_t alignment) { return fault::aligned_alloc(size, alignment); }
void* operator new(std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  try {
    return fault::aligned_alloc(size, alignment);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  try {
    return fault::aligned_alloc(size, alignment);
  } catch (...) {
    return nullptr;
  }
}

void operator delete(void* p) noexcept { fault::release(p); }
void operator delete[](void* p) noexcept { fault::release(p); }
void operator delete(void* p, std::size_t) noexcept { fault::release(p); }
void operator delete[](void* p, std::size_t) noexcept { fault::release(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { fault::release(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { fault::release(p); }
void operator delete(void* p, std::align_val_t) noexcept { fault::release(p); }
void operator delete[](void* p, std::align_val_t) noexcept { fault::release(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { fault::release(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { fault::release(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { fault::release(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { fault::release(p); }
