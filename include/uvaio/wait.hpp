#pragma once

#include <coroutine>
#include <cstddef>
#include <deque>
#include <exception>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

#include "uvaio/async.hpp"
#include "uvaio/detail/children.hpp"
#include "uvaio/detail/core.hpp"
#include "uvaio/detail/wait_set.hpp"
#include "uvaio/errors.hpp"
#include "uvaio/export.hpp"

namespace uvaio {

// --- wait ----------------------------------------------------------------------

enum class ReturnWhen { first_completed, first_exception, all_completed };

template <class H>
struct WaitResult {
  std::vector<H> done;     // the handles given, in input order
  std::vector<H> pending;  // likewise
};

// asyncio.wait: waits until `when` holds or `timeout` passes, and splits the
// given tasks/futures into done and pending. It never throws for a child or on
// time-out (pending then holds the rest), and it cancels nothing: cancelling the
// task inside wait() throws CancelledError there and leaves the children
// running. Duplicates are collapsed. Throws ValueError("Set of Tasks/Futures is
// empty.") for an empty range; an Async is refused at compile time (asyncio:
// "Passing coroutines is forbidden, use tasks explicitly.").
template <std::ranges::input_range R>
auto wait(R&& handles, ReturnWhen when = ReturnWhen::all_completed,
          std::optional<Duration> timeout = std::nullopt);

// --- wait_for, timeout --------------------------------------------------------

// asyncio.wait_for (3.12 semantics, built on the timeout machinery): awaits `aw`
// (an Async runs in the current task; a Task or Future is awaited); if
// `timeout` passes first, the current task is cancelled so that the
// cancellation reaches what it awaits, wait_for waits until that has finished,
// and then throws TimeoutError (nesting the CancelledError). If the awaited
// work swallows the cancellation and returns a value, that value is returned
// (item 73); another exception it throws propagates instead. A timeout <= 0:
// a done Task/Future gives its result (CancelledError if it was cancelled
// before: that is not a time-out); an Async is never started; a pending
// Task/Future is cancelled and awaited (item 71). An unset timeout waits as
// long as it takes. Cancelling the task running wait_for cancels the awaited
// work and throws CancelledError, never TimeoutError (item 72): the request
// counting of Task::cancelling()/uncancel() tells the two apart, also when
// timeouts nest.
template <detail::Awaitable A>
Async<detail::child_value_t<A>> wait_for(A&& aw, std::optional<Duration> timeout);

// wait_for with an absolute deadline on the loop's clock.
template <detail::Awaitable A>
Async<detail::child_value_t<A>> timeout_at(TimePoint deadline, A&& aw);

// asyncio.timeout(delay) applied to one awaitable: the same as wait_for.
template <detail::Awaitable A>
Async<detail::child_value_t<A>> timeout(Duration delay, A&& aw) {
  return wait_for(std::forward<A>(aw), delay);
}

// --- shield ---------------------------------------------------------------------

// asyncio.shield: awaits the task, but cancelling the awaiting task does not
// cancel it -- the awaiter gets CancelledError at once and the task runs on
// (the loop owns it). If it then fails, its exception is reported to the loop's
// exception handler once ("Exception in shielded Task 'name'"). Cancelling the
// task itself still cancels the awaiter. An Async is started as a task first.
template <class T>
Async<T> shield(Task<T> task);
template <class T>
Async<T> shield(Async<T>&& coro) {
  return shield(create_task(std::move(coro)));
}

// --- as_completed ---------------------------------------------------------------

template <class H>
class AsCompleted;

// asyncio.as_completed: iterate to get one awaitable per input; the i-th one
// awaited yields the result of the i-th input to finish (or rethrows its
// exception). Asyncs are started as tasks. With a timeout, once it passes the
// awaitables not yet satisfied throw TimeoutError; nothing is cancelled.
//   for (auto next : as_completed(tasks)) { T v = co_await next; ... }
template <std::ranges::input_range R>
  requires detail::Awaitable<std::ranges::range_value_t<R>>
AsCompleted<detail::child_handle_t<std::ranges::range_value_t<R>>> as_completed(
    R&& awaitables, std::optional<Duration> timeout = std::nullopt);

// --- implementation -----------------------------------------------------------

namespace detail {

// The timeout scope of wait_for: armed in the current task; on expiry it
// cancels the task (asyncio's Timeout). exit() disarms it and turns the task's
// own CancelledError into TimeoutError when this scope caused it.
class UVAIO_API DeadlineScope final : public TimerNode {
 public:
  explicit DeadlineScope(TimePoint deadline);
  DeadlineScope(const DeadlineScope&) = delete;
  DeadlineScope& operator=(const DeadlineScope&) = delete;
  ~DeadlineScope() override;

