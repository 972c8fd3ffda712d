#include "uvaio/loop.hpp"

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>

#include "log_internal.hpp"
#include "loop_impl.hpp"
#include "submit_batch.hpp"
#include "uvaio/detail/test_hooks.hpp"

namespace uvaio {

namespace detail {

void (*test_hooks::before_blocking_poll)() noexcept = nullptr;

// initial-exec: these are read on every await and callback; the default model
// for a shared library would call __tls_get_addr each time.
UVAIO_TLS_MODEL thread_local LoopImpl* t_running_loop = nullptr;
UVAIO_TLS_MODEL thread_local TaskCore* t_current_task = nullptr;

namespace {

bool debug_from_environment() {
  const char* value = std::getenv("UVAIO_DEBUG");
  return value != nullptr && *value != '\0' && std::strcmp(value, "0") != 0;
}

void close_any_handle(uv_handle_t* handle, void* /*arg*/) {
  if (uv_is_closing(handle) == 0) uv_close(handle, nullptr);
}

}  // namespace

LoopImpl::LoopImpl(Loop& owner, const LoopOptions& options)
    : owner_(owner),
      debug_(options.debug.value_or(debug_from_environment())),
      slow_callback_duration_(options.slow_callback_duration) {
  int rc = uv_loop_init(&uv_);
  if (rc != 0) throw UvError(rc, "uv_loop_init");
  uv_.data = this;
  rc = uv_async_init(&uv_, &wakeup_, &LoopImpl::on_wakeup);
  if (rc == 0) rc = uv_timer_init(&uv_, &wake_timer_);
  if (rc != 0) {
    uv_walk(&uv_, close_any_handle, nullptr);
    uv_run(&uv_, UV_RUN_DEFAULT);
    uv_loop_close(&uv_);
    throw UvError(rc, "uv_async_init/uv_timer_init");
  }
  wakeup_.data = this;
  wake_timer_.data = this;
  mailbox_ = new Mailbox(&wakeup_);
}

LoopImpl::~LoopImpl() {
  // Futures and tasks that outlive the loop keep working as plain values, but
  // can no longer schedule anything.
  for (FutureCore* f = live_.first(); f != nullptr;) {
    FutureCore* next = live_.next(*f);
    f->loop_ = nullptr;
    f->prev_live_ = f->next_live_ = nullptr;
    f = next;
  }
  live_.clear();
  mailbox_->release();
}

bool LoopImpl::on_loop_thread() const noexcept { return t_running_loop == this; }

void LoopImpl::check_usable(const char* method) const {
  if (closed_) throw RuntimeError("Event loop is closed");
  if (debug_ && running_.load(std::memory_order_acquire) && !on_loop_thread()) {
    throw RuntimeError(fmt::format(
        "Non-thread-safe operation invoked on an event loop other than the current one: "
        "{}() called from thread {} while the loop runs in thread {}",
        method, thread_id_string(std::this_thread::get_id()),
        thread_id_string(thread_.load(std::memory_order_acquire))));
  }
}

// --- running ------------------------------------------------------------------

void LoopImpl::check_can_run() const {
  if (closed_) throw RuntimeError("Event loop is closed");
  if (running_.load(std::memory_order_relaxed)) throw RuntimeError("This event loop is already running");
  if (t_running_loop != nullptr) {
    throw RuntimeError("Cannot run the event loop while another loop is running");
  }
}

void LoopImpl::run_forever() {
  check_can_run();
  thread_.store(std::this_thread::get_id(), std::memory_order_release);
  running_.store(true, std::memory_order_release);
  t_running_loop = this;
  for (;;) {
    run_once();
    if (stopping_) break;
  }
  stopping_ = false;
  running_.store(false, std::memory_order_release);
  t_running_loop = nullptr;
}

void LoopImpl::StopEntry::run() noexcept {
  queued_ = false;
  if (target_ != nullptr && target_ == loop_.until_token_) loop_.stop();
}

namespace {
class StopNode final : public DoneNode {
 public:
  StopNode(Runnable& stop_entry, bool& queued, const void*& target) noexcept
      : stop_entry_(stop_entry), queued_(queued), target_(target) {}
  ~StopNode() override {
    if (owner_ != nullptr) owner_->remove_waiter(*this);
  }
  void arm(FutureCore& future) noexcept {
    owner_ = &future;
    future.add_waiter(*this);
  }
  void fire(FutureCore& future) noexcept override {
    owner_ = nullptr;
    target_ = this;
    if (!queued_) {
      queued_ = true;
      push_ready(*future.loop(), stop_entry_);
    }
  }
  void drop() noexcept override { owner_ = nullptr; }

