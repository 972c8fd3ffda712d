#include "uvaio/future.hpp"

#include <cxxabi.h>

#include <atomic>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <typeinfo>
#include <utility>

#include <spdlog/fmt/fmt.h>

#include "log_internal.hpp"
#include "loop_impl.hpp"

namespace uvaio::detail {

Runnable::~Runnable() = default;
std::string Runnable::describe() const { return "callback"; }
Cancellable::~Cancellable() = default;
TimerNode::~TimerNode() = default;
DoneNode::~DoneNode() = default;

namespace {

std::string demangle(const char* name) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> readable(abi::__cxa_demangle(name, nullptr, nullptr, &status),
                                                  std::free);
  return status == 0 && readable ? std::string(readable.get()) : std::string(name);
}

}  // namespace

std::string describe_exception(const std::exception_ptr& error) {
  if (!error) return "no exception";
  try {
    std::rethrow_exception(error);
  } catch (const CancelledError& e) {
    return e.message().empty() ? std::string("uvaio::CancelledError")
                               : "uvaio::CancelledError: " + e.message();
  } catch (const std::exception& e) {
    return demangle(typeid(e).name()) + ": " + e.what();
  } catch (...) {
    const std::type_info* type = abi::__cxa_current_exception_type();
    return "exception of type " + (type != nullptr ? demangle(type->name()) : std::string("unknown"));
  }
}

std::string format_seconds(Duration d) {
  return fmt::format("{:.3f}", std::chrono::duration<double>(d).count());
}

// --- FutureCore ---------------------------------------------------------------

FutureCore::FutureCore(LoopImpl* loop) : loop_(loop) {
  if (loop_ != nullptr) loop_->link_future(*this);
}

FutureCore::~FutureCore() {
  drop_all_nodes();
  if (loop_ != nullptr) loop_->unlink_future(*this);
}

void FutureCore::destroy() noexcept { delete this; }

void FutureCore::last_reference_gone() noexcept {
  if (status_ == FutureStatus::exception && !exception_retrieved_) {
    const std::string message = std::string(kind()) + " exception was never retrieved";
    std::string task_name;
    if (const auto* task = dynamic_cast<const TaskCore*>(this)) task_name = task->name();
    if (loop_ != nullptr) {
      loop_->report({message, exception_, task_name, loop_->created_at(*this)});
    } else {
      log_error(message + (task_name.empty() ? "" : " (task '" + task_name + "')") + ": " +
                describe_exception(exception_));
    }
  }
  drop_all_nodes();
  if (loop_ != nullptr) {
    loop_->unlink_future(*this);
    loop_ = nullptr;
  }
  destroy();
}

void FutureCore::complete(FutureStatus status) noexcept {
  status_ = status;
  if (loop_ == nullptr || loop_->closing()) {
    drop_all_nodes();
    return;
  }
  // One node at a time, each unlinked just before it fires: a fire() may
  // remove other waiters of this future (a WaitSet that is satisfied unlinks
  // all its nodes, and gather(t, t) has two on t). Those must leave this list
  // properly, or the nodes after them would be cut off and never fire (found
  // by fuzz/scheduler_fuzz.cpp: the tasks awaiting them hung forever).
  while (DoneNode* node = first_node_) {
    remove_waiter(*node);
    node->fire(*this);
  }
}

void FutureCore::drop_all_nodes() noexcept {
  while (DoneNode* node = first_node_) {  // as complete(): drop() may unlink others
    remove_waiter(*node);
    node->drop();
  }
}

bool FutureCore::cancel(std::string message) {
  // As asyncio: cancel() on a failed future also silences "never retrieved".
  exception_retrieved_ = true;
  if (done()) return false;
  cancel_message_ = std::move(message);
  complete(FutureStatus::cancelled);
  on_cancelled();
  return true;
}

void FutureCore::check_can_set() const {
  if (done()) {
    throw InvalidStateError(std::string("invalid state: the ") + kind() + " is already " +
                            (cancelled() ? "cancelled" : "done"));
  }
}

