#pragma once

#include <exception>
#include <string>
#include <type_traits>
#include <utility>

#include "uvaio/detail/core.hpp"
#include "uvaio/detail/future_handle.hpp"

namespace uvaio {

namespace detail {
template <class T>
class FutureState : public FutureCore {
 public:
  using value_type = T;
  static constexpr const char* handle_name = "Future";
  using FutureCore::FutureCore;

  ValueSlot<T> value_;
};
}  // namespace detail

// asyncio.Future: a single-assignment slot bound to one loop. Use it from the
// loop's thread only (set_result, cancel, callbacks); awaiting tasks and done
// callbacks resume on that thread, through the ready queue, in registration
// order. Copies are handles to one shared state, which lives while a handle,
// an awaiting task or a pending callback refers to it. An exception nobody
// retrieved is reported ("Future exception was never retrieved") when the last
// handle goes. Throws InvalidStateError on setting twice or reading early.
template <class T = void>
class Future : public detail::FutureHandle<Future<T>, detail::FutureState<T>> {
  using Base = detail::FutureHandle<Future<T>, detail::FutureState<T>>;

 public:
  Future() noexcept = default;
  Future(detail::adopt_t tag, detail::FutureState<T>* state) noexcept : Base(tag, state) {}
  Future(detail::share_t tag, detail::FutureState<T>* state) noexcept : Base(tag, state) {}

  // Pending -> cancelled; false if already done. Awaiters get CancelledError(message).
  bool cancel(std::string message = {}) const { return this->core().cancel(std::move(message)); }

  template <class... U>
    requires(std::is_void_v<T> ? sizeof...(U) == 0 : std::is_constructible_v<T, U&&...>)
  void set_result(U&&... value) const {
    auto& s = this->core();
    s.check_can_set();
    s.value_.emplace(std::forward<U>(value)...);
    s.mark_result_set();
  }
  void set_exception(std::exception_ptr error) const { this->core().set_exception(std::move(error)); }
  template <class E>
    requires(!std::is_same_v<std::decay_t<E>, std::exception_ptr>)
  void set_exception(E&& error) const {
    set_exception(std::make_exception_ptr(std::forward<E>(error)));
  }
};

}  // namespace uvaio
