#include "uvaio/task.hpp"

#include <atomic>
#include <string>
#include <utility>

#include "loop_impl.hpp"

namespace uvaio {

namespace detail {

std::string next_task_name() {
  static std::atomic<std::uint64_t> counter{0};
  return "Task-" + std::to_string(counter.fetch_add(1, std::memory_order_relaxed) + 1);
}

TaskCore::TaskCore(LoopImpl* loop, std::coroutine_handle<> root, std::string name)
    : FutureCore(loop), root_(root), resume_point_(root), name_(std::move(name)) {}

TaskCore::~TaskCore() { destroy_frame(); }

void TaskCore::destroy_frame() noexcept {
  if (!root_) return;
  std::coroutine_handle<> frame = std::exchange(root_, {});
  resume_point_ = {};
  next_to_run_ = {};
  waiting_on_ = nullptr;
  frame.destroy();
}

std::string TaskCore::describe_future() const { return "Task '" + name_ + "'"; }
std::string TaskCore::describe() const { return describe_future(); }

void start_task(LoopImpl& loop, TaskCore& task) noexcept {
  task.add_ref();  // the loop's, until the task is done
  loop.link_pending(task);
  task.wake();
}

void remember_creation(LoopImpl& loop, const FutureCore& future, SourceLocation where) noexcept {
  loop.remember_creation(future, where);
}

void TaskCore::wake() noexcept {
  if (queued_ || loop() == nullptr) return;
  queued_ = true;
  add_ref();  // the ready queue's
  loop()->push_ready(*this);
}

void TaskCore::run() noexcept {
  queued_ = false;
  step();
  release();
}

void TaskCore::discard() noexcept {
  queued_ = false;
  release();
}

void TaskCore::step() noexcept {
  if (done() || !resume_point_) return;
  waiting_on_ = nullptr;
  if (!started_ && must_cancel_) {
    // Cancelled before its first step: the body never runs (asyncio item 55).
    must_cancel_ = false;
    destroy_frame();
    finish(std::make_exception_ptr(CancelledError(std::move(must_cancel_message_))));
    return;
  }
  started_ = true;
  TaskCore* const previous = t_current_task;
  t_current_task = this;
  // The trampoline: Async frames hand over to each other through next_to_run_.
  std::coroutine_handle<> next = std::exchange(resume_point_, {});
  do {
    next.resume();
    next = std::exchange(next_to_run_, {});
  } while (next);
  t_current_task = previous;
  if (done()) destroy_frame();
}

void TaskCore::finish(std::exception_ptr error) noexcept {
  LoopImpl* const loop = this->loop();
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const CancelledError& cancelled) {
      set_cancelled_unchecked(cancelled.message());
    } catch (...) {
      set_exception_unchecked(std::move(error));
    }
  } else if (must_cancel_) {
    // The task cancelled itself and returned without awaiting again: still
    // cancelled, as in asyncio.
    must_cancel_ = false;
    set_cancelled_unchecked(std::move(must_cancel_message_));
  } else {
    mark_result_set();
  }
  if (loop != nullptr) {
    loop->unlink_pending(*this);
    release();  // the loop's reference; the caller still holds one
  }
}

bool TaskCore::cancel(std::string message) {
  exception_retrieved_ = true;
  if (done()) return false;
  ++cancels_requested_;
  if (waiting_on_ != nullptr && waiting_on_->cancel(message)) return true;
  must_cancel_ = true;
  must_cancel_message_ = std::move(message);
  return true;
}

int TaskCore::uncancel() noexcept {
  if (cancels_requested_ > 0) {
    --cancels_requested_;
    if (cancels_requested_ == 0) must_cancel_ = false;
  }
  return static_cast<int>(cancels_requested_);
}

bool TaskCore::take_pending_cancel(std::string& message) noexcept {
  if (!must_cancel_) return false;
  must_cancel_ = false;
  message = std::move(must_cancel_message_);
  return true;
}

void TaskCore::throw_pending_cancel() {
  must_cancel_ = false;
  throw CancelledError(std::move(must_cancel_message_));
}

void TaskCore::suspend_on(Cancellable* waiting_on, std::coroutine_handle<> resume_point) noexcept {
  waiting_on_ = waiting_on;
  resume_point_ = resume_point;
}

}  // namespace detail

// --- TaskRef ------------------------------------------------------------------

TaskRef::TaskRef(detail::TaskCore* core) noexcept : core_(core) {
  if (core_ != nullptr) core_->add_ref();
}
TaskRef::TaskRef(const TaskRef& other) noexcept : TaskRef(other.core_) {}
TaskRef::TaskRef(TaskRef&& other) noexcept : core_(std::exchange(other.core_, nullptr)) {}
TaskRef& TaskRef::operator=(const TaskRef& other) noexcept {
  TaskRef copy(other);
  std::swap(core_, copy.core_);
  return *this;
}
TaskRef& TaskRef::operator=(TaskRef&& other) noexcept {
  TaskRef moved(std::move(other));
  std::swap(core_, moved.core_);
  return *this;
}
TaskRef::~TaskRef() {
  if (core_ != nullptr) core_->release();
}

detail::TaskCore& TaskRef::checked() const {
  if (core_ == nullptr) detail::throw_empty_handle("Task");
  return *core_;
}

bool TaskRef::done() const { return checked().done(); }
bool TaskRef::cancelled() const { return checked().cancelled(); }
bool TaskRef::cancel(std::string message) const { return checked().cancel(std::move(message)); }
int TaskRef::cancelling() const { return checked().cancelling(); }
int TaskRef::uncancel() const { return checked().uncancel(); }
const std::string& TaskRef::name() const { return checked().name(); }
void TaskRef::set_name(std::string name) const { checked().set_name(std::move(name)); }
std::exception_ptr TaskRef::exception() const { return checked().exception(); }

TaskRef current_task() { return TaskRef(detail::t_current_task); }

std::vector<TaskRef> all_tasks() {
  detail::LoopImpl* loop = detail::t_running_loop;
  if (loop == nullptr) throw RuntimeError("no running event loop");
  std::vector<TaskRef> tasks;
  for (detail::TaskCore* task : loop->pending_tasks()) tasks.emplace_back(task);
  return tasks;
}

}  // namespace uvaio