  std::exception_ptr exit(std::exception_ptr error) noexcept;
  bool expired() const noexcept { return expired_; }
  void on_timer() noexcept override;

 private:
  TaskCore* task_;
  LoopImpl* loop_;
  int base_cancelling_;
  bool expired_ = false;
};

UVAIO_API std::exception_ptr timeout_error_from(std::exception_ptr cancelled);
UVAIO_API bool is_cancelled_error(const std::exception_ptr& error) noexcept;

template <class H>
Async<typename H::value_type> await_with_deadline_handle(H handle, TimePoint deadline, bool owned) {
  using T = typename H::value_type;
  std::exception_ptr error;
  {
    DeadlineScope scope(deadline);
    try {
      co_await handle;
    } catch (...) {
      error = std::current_exception();
    }
    error = scope.exit(error);
  }
  if (error) std::rethrow_exception(error);
  if constexpr (std::is_void_v<T>) {
    co_return;
  } else {
    co_return T(take_value<T>(handle, owned));
  }
}

template <class T>
Async<T> await_with_deadline_async(Async<T> coro, TimePoint deadline) {
  std::exception_ptr error;
  std::optional<gather_value_t<T>> value;
  {
    DeadlineScope scope(deadline);
    try {
      if constexpr (std::is_void_v<T>) {
        co_await std::move(coro);
        value.emplace();
      } else {
        T v = co_await std::move(coro);
        value.emplace(std::move(v));
      }
    } catch (...) {
      error = std::current_exception();
    }
    error = scope.exit(error);
  }
  if (error) std::rethrow_exception(error);
  if constexpr (!std::is_void_v<T>) co_return std::move(*value);
}

// A timeout <= 0 (asyncio item 71).
template <class H>
Async<typename H::value_type> wait_for_expired(H handle) {
  using T = typename H::value_type;
  // Only a cancellation that wait_for made becomes TimeoutError. A Task or
  // Future that was already done gives its result as it is, and for one
  // cancelled earlier that is CancelledError (asyncio 3.12: `if fut.done():
  // return fut.result()`): it did finish, so no time ran out on it.
  const bool was_pending = !handle.done();
  if (was_pending) {
    handle.cancel();
    WaitSet finished({handle.state()}, WaitSet::Until::all_completed, WaitSet::OnCancel::stop_waiting);
    co_await finished;
  }
  if (was_pending && handle.cancelled()) {
    std::exception_ptr cancelled;
    try {
      handle.result();
    } catch (...) {
      cancelled = std::current_exception();
    }
    std::rethrow_exception(timeout_error_from(cancelled));
  }
  if constexpr (std::is_void_v<T>) {
    handle.result();
  } else {
    co_return T(take_value<T>(handle, false));
  }
}

template <class T>
Async<T> never_started(Async<T> coro) {
  co_await std::suspend_never{};  // makes this a coroutine: the throw happens when awaited
  { Async<T> dropped = std::move(coro); }  // destroyed without running, as asyncio never starts it
  throw TimeoutError();
}

template <class A>
Async<child_value_t<A>> with_deadline(A&& aw, TimePoint deadline, bool expired_already) {
  using Traits = traits_of<A>;
  if constexpr (Traits::owned) {
    static_assert(!std::is_lvalue_reference_v<A>, "pass an Async to wait_for as an rvalue (std::move)");
    if (expired_already) return never_started(std::forward<A>(aw));
    return await_with_deadline_async(std::forward<A>(aw), deadline);
  } else {
    if (expired_already) return wait_for_expired(child_handle_t<A>(aw));
    return await_with_deadline_handle(child_handle_t<A>(aw), deadline, false);
  }
}

template <class A>
Async<child_value_t<A>> await_plain(A&& aw) {
  using T = child_value_t<A>;
  if constexpr (traits_of<A>::owned) {
    static_assert(!std::is_lvalue_reference_v<A>, "pass an Async to wait_for as an rvalue (std::move)");
    return Async<T>(std::forward<A>(aw));
  } else {
    return [](child_handle_t<A> handle) -> Async<T> {
      co_await handle;
      if constexpr (!std::is_void_v<T>) co_return T(take_value<T>(handle, false));
    }(child_handle_t<A>(aw));
  }
}

// Awaits a task without cancelling it when the awaiter is cancelled.
class UVAIO_API ShieldAwaiter final : public DoneNode, public Cancellable {
 public:
  explicit ShieldAwaiter(FutureCore& inner) noexcept : inner_(inner) {}
  ShieldAwaiter(const ShieldAwaiter&) = delete;
  ShieldAwaiter& operator=(const ShieldAwaiter&) = delete;
  ~ShieldAwaiter() override;