 private:
  Runnable& stop_entry_;
  bool& queued_;
  const void*& target_;
  FutureCore* owner_ = nullptr;
};
}  // namespace

void LoopImpl::run_until_done(FutureCore& future) {
  check_can_run();
  if (future.loop() != this) {
    throw ValueError("The future belongs to a different loop than the one it is run on");
  }
  if (future.done()) {
    return;
  }
  StopNode node(stop_entry_, stop_entry_.queued_, stop_entry_.target_);
  node.arm(future);
  until_token_ = &node;
  struct Reset {
    const void*& token;
    ~Reset() { token = nullptr; }
  } reset{until_token_};
  run_forever();
  if (!future.done()) throw RuntimeError("Event loop stopped before Future completed.");
}

void LoopImpl::run_once() noexcept {
  bool block = ready_.empty() && !stopping_ && !mailbox_->has_entries();
  if (block && !timers_.empty()) {
    const Duration wait = timers_.front()->deadline_ - Clock::now();
    if (wait <= Duration::zero()) {
      block = false;
    } else {
      // libuv timers count whole milliseconds from a cached clock: round up, and
      // move_due_timers() checks the real deadline, so nothing fires early.
      const auto ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
      uv_update_time(&uv_);
      uv_timer_start(&wake_timer_, &LoopImpl::on_wake_timer, static_cast<std::uint64_t>(ms), 0);
      wake_timer_armed_ = true;
    }
  }
  if (!block && wake_timer_armed_) {
    uv_timer_stop(&wake_timer_);
    wake_timer_armed_ = false;
  }
  // asyncio polls its selector on every iteration, ready callbacks or not; a
  // non-blocking libuv poll is a system call and a pass over libuv's handles
  // (~250 ns), most of a sleep(0). While callbacks are ready and nothing is
  // due, uvaio polls on one iteration in kPollEvery, and at least every
  // kMaxPollGap: I/O and libuv's own callbacks wait that much longer at most
  // on a busy loop. What uvaio keeps itself is seen on every iteration all the
  // same: the thread-safe mailbox (call_soon_threadsafe, pool completions) and
  // the timer heap.
  bool poll = block || ready_.empty() || polls_skipped_ + 1 >= kPollEvery || stopping_;
  if (!poll && Clock::now() - last_poll_ >= kMaxPollGap) poll = true;
  if (poll) {
    if (block && test_hooks::before_blocking_poll != nullptr) test_hooks::before_blocking_poll();
    uv_run(&uv_, block ? UV_RUN_ONCE : UV_RUN_NOWAIT);
    polls_skipped_ = 0;
    last_poll_ = Clock::now();
  } else {
    ++polls_skipped_;
  }
  drain_mailbox();
  move_due_timers();
  run_ready();
}

void LoopImpl::run_ready() noexcept {
  // asyncio runs a snapshot: entries queued meanwhile wait for the next iteration.
  Runnable* const last = ready_.last();
  if (last == nullptr) return;
  const SubmitBatchScope batch;  // pool workers for what they submit are woken at the end
  for (;;) {
    Runnable* entry = ready_.pop();
    const bool was_last = entry == last;
    run_entry(*entry);
    if (was_last) break;
  }
}

void LoopImpl::run_entry(Runnable& entry) noexcept {
  if (!debug_) {
    entry.run();
    return;
  }
  std::string what;
  try {
    what = entry.describe();
  } catch (...) {
    what = "callback";
  }
  const TimePoint start = Clock::now();
  entry.run();
  const Duration took = Clock::now() - start;
  if (took >= slow_callback_duration_) {
    log_warn(fmt::format("Executing {} took {} seconds", what, format_seconds(took)));
  }
}

void LoopImpl::push_ready(Runnable& entry) noexcept {
  // Keep call_soon_threadsafe's order relative to call_soon: entries posted
  // before this call go first. (While the loop is not running, call_soon comes
  // from the thread that owns it; take_all() is atomic, so the drain is safe.)
  if (mailbox_->has_entries() && (on_loop_thread() || !running_.load(std::memory_order_relaxed))) {
    drain_mailbox();
  }
  ready_.push(entry);
}

void LoopImpl::post_threadsafe(Runnable& entry) {
  // Other threads learn that the loop closed from the mailbox, never from closed_.
  if (on_loop_thread()) {
    push_ready(entry);
    return;
  }
  if (!mailbox_->post(entry)) {
    entry.discard();
    throw RuntimeError("Event loop is closed");
  }
}

void LoopImpl::drain_mailbox() noexcept {
  if (!mailbox_->has_entries()) return;
  // Spliced as it is: one producer's entries keep their order.
  ready_.splice(mailbox_->take_all());
}

void LoopImpl::on_wakeup(uv_async_t* handle) {
  static_cast<LoopImpl*>(handle->data)->drain_mailbox();
}

void LoopImpl::on_wake_timer(uv_timer_t* handle) {
  // run_once() moves due timers itself, after the I/O callbacks, as asyncio
  // orders them. But libuv 1.44's uv_run runs due timers *before* it polls: if
  // the thread stalled between arming this timer and uv_run, it fires first,
  // and the poll would then block with no timer left. uv_stop makes
  // uv_backend_timeout() return 0, so that poll does not block (uv_run clears
  // the flag as it returns).
  auto* loop = static_cast<LoopImpl*>(handle->data);
  loop->wake_timer_armed_ = false;
  uv_stop(&loop->uv_);
}

// --- timers: a binary heap of TimerNode*, ordered by (deadline, seq) ---------

bool LoopImpl::timer_less(const TimerNode* a, const TimerNode* b) const noexcept {
  if (a->deadline_ != b->deadline_) return a->deadline_ < b->deadline_;
  return a->seq_ < b->seq_;
}

void LoopImpl::place(std::size_t index, TimerNode* node) noexcept {
  timers_[index] = node;
  node->heap_index_ = index;
}

void LoopImpl::sift_up(std::size_t index) noexcept {
  TimerNode* node = timers_[index];
  while (index > 0) {
    const std::size_t parent = (index - 1) / 2;
    if (!timer_less(node, timers_[parent])) break;
    place(index, timers_[parent]);
    index = parent;
  }
  place(index, node);
}

void LoopImpl::sift_down(std::size_t index) noexcept {
  TimerNode* node = timers_[index];
  const std::size_t size = timers_.size();
  for (;;) {
    std::size_t child = 2 * index + 1;
    if (child >= size) break;
    if (child + 1 < size && timer_less(timers_[child + 1], timers_[child])) ++child;
    if (!timer_less(timers_[child], node)) break;
    place(index, timers_[child]);
    index = child;
  }
  place(index, node);
}

void LoopImpl::add_timer(TimerNode& node, TimePoint deadline) {
  // push_back first: growing the heap may throw bad_alloc, and then nothing
  // has changed (the node is not armed, the sequence not consumed).
  timers_.push_back(&node);
  node.deadline_ = deadline;
  node.seq_ = next_timer_seq_++;
  sift_up(timers_.size() - 1);
}

void LoopImpl::remove_timer(TimerNode& node) noexcept {
  if (!node.armed()) return;
  const std::size_t index = node.heap_index_;
  node.heap_index_ = TimerNode::not_armed;
  TimerNode* last = timers_.back();
  timers_.pop_back();
  if (last == &node) return;
  place(index, last);
  sift_down(index);
  sift_up(last->heap_index_);
}

void LoopImpl::move_due_timers() noexcept {
  if (timers_.empty()) return;
  const TimePoint now = Clock::now();
  while (!timers_.empty() && timers_.front()->deadline_ <= now) {
    TimerNode* node = timers_.front();
    remove_timer(*node);
    node->on_timer();
  }
}

// --- bookkeeping lists --------------------------------------------------------

void LoopImpl::link_future(FutureCore& f) noexcept { live_.push_front(f); }
void LoopImpl::unlink_future(FutureCore& f) noexcept {
  live_.remove(f);
  if (!created_at_.empty()) created_at_.erase(&f);
}

void LoopImpl::remember_creation(const FutureCore& future, SourceLocation where) noexcept {
  if (!debug_ || !where.known()) return;
  try {
    created_at_.insert_or_assign(&future, where);
  } catch (...) {
    // Only a report's detail is lost; the future itself is fine.
  }
}

SourceLocation LoopImpl::created_at(const FutureCore& future) const noexcept {
  if (created_at_.empty()) return {};
  const auto found = created_at_.find(&future);
  return found == created_at_.end() ? SourceLocation{} : found->second;
}
void LoopImpl::link_pending(TaskCore& t) noexcept { pending_.push_front(t); }
void LoopImpl::unlink_pending(TaskCore& t) noexcept { pending_.remove(t); }

std::vector<TaskCore*> LoopImpl::pending_tasks() const {
  std::vector<TaskCore*> tasks;
  for (TaskCore* t = pending_.first(); t != nullptr; t = pending_.next(*t)) tasks.push_back(t);
  // Oldest first, the order they were created in.
  return {tasks.rbegin(), tasks.rend()};
}

void LoopImpl::link_work(WorkItemBase& item) noexcept {
  item.future_core().add_ref();  // released by unlink_work
  item.in_flight_ = true;
  in_flight_.push_front(item);
  if (item.via_default_) ++default_in_flight_;
}

void LoopImpl::unlink_work(WorkItemBase& item) noexcept {
  if (!item.in_flight_) return;
  item.in_flight_ = false;
  in_flight_.remove(item);
  if (item.via_default_ && --default_in_flight_ == 0 && !drain_waiters_.empty()) {
    std::vector<Future<bool>> waiters = std::move(drain_waiters_);
    drain_waiters_.clear();
    for (auto& waiter : waiters) {
      if (!waiter.done()) waiter.set_result(true);
    }
  }
  item.future_core().release();
}

std::size_t LoopImpl::in_flight_for(const Executor* executor) const noexcept {
  std::size_t count = 0;
  for (WorkItemBase* item = in_flight_.first(); item != nullptr; item = in_flight_.next(*item)) {
    if (item->executor_ == executor) ++count;
  }
  return count;
}

void LoopImpl::cancel_work_for(const Executor* executor) noexcept {
  for (WorkItemBase* item = in_flight_.first(); item != nullptr; item = in_flight_.next(*item)) {
    if (item->executor_ == executor) item->cancel_work();
  }
}

std::shared_ptr<Executor>& LoopImpl::default_executor() {
  if (!default_executor_) default_executor_ = std::make_shared<UvWorkExecutor>(owner_);
  return default_executor_;
}

// --- errors -------------------------------------------------------------------

void LoopImpl::report(const ExceptionContext& context) noexcept { owner_.call_exception_handler(context); }

// --- closing ------------------------------------------------------------------

void LoopImpl::close() {
  if (running_) throw RuntimeError("Cannot close a running event loop");
  if (closed_ || closing_) return;
  closing_ = true;
  executor_shutdown_called_ = true;
  if (default_executor_) {
    try {
      default_executor_->shutdown(false, false);
    } catch (...) {
      log_error("Exception in default executor shutdown(wait=false): " +
                describe_exception(std::current_exception()));
    }
  }
  drop_timers();
  // Work that has not started never will; running work is asked to stop. Their
  // futures end cancelled without callbacks (nothing user-visible runs now).
  for (WorkItemBase* item = in_flight_.first(); item != nullptr; item = in_flight_.next(*item)) item->abandon();
  destroy_pending_tasks();
  discard_ready();
  wait_for_work_in_flight();
  // Destructors run above may have queued more; none of it will ever run.
  for (int round = 0; round < 8 && (!ready_.empty() || !timers_.empty()); ++round) {
    drop_timers();
    destroy_pending_tasks();
    discard_ready();
  }
  for (FutureCore* f = live_.first(); f != nullptr; f = live_.next(*f)) f->drop_all_nodes();
  for_each_entry(mailbox_->close(), [](Runnable& entry) { entry.discard(); });
  close_io();
  close_handles();
  closed_ = true;
  closing_ = false;
}

void LoopImpl::drop_timers() noexcept {
  while (!timers_.empty()) {
    TimerNode* node = timers_.back();
    timers_.pop_back();
    node->heap_index_ = TimerNode::not_armed;
    node->on_timer_dropped();
  }
}

void LoopImpl::discard_ready() noexcept {
  for (int round = 0; round < 1000 && !ready_.empty(); ++round) {
    for_each_entry(ready_.take_all(), [](Runnable& entry) { entry.discard(); });
  }
}

void LoopImpl::destroy_pending_tasks() noexcept {
  // Destroying a frame runs its locals' destructors, which may create tasks;
  // go on until none is left.
  while (!pending_.empty()) {
    std::vector<TaskCore*> tasks = pending_tasks();
    for (TaskCore* task : tasks) {
      task->add_ref();
      task->destroy_frame();
      unlink_pending(*task);
      task->set_cancelled_unchecked("the event loop was closed while the task was pending");
      report({"Task was destroyed but it is pending!", nullptr, task->name(), created_at(*task)});
      task->release();  // the loop's reference
      task->release();
    }
  }
}

void LoopImpl::wait_for_work_in_flight() noexcept {
  bool warned = false;
  const TimePoint start = Clock::now();
  for (;;) {
    drain_mailbox();
    discard_ready();
    // Items that never started and will not run through libuv are done here;
    // their executor lets go of them later, through the closed mailbox.
    for (WorkItemBase* item = in_flight_.first(); item != nullptr;) {
      WorkItemBase* next = in_flight_.next(*item);
      if (!item->uv_queued_ && item->phase() == WorkItemBase::dropped) unlink_work(*item);
      item = next;
    }
    if (in_flight_.empty()) break;
    if (!warned && Clock::now() - start > std::chrono::seconds(1)) {
      warned = true;
      std::size_t count = 0;
      for (WorkItemBase* item = in_flight_.first(); item != nullptr; item = in_flight_.next(*item)) ++count;
      log_warn(fmt::format("Closing the event loop waits for {} work item(s) still running on a worker "
                           "thread (running work cannot be interrupted; a std::stop_token was signalled)",
                           count));
    }
    uv_run(&uv_, UV_RUN_ONCE);
  }
}

void LoopImpl::close_io() noexcept {
  // Each unregisters itself; one that does not would be asked again forever,
  // so it is taken off the list here as well.
  while (IoResource* resource = io_.first()) {
    resource->close_for_loop();
    if (io_.first() == resource) io_.remove(*resource);
  }
}

void LoopImpl::close_handles() noexcept {
  if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&wake_timer_)) == 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&wake_timer_), nullptr);
  }
  if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&wakeup_)) == 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&wakeup_), nullptr);
  }
  // Handles opened on native() by the application are closed too: libuv
  // refuses to close a loop with open handles (uv_loop_close returns UV_EBUSY).
  uv_walk(&uv_, close_any_handle, nullptr);
  for (int attempt = 0;; ++attempt) {
    uv_run(&uv_, UV_RUN_DEFAULT);
    const int rc = uv_loop_close(&uv_);
    if (rc == 0) break;
    if (attempt == 0) {
      log_warn(fmt::format("uv_loop_close: {}; closing the remaining handles and retrying", uv_err_name(rc)));
    }
    uv_walk(&uv_, close_any_handle, nullptr);
  }
}

