#pragma once

#include <cstddef>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "uvaio/async.hpp"
#include "uvaio/detail/children.hpp"
#include "uvaio/outcome.hpp"

namespace uvaio {

// asyncio.gather, with one deliberate difference.
//
// gather(a, b, c) runs its arguments concurrently and returns their results as
// a tuple, in argument order (a void result is std::monostate); gather(range)
// returns a vector in input order. Arguments may be Async<T> (started as tasks
// at once, on the running loop, and owned by the gather), Task<T> or Future<T>
// (the caller's). Loop thread only; it completes on the loop thread.
//
// The first child to fail (an exception, or a cancellation of its own: asyncio
// item 65) makes the gather fail with that exception. Unlike asyncio, the
// siblings the gather started from Asyncs are then cancelled and awaited
// before the exception propagates: nobody else holds them, so leaving them
// running (asyncio's choice, bpo-31452) would leak work that no one can observe
// or stop. Tasks and Futures you passed are yours and are left running.
// Cancelling the task that awaits the gather cancels every child and throws
// CancelledError once they are all done (item 66).
//
// Results are moved out of the tasks the gather owns, copied from the handles
// you passed (moved, for move-only types).
template <class... Aws>
  requires(detail::Awaitable<Aws> && ...)
Async<std::tuple<detail::gather_value_t<detail::child_value_t<Aws>>...>> gather(Aws&&... aws);

template <std::ranges::input_range R>
  requires detail::Awaitable<std::ranges::range_value_t<R>>
Async<std::vector<detail::gather_value_t<detail::child_value_t<std::ranges::range_value_t<R>>>>> gather(
    R&& awaitables);

// Waits for every child and reports each as an Outcome<T> (value or exception,
// CancelledError for a cancelled child); it never throws for a child, only for
// the cancellation of the task awaiting it (which cancels every child first).
template <class... Aws>
  requires(detail::Awaitable<Aws> && ...)
Async<std::tuple<Outcome<detail::child_value_t<Aws>>...>> gather_settled(Aws&&... aws);

template <std::ranges::input_range R>
  requires detail::Awaitable<std::ranges::range_value_t<R>>
Async<std::vector<Outcome<detail::child_value_t<std::ranges::range_value_t<R>>>>> gather_settled(
    R&& awaitables);

// --- implementation --------------------------------------------------------------

namespace detail {

// The handles arrive in a tuple built with braces, whose elements are
// initialised left to right: the Asyncs start in argument order, as asyncio's.
template <bool... Owned, class... H>
Async<std::tuple<gather_value_t<typename H::value_type>...>> gather_tuple(std::tuple<H...> handles) {
  Async<void> waiting = std::apply(
      [](const H&... h) { return gather_wait({h.state()...}, {Owned...}, false); }, handles);
  co_await std::move(waiting);
  co_return std::apply(
      [](const H&... h) {
        return std::tuple<gather_value_t<typename H::value_type>...>(take_value<typename H::value_type>(h, Owned)...);
      },
      handles);
}

template <bool... Owned, class... H>
Async<std::tuple<Outcome<typename H::value_type>...>> gather_settled_tuple(std::tuple<H...> handles) {
  Async<void> waiting = std::apply(
      [](const H&... h) { return gather_wait({h.state()...}, {Owned...}, true); }, handles);
  co_await std::move(waiting);
  co_return std::apply(
      [](const H&... h) {
        return std::tuple<Outcome<typename H::value_type>...>(take_outcome<typename H::value_type>(h, Owned)...);
      },
      handles);
}

template <class H>
Async<std::vector<gather_value_t<typename H::value_type>>> gather_vector(std::vector<H> handles, bool owned) {
  Async<void> waiting = gather_wait(states_of(handles), std::vector<char>(handles.size(), owned), false);
  co_await std::move(waiting);
  std::vector<gather_value_t<typename H::value_type>> results;
  results.reserve(handles.size());
  for (const H& h : handles) results.push_back(take_value<typename H::value_type>(h, owned));
  co_return results;
}

template <class H>
Async<std::vector<Outcome<typename H::value_type>>> gather_settled_vector(std::vector<H> handles, bool owned) {
  Async<void> waiting = gather_wait(states_of(handles), std::vector<char>(handles.size(), owned), true);
  co_await std::move(waiting);
  std::vector<Outcome<typename H::value_type>> results;
  results.reserve(handles.size());
  for (const H& h : handles) results.push_back(take_outcome<typename H::value_type>(h, owned));
  co_return results;
}

}  // namespace detail

template <class... Aws>
  requires(detail::Awaitable<Aws> && ...)
Async<std::tuple<detail::gather_value_t<detail::child_value_t<Aws>>...>> gather(Aws&&... aws) {
  return detail::gather_tuple<detail::traits_of<Aws>::owned...>(
      std::tuple<detail::child_handle_t<Aws>...>{detail::start_child(std::forward<Aws>(aws))...});
}

template <std::ranges::input_range R>
  requires detail::Awaitable<std::ranges::range_value_t<R>>
Async<std::vector<detail::gather_value_t<detail::child_value_t<std::ranges::range_value_t<R>>>>> gather(
    R&& awaitables) {
  using A = std::ranges::range_value_t<R>;
  return detail::gather_vector(detail::start_children(std::forward<R>(awaitables)), detail::traits_of<A>::owned);
}

template <class... Aws>
  requires(detail::Awaitable<Aws> && ...)
Async<std::tuple<Outcome<detail::child_value_t<Aws>>...>> gather_settled(Aws&&... aws) {
  return detail::gather_settled_tuple<detail::traits_of<Aws>::owned...>(
      std::tuple<detail::child_handle_t<Aws>...>{detail::start_child(std::forward<Aws>(aws))...});
}

template <std::ranges::input_range R>
  requires detail::Awaitable<std::ranges::range_value_t<R>>
Async<std::vector<Outcome<detail::child_value_t<std::ranges::range_value_t<R>>>>> gather_settled(
    R&& awaitables) {
  using A = std::ranges::range_value_t<R>;
  return detail::gather_settled_vector(detail::start_children(std::forward<R>(awaitables)),
                                       detail::traits_of<A>::owned);
}

}  // namespace uvaio
