#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <new>

#include "support.hpp"

// This binary replaces the global operator new to count allocations, in every
// thread of the process (libuv's workers included). The replacement also works
// under AddressSanitizer (checked with g++ 12), so nothing is skipped there.

namespace {

std::atomic<std::size_t> g_allocations{0};

std::size_t allocations() noexcept { return g_allocations.load(std::memory_order_relaxed); }

void* counted_alloc(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}

void* counted_aligned_alloc(std::size_t size, std::align_val_t alignment) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  std::size_t align = static_cast<std::size_t>(alignment);
  if (align < sizeof(void*)) align = sizeof(void*);
  void* p = nullptr;
  if (::posix_memalign(&p, align, size == 0 ? 1 : size) != 0) throw std::bad_alloc();
  return p;
}

}  // namespace

void* operator new(std::size_t size) { return counted_alloc(size); }
void* operator new[](std::size_t size) { return counted_alloc(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new(std::size_t size, std::align_val_t alignment) { return counted_aligned_alloc(size, alignment); }
void* operator new[](std::size_t size, std::align_val_t alignment) { return counted_aligned_alloc(size, alignment); }
void* operator new(std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  try {
    return counted_aligned_alloc(size, alignment);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  try {
    return counted_aligned_alloc(size, alignment);
  } catch (...) {
    return nullptr;
  }
}

void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }

using namespace std::chrono_literals;

TEST_SUITE_BEGIN("alloc");

namespace {

struct Counts {
  std::size_t submit = 0;
  std::size_t await = 0;
  int value = 0;
};

uvaio::Async<void> measure_run_in_executor(uvaio::Loop& loop, Counts* out) {
  // Warm-up: the default executor is created, libuv's threadpool started.
  auto warm = loop.run_in_executor(nullptr, [] { return 1; });
  int w = co_await warm;
  CHECK(w == 1);

  const std::size_t before = allocations();
  auto f = loop.run_in_executor(nullptr, [] { return 41; });
  const std::size_t submitted = allocations();
  int v = co_await f;
  const std::size_t awaited = allocations();

  out->submit = submitted - before;
  out->await = awaited - submitted;
  out->value = v;
}

TEST_CASE("a run_in_executor call allocates one block, and awaiting its completion allocates nothing") {
  uvaio::Loop loop;
  Counts counts;
  loop.run_until_complete(measure_run_in_executor(loop, &counts));
  CHECK(counts.value == 41);
  CHECK(counts.submit == 1);
  CHECK(counts.await == 0);
}

uvaio::Async<void> measure_sleeps(std::size_t* during) {
  co_await uvaio::sleep(1ms);  // warm-up: the timer heap has room for one timer
  const std::size_t before = allocations();
  co_await uvaio::sleep(1ms);
  co_await uvaio::sleep(0s);
  *during = allocations() - before;
}

TEST_CASE("a pending sleep allocates nothing") {
  std::size_t during = 99;
  uvaio::Loop loop;
  loop.run_until_complete(measure_sleeps(&during));
  CHECK(during == 0);
}

uvaio::Async<void> measure_resume(uvaio::Loop& loop, std::size_t* during) {
  uvaio::Future<int> f = loop.create_future<int>();
  loop.call_soon([f] { f.set_result(3); });
  const std::size_t before = allocations();
  int v = co_await f;
  *during = allocations() - before;
  CHECK(v == 3);
}

TEST_CASE("resuming a task that awaited a future allocates nothing") {
  std::size_t during = 99;
  uvaio::Loop loop;
  loop.run_until_complete(measure_resume(loop, &during));
  CHECK(during == 0);
}

}  // namespace

TEST_SUITE_END();