// --- entry points for header templates -------------------------------------

LoopImpl* running_loop_impl() noexcept { return t_running_loop; }
LoopImpl& impl_of(Loop& loop) noexcept { return loop.impl(); }
Loop& owner_of(LoopImpl& impl) noexcept { return impl.owner_; }
TaskCore* current_task_core() noexcept { return t_current_task; }

void check_usable(LoopImpl* loop, const char* method) {
  if (loop == nullptr) throw RuntimeError("Event loop is closed");
  loop->check_usable(method);
}

void push_ready(LoopImpl& loop, Runnable& entry) noexcept { loop.push_ready(entry); }
void add_timer(LoopImpl& loop, TimerNode& node, TimePoint deadline) { loop.add_timer(node, deadline); }
void remove_timer(LoopImpl& loop, TimerNode& node) noexcept { loop.remove_timer(node); }

void report_callback_exception(LoopImpl* loop, std::exception_ptr error, const std::string& what) noexcept {
  if (loop != nullptr) {
    loop->report({what, std::move(error), {}, {}});
  } else {
    log_error(what + ": " + describe_exception(error));
  }
}

Mailbox* acquire_mailbox(LoopImpl& loop) noexcept {
  loop.mailbox_->add_ref();
  return loop.mailbox_;
}
void release_mailbox(Mailbox* mailbox) noexcept { mailbox->release(); }
bool post_to_mailbox(Mailbox* mailbox, Runnable& entry) noexcept { return mailbox->post(entry); }