void FutureCore::set_exception(std::exception_ptr error) {
  check_can_set();
  if (!error) throw ValueError("set_exception() needs an exception, got an empty exception_ptr");
  set_exception_unchecked(std::move(error));
}

void FutureCore::set_exception_unchecked(std::exception_ptr error) noexcept {
  exception_ = std::move(error);
  complete(FutureStatus::exception);
}

void FutureCore::set_cancelled_unchecked(std::string message) noexcept {
  cancel_message_ = std::move(message);
  complete(FutureStatus::cancelled);
}

void FutureCore::mark_result_set() noexcept { complete(FutureStatus::result); }

void FutureCore::check_result() {
  switch (status_) {
    case FutureStatus::result:
      return;
    case FutureStatus::exception:
      exception_retrieved_ = true;
      std::rethrow_exception(exception_);
    case FutureStatus::cancelled:
      throw CancelledError(cancel_message_);
    case FutureStatus::pending:
      break;
  }
  throw InvalidStateError("Result is not set.");
}

std::exception_ptr FutureCore::exception() {
  switch (status_) {
    case FutureStatus::result:
      return nullptr;
    case FutureStatus::exception:
      exception_retrieved_ = true;
      return exception_;
    case FutureStatus::cancelled:
      throw CancelledError(cancel_message_);
    case FutureStatus::pending:
      break;
  }
  throw InvalidStateError("Exception is not set.");
}

CallbackId FutureCore::add_done_node(DoneNode& node) {
  // Unique in the process, so an id given to the wrong future removes nothing.
  static std::atomic<std::uint64_t> next_id{1};
  node.id_ = next_id.fetch_add(1, std::memory_order_relaxed);
  const CallbackId id{node.id_};
  if (done()) {
    // asyncio schedules it through call_soon even now (never inline).
    node.fire(*this);
  } else {
    add_waiter(node);
  }
  return id;
}

void FutureCore::add_waiter(DoneNode& node) noexcept {
  node.owner_ = this;
  node.next_ = nullptr;
  node.prev_ = last_node_;
  if (last_node_ != nullptr) {
    last_node_->next_ = &node;
  } else {
    first_node_ = &node;
  }
  last_node_ = &node;
}

void FutureCore::remove_waiter(DoneNode& node) noexcept {
  if (node.owner_ != this) return;
  if (node.prev_ != nullptr) {
    node.prev_->next_ = node.next_;
  } else {
    first_node_ = node.next_;
  }
  if (node.next_ != nullptr) {
    node.next_->prev_ = node.prev_;
  } else {
    last_node_ = node.prev_;
  }
  node.prev_ = node.next_ = nullptr;
  node.owner_ = nullptr;
}

std::size_t FutureCore::remove_done_callback(CallbackId id) noexcept {
  if (id.value == 0) return 0;
  for (DoneNode* node = first_node_; node != nullptr; node = node->next_) {
    if (node->id_ == id.value) {
      remove_waiter(*node);
      node->drop();
      return 1;
    }
  }
  return 0;
}

std::string FutureCore::describe_future() const { return kind(); }

// --- awaiting -----------------------------------------------------------------

TaskCore& task_awaiting(const FutureCore& future) {
  TaskCore* current = t_current_task;
  if (current == nullptr) {
    throw RuntimeError("co_await on a uvaio Future or Task outside of a task");
  }
  if (&future == static_cast<FutureCore*>(current)) {
    throw RuntimeError("Task cannot await on itself: " + current->describe_future());
  }
  if (future.loop() != current->loop()) {
    throw RuntimeError(current->describe_future() + " got " + future.describe_future() +
                       " attached to a different loop");
  }
  return *current;
}

bool suspend_on_future(FutureCore& future, DoneNode& node, std::coroutine_handle<> h, TaskCore*& task) {
  TaskCore* current = &task_awaiting(future);
  task = current;
  if (current->cancel_pending()) {
    std::string message;
    current->take_pending_cancel(message);
    future.cancel(std::move(message));
    if (future.done()) return false;
  }
  future.add_waiter(node);
  current->suspend_on(&future, h);
  return true;
}

}  // namespace uvaio::detail