  bool await_ready() const noexcept { return inner_.done(); }
  bool await_suspend(std::coroutine_handle<> h);
  void await_resume();

  bool cancel(std::string message) override;
  void fire(FutureCore& future) noexcept override;
  void drop() noexcept override {}

 private:
  FutureCore& inner_;
  TaskCore* task_ = nullptr;
  bool cancelled_ = false;
  std::string message_;
};

template <class H>
struct AsCompletedState;

template <class H>
class AsCompletedNode final : public DoneNode {
 public:
  void fire(FutureCore& /*future*/) noexcept override { state->child_done(index); }
  void drop() noexcept override {}
  AsCompletedState<H>* state = nullptr;
  std::size_t index = 0;
};

// Shared by an AsCompleted and the awaitables it hands out; loop thread only.
template <class H>
struct AsCompletedState final : public TimerNode {
  struct Waiter;

  std::vector<H> handles;
  std::unique_ptr<AsCompletedNode<H>[]> nodes;
  std::deque<std::size_t> finished;  // indexes, in completion order
  Waiter* waiting = nullptr;
  LoopImpl* loop = nullptr;
  bool timed_out = false;
  bool owned = false;

  ~AsCompletedState() override {
    for (std::size_t i = 0; i < handles.size(); ++i) {
      if (nodes[i].linked()) handles[i].state()->remove_waiter(nodes[i]);
    }
    if (armed() && loop != nullptr) remove_timer(*loop, *this);
  }
  void child_done(std::size_t index) noexcept {
    finished.push_back(index);
    wake_waiter();
  }
  void on_timer() noexcept override {
    timed_out = true;
    wake_waiter();
  }
  void wake_waiter() noexcept {
    if (waiting == nullptr) return;
    Waiter* w = std::exchange(waiting, nullptr);
    w->task->wake();
  }

  // One `co_await next`: waits for the next input to finish.
  struct Waiter final : public Cancellable {
    std::shared_ptr<AsCompletedState> state;
    TaskCore* task = nullptr;
    bool cancelled = false;
    std::string message;

    explicit Waiter(std::shared_ptr<AsCompletedState> s) noexcept : state(std::move(s)) {}
    Waiter(const Waiter&) = delete;
    Waiter& operator=(const Waiter&) = delete;
    ~Waiter() override {
      if (state->waiting == this) state->waiting = nullptr;
    }
    bool await_ready() const noexcept { return !state->finished.empty() || state->timed_out; }
    bool await_suspend(std::coroutine_handle<> h) {
      TaskCore* current = current_task_core();
      if (current == nullptr) throw RuntimeError("as_completed() must be awaited inside a task");
      if (state->waiting != nullptr) throw RuntimeError("as_completed(): one awaitable at a time");
      task = current;
      std::string pending;
      if (current->take_pending_cancel(pending)) {
        cancelled = true;
        message = std::move(pending);
        return false;
      }
      state->waiting = this;
      current->suspend_on(this, h);
      return true;
    }
    typename H::value_type await_resume() {
      if (task != nullptr) task->throw_if_cancel_pending();  // first: one CancelledError in all
      if (cancelled) throw CancelledError(message);
      if (state->finished.empty()) throw TimeoutError();
      const std::size_t index = state->finished.front();
      state->finished.pop_front();
      using T = typename H::value_type;
      if constexpr (std::is_void_v<T>) {
        state->handles[index].result();
      } else {
        return T(take_value<T>(state->handles[index], state->owned));
      }
    }
    bool cancel(std::string msg) override {
      if (state->waiting != this) return false;
      state->waiting = nullptr;
      cancelled = true;
      message = std::move(msg);
      task->wake();
      return true;
    }
  };
};

}  // namespace detail

// The awaitables of as_completed(); iterate once.
template <class H>
class AsCompleted {
  using State = detail::AsCompletedState<H>;

 public:
  class Next {
   public:
    explicit Next(std::shared_ptr<State> state) noexcept : state_(std::move(state)) {}
    typename State::Waiter operator co_await() const { return typename State::Waiter(state_); }

   private:
    std::shared_ptr<State> state_;
  };

  class iterator {
   public:
    using value_type = Next;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    iterator(std::shared_ptr<State> state, std::size_t position) : state_(std::move(state)), position_(position) {}
    Next operator*() const { return Next(state_); }
    iterator& operator++() {
      ++position_;
      return *this;
    }
    iterator operator++(int) {
      iterator old = *this;
      ++position_;
      return old;
    }
    friend bool operator==(const iterator& a, const iterator& b) noexcept { return a.position_ == b.position_; }