void throw_empty_handle(const char* type) {
  throw RuntimeError(std::string("operation on an empty ") + type + " handle");
}

}  // namespace detail

// --- Loop ---------------------------------------------------------------------

Loop::Loop() : Loop(LoopOptions{}) {}

Loop::Loop(LoopOptions options) {
  if (options.threadpool_size) detail::request_threadpool_size(*options.threadpool_size);
  impl_ = new detail::LoopImpl(*this, options);
}

Loop::~Loop() {
  if (impl_->running_) {
    detail::log_error("uvaio::Loop destroyed while running; aborting");
    std::terminate();
  }
  try {
    impl_->close();
  } catch (...) {
    detail::log_error("Exception while closing a destroyed loop: " +
                      detail::describe_exception(std::current_exception()));
  }
  delete impl_;
}

void Loop::run_forever() { impl_->run_forever(); }
void Loop::check_can_run() const { impl_->check_can_run(); }
void Loop::run_until_done(detail::FutureCore& future) { impl_->run_until_done(future); }
void Loop::stop() noexcept { impl_->stop(); }
void Loop::close() { impl_->close(); }
bool Loop::is_running() const noexcept { return impl_->running_; }
bool Loop::is_closed() const noexcept { return impl_->closed_; }
void Loop::post_threadsafe(detail::CallbackCore& core) { impl_->post_threadsafe(core); }

