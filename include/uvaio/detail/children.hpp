#pragma once

// How the combinators treat what they are given: an Async becomes a Task they
// own (nobody else can reach it); a Task or a Future stays the caller's.

#include <concepts>
#include <exception>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "uvaio/async.hpp"
#include "uvaio/future.hpp"
#include "uvaio/outcome.hpp"
#include "uvaio/task.hpp"

namespace uvaio::detail {

template <class A>
struct child_traits {
  static constexpr bool is_child = false;
};
template <class T>
struct child_traits<Async<T>> {
  static constexpr bool is_child = true;
  static constexpr bool owned = true;
  using value_type = T;
  using handle_type = Task<T>;
  static Task<T> start(Async<T>&& coro) { return create_task(std::move(coro)); }
};
template <class T>
struct child_traits<Task<T>> {
  static constexpr bool is_child = true;
  static constexpr bool owned = false;
  using value_type = T;
  using handle_type = Task<T>;
  static Task<T> start(const Task<T>& task) { return task; }
};
template <class T>
struct child_traits<Future<T>> {
  static constexpr bool is_child = true;
  static constexpr bool owned = false;
  using value_type = T;
  using handle_type = Future<T>;
  static Future<T> start(const Future<T>& future) { return future; }
};

template <class A>
concept Awaitable = child_traits<std::remove_cvref_t<A>>::is_child;

template <class A>
using traits_of = child_traits<std::remove_cvref_t<A>>;
template <class A>
using child_value_t = typename traits_of<A>::value_type;
template <class A>
using child_handle_t = typename traits_of<A>::handle_type;

// gather's tuple and vector hold std::monostate for a void result.
template <class T>
using gather_value_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

// Starts an Async as a task on the running loop (it must be an rvalue: the
// combinator consumes it); copies a Task or Future handle.
template <class A>
child_handle_t<A> start_child(A&& awaitable) {
  if constexpr (traits_of<A>::owned) {
    static_assert(!std::is_lvalue_reference_v<A>,
                  "pass an Async to a combinator as an rvalue (std::move): the combinator consumes it");
    return traits_of<A>::start(std::forward<A>(awaitable));
  } else {
    return traits_of<A>::start(awaitable);
  }
}

// The result of a done child: moved out of a task the combinator owns (or of a
// move-only value), copied from a handle the caller still holds.
template <class T, class H>
gather_value_t<T> take_value(const H& handle, bool owned) {
  if constexpr (std::is_void_v<T>) {
    handle.result();
    return std::monostate{};
  } else if constexpr (std::is_copy_constructible_v<T>) {
    if (owned) return T(std::move(handle.result()));
    return T(handle.result());
  } else {
    return T(std::move(handle.result()));
  }
}

template <class T, class H>
Outcome<T> take_outcome(const H& handle, bool owned) {
  try {
    if constexpr (std::is_void_v<T>) {
      handle.result();
      return Outcome<void>();
    } else {
      return Outcome<T>(take_value<T>(handle, owned));
    }
  } catch (...) {  // the child's exception, CancelledError included, becomes its outcome
    return Outcome<T>(std::current_exception());
  }
}

template <class H>
std::vector<FutureCore*> states_of(const std::vector<H>& handles) {
  std::vector<FutureCore*> states;
  states.reserve(handles.size());
  for (const H& h : handles) states.push_back(h.state());
  return states;
}

// Starts the elements of a range (Asyncs are moved out of it).
template <class R>
auto start_children(R&& awaitables) {
  using A = std::ranges::range_value_t<R>;
  std::vector<child_handle_t<A>> handles;
  if constexpr (std::ranges::sized_range<R>) handles.reserve(std::ranges::size(awaitables));
  for (auto&& a : awaitables) {
    if constexpr (traits_of<A>::owned) {
      handles.push_back(traits_of<A>::start(std::move(a)));
    } else {
      handles.push_back(traits_of<A>::start(a));
    }
  }
  return handles;
}

// asyncio.gather's waiting: every child done, or (unless `settle`) the first
// failure, after which the owned children still running are cancelled and
// awaited and the failure is rethrown. Cancelling the waiting task cancels
// every child and throws CancelledError once they are all done.
UVAIO_API Async<void> gather_wait(std::vector<FutureCore*> children, std::vector<char> owned, bool settle);

}  // namespace uvaio::detail