   private:
    std::shared_ptr<State> state_;
    std::size_t position_ = 0;
  };

  explicit AsCompleted(std::shared_ptr<State> state) : state_(std::move(state)) {}
  iterator begin() const { return iterator(state_, 0); }
  iterator end() const { return iterator(state_, state_->handles.size()); }
  std::size_t size() const noexcept { return state_->handles.size(); }

 private:
  std::shared_ptr<State> state_;
};

template <std::ranges::input_range R>
  requires detail::Awaitable<std::ranges::range_value_t<R>>
AsCompleted<detail::child_handle_t<std::ranges::range_value_t<R>>> as_completed(R&& awaitables,
                                                                                 std::optional<Duration> timeout) {
  using A = std::ranges::range_value_t<R>;
  using H = detail::child_handle_t<A>;
  detail::LoopImpl* loop = detail::running_loop_impl();
  if (loop == nullptr) throw RuntimeError("no running event loop");
  auto state = std::make_shared<detail::AsCompletedState<H>>();
  state->owned = detail::traits_of<A>::owned;
  state->loop = loop;
  std::unordered_set<detail::FutureCore*> seen;
  for (H& h : detail::start_children(std::forward<R>(awaitables))) {
    if (seen.insert(h.state()).second) state->handles.push_back(std::move(h));
  }
  state->nodes = std::make_unique<detail::AsCompletedNode<H>[]>(state->handles.size());
  for (std::size_t i = 0; i < state->handles.size(); ++i) {
    state->nodes[i].state = state.get();
    state->nodes[i].index = i;
    detail::FutureCore* core = state->handles[i].state();
    if (core->done()) {
      state->finished.push_back(i);
    } else {
      core->add_waiter(state->nodes[i]);
    }
  }
  if (timeout) detail::add_timer(*loop, *state, detail::deadline_after(*timeout));
  return AsCompleted<H>(std::move(state));
}

template <std::ranges::input_range R>
auto wait(R&& handles, ReturnWhen when, std::optional<Duration> timeout) {
  using H = std::remove_cvref_t<std::ranges::range_value_t<R>>;
  static_assert(detail::Awaitable<H> && !detail::traits_of<H>::owned,
                "Passing coroutines is forbidden, use tasks explicitly.");
  std::vector<H> unique;
  std::unordered_set<detail::FutureCore*> seen;
  for (auto&& h : handles) {
    if (!h) detail::throw_empty_handle("Task/Future");
    if (seen.insert(h.state()).second) unique.push_back(h);
  }
  if (unique.empty()) throw ValueError("Set of Tasks/Futures is empty.");
  std::optional<TimePoint> deadline;
  if (timeout) deadline = detail::deadline_after(*timeout);
  const auto until = when == ReturnWhen::first_completed   ? detail::WaitSet::Until::first_completed
                     : when == ReturnWhen::first_exception ? detail::WaitSet::Until::first_exception
                                                           : detail::WaitSet::Until::all_completed;
  return [](std::vector<H> items, detail::WaitSet::Until until,
            std::optional<TimePoint> deadline) -> Async<WaitResult<H>> {
    {
      detail::WaitSet waiting(detail::states_of(items), until, detail::WaitSet::OnCancel::stop_waiting, deadline);
      co_await waiting;
    }
    WaitResult<H> result;
    for (H& h : items) (h.done() ? result.done : result.pending).push_back(std::move(h));
    co_return result;
  }(std::move(unique), until, deadline);
}

template <detail::Awaitable A>
Async<detail::child_value_t<A>> wait_for(A&& aw, std::optional<Duration> timeout) {
  if (!timeout) return detail::await_plain(std::forward<A>(aw));
  return detail::with_deadline(std::forward<A>(aw), detail::deadline_after(*timeout), *timeout <= Duration::zero());
}

template <detail::Awaitable A>
Async<detail::child_value_t<A>> timeout_at(TimePoint deadline, A&& aw) {
  return detail::with_deadline(std::forward<A>(aw), deadline, deadline <= Clock::now());
}

template <class T>
Async<T> shield(Task<T> task) {
  if (!task) detail::throw_empty_handle("Task");
  {
    detail::ShieldAwaiter shielded(*task.state());
    co_await shielded;
  }
  if constexpr (std::is_void_v<T>) {
    task.result();
  } else {
    co_return T(detail::take_value<T>(task, false));
  }
}

}  // namespace uvaio