void Loop::set_default_executor(std::shared_ptr<Executor> executor) {
  impl_->check_usable("set_default_executor");
  if (!executor) throw ValueError("set_default_executor() needs an executor");
  impl_->default_executor_ = std::move(executor);
}

std::shared_ptr<Executor> Loop::default_executor() {
  impl_->check_usable("default_executor");
  return impl_->default_executor();
}

Async<void> Loop::shutdown_default_executor(std::optional<Duration> timeout) {
  detail::LoopImpl& impl = *impl_;
  impl.executor_shutdown_called_ = true;
  if (!impl.default_executor_) co_return;
  if (impl.default_in_flight_ > 0) {
    Future<bool> drained = create_future<bool>();
    impl.drain_waiters_.push_back(drained);
    TimerHandle timer;
    if (timeout) {
      timer = call_later(*timeout, [drained] {
        if (!drained.done()) drained.set_result(false);
      });
    }
    struct CancelTimer {
      TimerHandle& timer;
      ~CancelTimer() {
        if (timer) timer.cancel();
      }
    } cancel_timer{timer};
    const bool finished = co_await drained;
    if (!finished) {
      detail::log_warn(fmt::format(
          "The default executor did not finish its {} work item(s) within {} seconds; "
          "closing the loop will still wait for work already running",
          impl.default_in_flight_, detail::format_seconds(*timeout)));
      co_return;
    }
  }
  if (impl.default_executor_) impl.default_executor_->shutdown(true, false);
}

void Loop::set_debug(bool enabled) noexcept { impl_->debug_ = enabled; }
bool Loop::get_debug() const noexcept { return impl_->debug_; }
void Loop::set_slow_callback_duration(Duration duration) noexcept { impl_->slow_callback_duration_ = duration; }
Duration Loop::slow_callback_duration() const noexcept { return impl_->slow_callback_duration_; }

void Loop::set_exception_handler(ExceptionHandler handler) { impl_->handler_ = std::move(handler); }
const ExceptionHandler& Loop::get_exception_handler() const noexcept { return impl_->handler_; }

void Loop::call_exception_handler(const ExceptionContext& context) noexcept {
  if (!impl_->handler_) {
    default_exception_handler(context);
    return;
  }
  try {
    impl_->handler_(*this, context);
  } catch (...) {
    const std::exception_ptr handler_error = std::current_exception();
    detail::log_error("Unhandled error in exception handler: " + detail::describe_exception(handler_error));
    default_exception_handler(context);
  }
}

void Loop::default_exception_handler(const ExceptionContext& context) noexcept {
  try {
    std::string line = context.message;
    if (!context.task_name.empty()) line += " (task '" + context.task_name + "')";
    if (context.exception) line += ": " + detail::describe_exception(context.exception);
    if (context.created_at.known()) {
      line += fmt::format(" [created at {}:{} in {}]", context.created_at.file_name(), context.created_at.line(),
                          context.created_at.function_name());
    }
    detail::log_error(line);
  } catch (...) {
    // Logging failed (allocation?): nothing sensible is left to do.
  }
}

uv_loop_t* Loop::native() noexcept { return &impl_->uv_; }

Loop& get_running_loop() {
  detail::LoopImpl* loop = detail::t_running_loop;
  if (loop == nullptr) throw RuntimeError("no running event loop");
  return loop->owner_;
}

}  // namespace uvaio
