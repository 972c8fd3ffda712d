// A fuzz target for uvaio's scheduler: the input bytes are a small program of
// scheduler operations, run on a fresh Loop and checked against a reference
// model. Any violated invariant prints "uvaio fuzz: invariant violated: ..."
// and traps, which libFuzzer (or the replay test) reports as a crash.
//
// The byte program
//   byte 0         flags: bit 0 = leave work pending (the program returns without
//                  draining, so close() must destroy and account for it)
//   then ops       opcode byte (taken modulo the number of opcodes) followed by
//                  its operand bytes; a missing operand reads as 0. At most
//                  kMaxOps ops run; the rest of the input is ignored.
//
//   op  name              operands  what main does
//   0   call_soon         a         call_soon; a&1: the callback throws, a&2: it
//                                   call_soon's another callback
//   1   call_later        a d       call_later(d%4 ms); a&1 throws, a&2 nests a
//                                   call_soon, a&4 cancels task a>>3 when it runs
//   2   cancel_handle     i         cancels handle i (a call_soon or call_later one)
//   3   create_task       k p       create_task(body of kind k, parameter p)
//   4   cancel_task       i         task i .cancel()
//   5   await_task        i         co_await task i
//   6   to_thread         x u       co_await to_thread(work(x), sleeping u µs);
//                                   u&1: cancel the future before awaiting it
//   7   gather            n m ...   gather of n (1..4) existing tasks (m&1) or of
//                                   n fresh bodies (one kind byte each)
//   8   wait_for          m t x     wait_for(task x (m&1) or a fresh body of kind x,
//                                   timeout t%5 ms, 4 = none)
//   9   task_group        n ...     TaskGroup with n (0..3) children, one kind
//                                   byte each; join
//   10  close             -         loop.close() while running must be refused
//   11  sleep             d         co_await sleep(d%4 ms)
//   12  yield             -         co_await sleep(0)
//
//   Body kinds (k % 6; p is the operand): 0 returns after p%4 yields, 1 returns
//   after sleep(p%4 ms), 2 throws TestError after p%4 yields, 3 awaits
//   to_thread (p*7 µs sleep) and checks its result, 4 awaits an earlier task
//   (p % tasks) and returns its value + 1, 5 throws after sleep(p%4 ms).
//   Sleeps share a budget of kSleepBudgetMs per input, so an input runs in
//   milliseconds; everything else is bounded by kMaxOps, kMaxTasks, kMaxHandles.
//
// The checks never depend on timing except "not earlier than": every callback
// and body runs at most once, call_soon callbacks run in FIFO order, call_later
// callbacks run no earlier than when() and in (when, scheduling order) order,
// cancelled handles never run, the others run exactly once (when drained), a
// task whose cancel() returned true ends with CancelledError, a task's outcome
// is its body's, gather gives values in argument order or a child's (for owned
// bodies: the first) failure and leaves no owned child running, wait_for raises
// TimeoutError only if the awaited work did not finish, TaskGroup raises
// ExceptionGroup holding exactly its children's failures in order, to_thread
// results are right and its work runs at most once, callback exceptions reach
// the exception handler once each, close() refuses while running and
// afterwards every pending task was destroyed and reported once, and every
// instrumented object (callbacks, coroutine frames, work functions) is
// destroyed exactly once.

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <uvaio/log.hpp>
#include <uvaio/uvaio.hpp>

namespace {

using namespace std::chrono_literals;
using Ms = std::chrono::milliseconds;

constexpr int kMaxOps = 64;
constexpr int kMaxTasks = 24;
constexpr int kMaxHandles = 48;
constexpr int kMaxBodies = 96;
constexpr int kMaxWork = 64;
constexpr int kSleepBudgetMs = 8;
constexpr int kCallbackCodeBase = 100000;

[[noreturn]] void violated(const std::string& what) {
  std::fprintf(stderr, "uvaio fuzz: invariant violated: %s\n", what.c_str());
  std::fflush(stderr);
  __builtin_trap();
}

#define FUZZ_CHECK(cond, msg)                                    \
  do {                                                           \
    if (!(cond)) violated(std::string(msg) + " [" #cond "]"); \
  } while (0)

// Counts every construction (copy and move included) and destruction of the
// objects it is a member of: callbacks, coroutine frames (a by-value
// parameter) and work functions. After close() and dropping our handles, the
// two counts must be equal.
struct Token {
  static inline std::atomic<long> made{0};
  static inline std::atomic<long> gone{0};
  Token() noexcept { made.fetch_add(1, std::memory_order_relaxed); }
  Token(const Token&) noexcept { made.fetch_add(1, std::memory_order_relaxed); }
  Token(Token&&) noexcept { made.fetch_add(1, std::memory_order_relaxed); }
  Token& operator=(const Token&) noexcept = default;
  Token& operator=(Token&&) noexcept = default;
  ~Token() { gone.fetch_add(1, std::memory_order_relaxed); }
};

struct TestError : std::runtime_error {
  explicit TestError(int c) : std::runtime_error("test error " + std::to_string(c)), code(c) {}
  int code;
};

// How something ended.
enum class End { none, value, error, cancelled, other };

struct Outcome {
  End end = End::none;
  int value = 0;  // End::value: the value; End::error: the TestError's code
};

const char* end_name(End e) {
  switch (e) {
    case End::none: return "none";
    case End::value: return "value";
    case End::error: return "error";
    case End::cancelled: return "cancelled";
    case End::other: return "other";
  }
  return "?";
}

std::string describe(const Outcome& o) { return std::string(end_name(o.end)) + "(" + std::to_string(o.value) + ")"; }

Outcome classify(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const TestError& e) {
    return {End::error, e.code};
  } catch (const uvaio::CancelledError&) {
    return {End::cancelled, 0};
  } catch (...) {
    return {End::other, 0};
  }
}

bool same(const Outcome& a, const Outcome& b) {
  if (a.end != b.end) return false;
  return (a.end == End::value || a.end == End::error) ? a.value == b.value : true;
}

// --- the model --------------------------------------------------------------------

struct BodyRec {
  int kind = 0;
  int param = 0;
  int dep = -1;  // kind 4: the task index it awaits
  int starts = 0;
  Outcome exit;            // how the body's code ended (none: never ran to an end)
  std::uint64_t exit_seq = 0;
  bool may_be_cancelled = false;  // a cancellation may reach it (not only its own task's cancel())
};

struct TaskRec {
  uvaio::Task<int> task;
  int body = -1;
  bool cancel_confirmed = false;  // cancel() returned true
  bool pending_at_close = false;  // close() destroyed it
};

struct HandleRec {
  bool timer = false;
  int action = 0;
  int target = 0;  // the task a timer cancels
  std::uint64_t seq = 0;
  uvaio::TimePoint when{};
  uvaio::Handle handle;
  int runs = 0;
  bool cancelled_before_run = false;
};

struct Ctx;
void on_callback(Ctx& c, int id);

struct Callback {
  Ctx* c;
  int id;
  Token token;
  void operator()() const { on_callback(*c, id); }
};

struct WorkFn {
  std::atomic<int>* runs;
  Token token;
  int operator()(int x, int micros) const {
    runs->fetch_add(1, std::memory_order_relaxed);
    if (micros > 0) std::this_thread::sleep_for(std::chrono::microseconds(micros));
    return x * 7 + 3;
  }
};

struct Ctx {
  const std::uint8_t* data;
  std::size_t size;
  std::size_t pos = 0;
  uvaio::Loop* loop = nullptr;
  bool leave_pending = false;

  std::deque<BodyRec> bodies;
  std::deque<TaskRec> tasks;
  std::deque<HandleRec> handles;
  std::array<std::atomic<int>, kMaxWork> work_runs{};
  int work_items = 0;

  std::uint64_t next_seq = 1;       // scheduling order of callbacks, exit order of bodies
  std::uint64_t last_soon_seq = 0;  // FIFO check
  uvaio::TimePoint last_timer_when{};
  std::uint64_t last_timer_seq = 0;
  uvaio::TimePoint max_due{};
  bool has_timers = false;
  int sleep_budget_ms = kSleepBudgetMs;

  int throwing_callback_runs = 0;
  int callback_reports = 0;
  int destroyed_pending_reports = 0;
  int total_callback_runs = 0;

  Ctx(const std::uint8_t* d, std::size_t n) : data(d), size(n) {}

  int byte() { return pos < size ? data[pos++] : 0; }
  bool more() const { return pos < size; }
  int take_sleep_ms(int requested) {
    const int ms = std::min(requested % 4, sleep_budget_ms);
    sleep_budget_ms -= ms;
    return ms;
  }

  // A cancellation of `body` reaches whatever it awaits: the tasks of its chain.
  void taint(int body) {
    while (body >= 0) {
      BodyRec& b = bodies[static_cast<std::size_t>(body)];
      b.may_be_cancelled = true;
      if (b.dep < 0) return;
      body = tasks[static_cast<std::size_t>(b.dep)].body;
    }
  }
};

void on_callback(Ctx& c, int id) {
  HandleRec& h = c.handles[static_cast<std::size_t>(id)];
  ++c.total_callback_runs;
  ++h.runs;
  FUZZ_CHECK(h.runs == 1, "callback " + std::to_string(id) + " ran twice");
  FUZZ_CHECK(!h.cancelled_before_run, "callback " + std::to_string(id) + " ran after its handle was cancelled");
  if (h.timer) {
    const uvaio::TimePoint now = c.loop->time();
    FUZZ_CHECK(now >= h.when, "call_later callback " + std::to_string(id) + " ran before its deadline");
    const bool in_order = h.when > c.last_timer_when || (h.when == c.last_timer_when && h.seq > c.last_timer_seq);
    FUZZ_CHECK(in_order, "call_later callback " + std::to_string(id) + " ran out of (deadline, scheduling) order");
    c.last_timer_when = h.when;
    c.last_timer_seq = h.seq;
  } else {
    FUZZ_CHECK(h.seq > c.last_soon_seq, "call_soon callback " + std::to_string(id) + " ran out of FIFO order");
    c.last_soon_seq = h.seq;
  }
  if ((h.action & 2) != 0 && c.handles.size() < kMaxHandles) {
    const int nested = static_cast<int>(c.handles.size());
    HandleRec& n = c.handles.emplace_back();
    n.seq = c.next_seq++;
    n.handle = c.loop->call_soon(Callback{&c, nested, {}});
  }
  if (h.timer && (h.action & 4) != 0 && !c.tasks.empty()) {
    TaskRec& t = c.tasks[static_cast<std::size_t>(h.target) % c.tasks.size()];
    const bool was_done = t.task.done();
    const bool accepted = t.task.cancel();
    FUZZ_CHECK(accepted == !was_done, "Task::cancel() from a timer callback returned the wrong answer");
    if (accepted) {
      t.cancel_confirmed = true;
      c.taint(t.body);
    }
  }
  if ((h.action & 1) != 0) {
    ++c.throwing_callback_runs;
    throw TestError(kCallbackCodeBase + id);
  }
}

// --- task bodies --------------------------------------------------------------------

uvaio::Async<void> yields(int n) {
  for (int i = 0; i < n; ++i) co_await uvaio::sleep(0s);
}

int natural_value(int body) { return 1000 + body; }
int natural_code(int body) { return 5000 + body; }

uvaio::Async<int> body_steps(Ctx* c, int id, uvaio::Task<int> dep) {
  const BodyRec& b = c->bodies[static_cast<std::size_t>(id)];
  const int kind = b.kind;
  const int param = b.param;
  switch (kind) {
    case 0: {
      auto y = yields(param % 4);
      co_await std::move(y);
      co_return natural_value(id);
    }
    case 1:
      co_await uvaio::sleep(Ms(param));
      co_return natural_value(id);
    case 2: {
      auto y = yields(param % 4);
      co_await std::move(y);
      throw TestError(natural_code(id));
    }
    case 3: {
      const int slot = c->work_items < kMaxWork ? c->work_items++ : kMaxWork - 1;
      WorkFn fn{&c->work_runs[static_cast<std::size_t>(slot)], {}};
      auto future = uvaio::to_thread(fn, id, (param % 29) * 7);
      const int r = co_await future;
      FUZZ_CHECK(r == id * 7 + 3, "to_thread in a task body returned a wrong result");
      co_return natural_value(id);
    }
    case 4: {
      const int w = co_await dep;
      co_return w + 1;
    }
    default:
      co_await uvaio::sleep(Ms(param));
      throw TestError(natural_code(id));
  }
}

uvaio::Async<int> body(Ctx* c, int id, Token /*frame*/, uvaio::Task<int> dep) {
  {
    BodyRec& b = c->bodies[static_cast<std::size_t>(id)];
    ++b.starts;
    FUZZ_CHECK(b.starts == 1, "body " + std::to_string(id) + " started twice");
  }
  int result = 0;
  try {
    auto steps = body_steps(c, id, std::move(dep));
    result = co_await std::move(steps);
  } catch (...) {
    BodyRec& b = c->bodies[static_cast<std::size_t>(id)];
    b.exit = classify(std::current_exception());
    b.exit_seq = c->next_seq++;
    throw;
  }
  BodyRec& b = c->bodies[static_cast<std::size_t>(id)];
  b.exit = {End::value, result};
  b.exit_seq = c->next_seq++;
  co_return result;
}

// A new body record from a kind byte and a parameter byte; its Async is made by make_body.
int new_body(Ctx& c, int kind_byte, int param_byte) {
  BodyRec& b = c.bodies.emplace_back();
  b.kind = kind_byte % 6;
  b.param = param_byte;
  if (b.kind == 1 || b.kind == 5) b.param = c.take_sleep_ms(param_byte);
  if (b.kind == 4) {
    if (c.tasks.empty()) {
      b.kind = 0;  // nothing to await yet
    } else {
      b.dep = param_byte % static_cast<int>(c.tasks.size());
    }
  }
  return static_cast<int>(c.bodies.size()) - 1;
}

uvaio::Async<int> make_body(Ctx& c, int id) {
  const BodyRec& b = c.bodies[static_cast<std::size_t>(id)];
  uvaio::Task<int> dep;
  if (b.dep >= 0) dep = c.tasks[static_cast<std::size_t>(b.dep)].task;
  return body(&c, id, Token{}, std::move(dep));
}

Outcome outcome_of(const uvaio::Task<int>& t) {
  if (!t.done()) return {};
  if (t.cancelled()) return {End::cancelled, 0};
  if (std::exception_ptr e = t.exception()) return classify(e);
  return {End::value, t.result()};
}

// What a body may have ended with, given what its dependency ended with.
void check_body_exit(Ctx& c, int id, bool cancel_confirmed) {
  const BodyRec& b = c.bodies[static_cast<std::size_t>(id)];
  const std::string who = "body " + std::to_string(id) + " (kind " + std::to_string(b.kind) + ")";
  if (b.exit.end == End::none) return;
  FUZZ_CHECK(b.exit.end != End::other, who + " ended with an unexpected exception type");
  if (cancel_confirmed) {
    FUZZ_CHECK(b.exit.end == End::cancelled, who + ": its task's cancel() returned true but it ended " + describe(b.exit));
    return;
  }
  if (b.exit.end == End::cancelled) {
    bool allowed = b.may_be_cancelled;
    if (b.kind == 4) allowed = allowed || outcome_of(c.tasks[static_cast<std::size_t>(b.dep)].task).end == End::cancelled;
    FUZZ_CHECK(allowed, who + " ended cancelled although no cancellation could reach it");
    return;
  }
  if (b.kind == 4) {
    const Outcome d = outcome_of(c.tasks[static_cast<std::size_t>(b.dep)].task);
    Outcome expected = d;
    if (d.end == End::value) expected.value = d.value + 1;
    FUZZ_CHECK(same(b.exit, expected), who + " ended " + describe(b.exit) + " but the task it awaited ended " + describe(d));
    return;
  }
  const bool throws = b.kind == 2 || b.kind == 5;
  const Outcome expected = throws ? Outcome{End::error, natural_code(id)} : Outcome{End::value, natural_value(id)};
  FUZZ_CHECK(same(b.exit, expected), who + " ended " + describe(b.exit) + ", expected " + describe(expected));
}

// A task's outcome is its body's; and the body's is what the model allows.
void check_task(Ctx& c, int index) {
  TaskRec& t = c.tasks[static_cast<std::size_t>(index)];
  const std::string who = "task " + std::to_string(index);
  FUZZ_CHECK(t.task.done(), who + " is not done");
  const Outcome o = outcome_of(t.task);
  const BodyRec& b = c.bodies[static_cast<std::size_t>(t.body)];
  if (b.exit.end == End::none) {
    FUZZ_CHECK(o.end == End::cancelled, who + " is done without its body ending, but not cancelled");
    FUZZ_CHECK(t.cancel_confirmed || b.may_be_cancelled || t.pending_at_close,
               who + " was cancelled before its body ended, by nobody");
  } else {
    FUZZ_CHECK(same(o, b.exit), who + " ended " + describe(o) + " but its body ended " + describe(b.exit));
  }
  if (t.cancel_confirmed) FUZZ_CHECK(o.end == End::cancelled, who + ": cancel() returned true but it ended " + describe(o));
  check_body_exit(c, t.body, t.cancel_confirmed);
}

// --- the ops ---------------------------------------------------------------------------

void op_call(Ctx& c, bool timer) {
  const int action = c.byte();
  const int delay = timer ? c.take_sleep_ms(c.byte()) : 0;
  if (c.handles.size() >= kMaxHandles) return;
  const int id = static_cast<int>(c.handles.size());
  HandleRec& h = c.handles.emplace_back();
  h.timer = timer;
  h.action = timer ? action : (action & 3);
  h.target = action >> 3;
  h.seq = c.next_seq++;
  if (timer) {
    uvaio::TimerHandle th = c.loop->call_later(Ms(delay), Callback{&c, id, {}});
    h.when = th.when();
    c.max_due = std::max(c.max_due, h.when);
    c.has_timers = true;
    h.handle = std::move(th);
  } else {
    h.handle = c.loop->call_soon(Callback{&c, id, {}});
  }
}

void op_cancel_handle(Ctx& c) {
  const int i = c.byte();
  if (c.handles.empty()) return;
  HandleRec& h = c.handles[static_cast<std::size_t>(i) % c.handles.size()];
  h.handle.cancel();
  if (h.runs == 0) h.cancelled_before_run = true;
}

void op_create_task(Ctx& c) {
  const int kind = c.byte();
  const int param = c.byte();
  if (c.tasks.size() >= kMaxTasks || c.bodies.size() >= kMaxBodies) return;
  const int id = new_body(c, kind, param);
  auto coro = make_body(c, id);
  uvaio::Task<int> task = c.loop->create_task(std::move(coro));
  c.tasks.push_back({std::move(task), id, false, false});
}

void op_cancel_task(Ctx& c) {
  const int i = c.byte();
  if (c.tasks.empty()) return;
  TaskRec& t = c.tasks[static_cast<std::size_t>(i) % c.tasks.size()];
  const bool was_done = t.task.done();
  const bool accepted = t.task.cancel();
  FUZZ_CHECK(accepted == !was_done, "Task::cancel() returned the wrong answer");
  if (accepted) {
    t.cancel_confirmed = true;
    c.taint(t.body);
  }
}

uvaio::Async<void> op_await_task(Ctx* c, int i) {
  const std::size_t index = static_cast<std::size_t>(i) % c->tasks.size();
  uvaio::Task<int> t = c->tasks[index].task;
  Outcome got;
  try {
    const int v = co_await t;
    got = {End::value, v};
  } catch (...) {
    got = classify(std::current_exception());
  }
  FUZZ_CHECK(t.done(), "a task awaited to its end is not done");
  FUZZ_CHECK(same(got, outcome_of(t)), "awaiting task " + std::to_string(index) + " gave " + describe(got) +
                                           ", its result is " + describe(outcome_of(t)));
  check_task(*c, static_cast<int>(index));
}

uvaio::Async<void> op_to_thread(Ctx* c, int x, int micros_byte) {
  const int slot = c->work_items < kMaxWork ? c->work_items++ : kMaxWork - 1;
  std::atomic<int>* runs = &c->work_runs[static_cast<std::size_t>(slot)];
  WorkFn fn{runs, {}};
  const bool cancel_first = (micros_byte & 1) != 0;
  auto future = uvaio::to_thread(fn, x, (micros_byte % 29) * 7);
  if (cancel_first) {
    const bool accepted = future.cancel();
    FUZZ_CHECK(accepted, "cancelling a to_thread future that was just created was refused");
  }
  Outcome got;
  try {
    const int v = co_await future;
    got = {End::value, v};
  } catch (...) {
    got = classify(std::current_exception());
  }
  if (cancel_first) {
    FUZZ_CHECK(got.end == End::cancelled, "a cancelled to_thread future gave " + describe(got));
  } else {
    FUZZ_CHECK(got.end == End::value && got.value == x * 7 + 3, "to_thread gave " + describe(got));
    FUZZ_CHECK(runs->load() == 1, "to_thread's function did not run exactly once before its result arrived");
  }
  FUZZ_CHECK(runs->load() <= 1, "to_thread's function ran more than once");
}

uvaio::Async<void> op_gather(Ctx* c, int n, bool existing) {
  if (existing) {
    if (c->tasks.empty()) co_return;
    std::vector<uvaio::Task<int>> children;
    std::vector<std::size_t> indices;
    for (int i = 0; i < n; ++i) {
      indices.push_back(static_cast<std::size_t>(c->byte()) % c->tasks.size());
      children.push_back(c->tasks[indices.back()].task);
    }
    std::vector<int> values;
    std::exception_ptr error;
    try {
      auto g = uvaio::gather(children);
      values = co_await std::move(g);
    } catch (...) {
      error = std::current_exception();
    }
    if (!error) {
      FUZZ_CHECK(values.size() == children.size(), "gather returned the wrong number of values");
      for (std::size_t i = 0; i < children.size(); ++i) {
        const Outcome o = outcome_of(children[i]);
        FUZZ_CHECK(o.end == End::value && o.value == values[i], "gather's value " + std::to_string(i) + " is " +
                                                                    std::to_string(values[i]) + ", the task ended " +
                                                                    describe(o));
      }
    } else {
      const Outcome e = classify(error);
      bool found = false;
      for (const auto& child : children) found = found || same(outcome_of(child), e);
      FUZZ_CHECK(found, "gather of tasks failed with " + describe(e) + ", which no child ended with");
    }
    co_return;
  }
  std::vector<uvaio::Async<int>> asyncs;
  std::vector<int> ids;
  for (int i = 0; i < n; ++i) {
    const int kind = c->byte();
    const int param = c->byte();
    if (c->bodies.size() >= kMaxBodies) break;
    const int id = new_body(*c, kind, param);
    c->taint(id);  // gather cancels the siblings of a failed child
    ids.push_back(id);
    asyncs.push_back(make_body(*c, id));
  }
  if (asyncs.empty()) co_return;
  std::vector<int> values;
  std::exception_ptr error;
  try {
    auto g = uvaio::gather(std::move(asyncs));
    values = co_await std::move(g);
  } catch (...) {
    error = std::current_exception();
  }
  for (int id : ids) {
    const BodyRec& b = c->bodies[static_cast<std::size_t>(id)];
    FUZZ_CHECK(b.starts == 0 || b.exit.end != End::none, "gather returned while a body it owns still runs");
    check_body_exit(*c, id, false);
  }
  if (!error) {
    FUZZ_CHECK(values.size() == ids.size(), "gather returned the wrong number of values");
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const Outcome& x = c->bodies[static_cast<std::size_t>(ids[i])].exit;
      FUZZ_CHECK(x.end == End::value && x.value == values[i],
                 "gather's value " + std::to_string(i) + " is " + std::to_string(values[i]) + ", the body ended " +
                     describe(x));
    }
  } else {
    const Outcome e = classify(error);
    const BodyRec* first = nullptr;
    for (int id : ids) {
      const BodyRec& b = c->bodies[static_cast<std::size_t>(id)];
      if (b.exit.end == End::none || b.exit.end == End::value) continue;
      if (first == nullptr || b.exit_seq < first->exit_seq) first = &b;
    }
    FUZZ_CHECK(first != nullptr, "gather of bodies failed with " + describe(e) + " but none of them failed");
    FUZZ_CHECK(same(first->exit, e), "gather of bodies failed with " + describe(e) + ", the first failure was " +
                                         describe(first->exit));
  }
}

uvaio::Async<void> op_wait_for(Ctx* c, int mode, int t, int x) {
  std::optional<uvaio::Duration> timeout;
  if (t % 5 != 4) timeout = Ms(c->take_sleep_ms(t));
  Outcome got;
  bool timed_out = false;
  if ((mode & 1) != 0 && !c->tasks.empty()) {
    const std::size_t index = static_cast<std::size_t>(x) % c->tasks.size();
    uvaio::Task<int> task = c->tasks[index].task;
    const bool was_done = task.done();
    if (timeout) c->taint(c->tasks[index].body);
    try {
      auto w = uvaio::wait_for(task, timeout);
      const int v = co_await std::move(w);
      got = {End::value, v};
    } catch (const uvaio::TimeoutError&) {
      timed_out = true;
    } catch (...) {
      got = classify(std::current_exception());
    }
    FUZZ_CHECK(task.done(), "wait_for on a task returned while the task is still pending");
    const Outcome o = outcome_of(task);
    if (timed_out) {
      FUZZ_CHECK(!was_done, "wait_for raised TimeoutError on a task that was already done");
      // A task that finished in the iteration in which the deadline passed may
      // keep its value (asyncio has the same window); otherwise it was cancelled.
    } else {
      FUZZ_CHECK(same(got, o), "wait_for on a task gave " + describe(got) + ", the task ended " + describe(o));
    }
    co_return;
  }
  if (c->bodies.size() >= kMaxBodies) co_return;
  const int id = new_body(*c, x, c->byte());
  if (timeout) c->taint(id);
  auto inner = make_body(*c, id);
  try {
    auto w = uvaio::wait_for(std::move(inner), timeout);
    const int v = co_await std::move(w);
    got = {End::value, v};
  } catch (const uvaio::TimeoutError&) {
    timed_out = true;
  } catch (...) {
    got = classify(std::current_exception());
  }
  const BodyRec& b = c->bodies[static_cast<std::size_t>(id)];
  FUZZ_CHECK(b.starts == 0 || b.exit.end != End::none, "wait_for returned while its body still runs");
  if (timed_out) {
    FUZZ_CHECK(timeout.has_value(), "wait_for without a timeout raised TimeoutError");
    FUZZ_CHECK(b.exit.end == End::none || b.exit.end == End::cancelled,
               "wait_for raised TimeoutError although its body finished: " + describe(b.exit));
  } else {
    FUZZ_CHECK(b.starts == 1, "wait_for finished without TimeoutError but its body never ran");
    FUZZ_CHECK(same(got, b.exit), "wait_for gave " + describe(got) + ", its body ended " + describe(b.exit));
  }
  check_body_exit(*c, id, false);
}

uvaio::Async<void> op_task_group(Ctx* c, int n) {
  std::vector<int> ids;
  std::vector<uvaio::Task<int>> children;
  std::exception_ptr error;
  {
    uvaio::TaskGroup group;
    for (int i = 0; i < n; ++i) {
      const int kind = c->byte();
      const int param = c->byte();
      if (c->bodies.size() >= kMaxBodies || c->tasks.size() >= kMaxTasks) break;
      const int id = new_body(*c, kind, param);
      c->taint(id);  // the group cancels the other children when one fails
      auto coro = make_body(*c, id);
      uvaio::Task<int> task = group.create_task(std::move(coro));
      c->tasks.push_back({task, id, false, false});
      ids.push_back(id);
      children.push_back(std::move(task));
    }
    try {
      auto j = group.join();
      co_await std::move(j);
    } catch (...) {
      error = std::current_exception();
    }
  }
  for (const auto& child : children) FUZZ_CHECK(child.done(), "TaskGroup::join() returned with a child pending");
  std::vector<const BodyRec*> failures;
  for (int id : ids) {
    const BodyRec& b = c->bodies[static_cast<std::size_t>(id)];
    if (b.exit.end == End::error) failures.push_back(&b);
  }
  std::sort(failures.begin(), failures.end(), [](const BodyRec* a, const BodyRec* b) { return a->exit_seq < b->exit_seq; });
  if (!error) {
    FUZZ_CHECK(failures.empty(), "TaskGroup::join() returned normally although a child failed");
    co_return;
  }
  try {
    std::rethrow_exception(error);
  } catch (const uvaio::ExceptionGroup& group_error) {
    const auto& members = group_error.exceptions();
    FUZZ_CHECK(members.size() == failures.size(), "the TaskGroup's ExceptionGroup holds " +
                                                      std::to_string(members.size()) + " exceptions, " +
                                                      std::to_string(failures.size()) + " children failed");
    for (std::size_t i = 0; i < members.size(); ++i) {
      const Outcome m = classify(members[i]);
      FUZZ_CHECK(same(m, failures[i]->exit), "ExceptionGroup member " + std::to_string(i) + " is " + describe(m) +
                                                 ", the failure in that place was " + describe(failures[i]->exit));
    }
  } catch (...) {
    violated("TaskGroup::join() threw something other than ExceptionGroup: " + describe(classify(error)));
  }
}

uvaio::Async<void> drain(Ctx* c) {
  for (std::size_t i = 0; i < c->tasks.size(); ++i) {
    uvaio::Task<int> t = c->tasks[i].task;
    try {
      const int v = co_await t;
      (void)v;
    } catch (...) {
    }
  }
  // Every timer is due by max_due. A sleep scheduled now ends later than that
  // (equal deadlines fire in scheduling order), and the loop fires deadlines
  // in order, so once it ends every timer has fired.
  if (c->has_timers) {
    const uvaio::Duration left = std::max(c->max_due - c->loop->time(), uvaio::Duration::zero());
    co_await uvaio::sleep(left + 1ns);
  }
  // What those callbacks call_soon'ed, in two more generations at most.
  for (int i = 0; i < 3; ++i) co_await uvaio::sleep(0s);
}

uvaio::Async<int> program(Ctx* c) {
  for (int op = 0; op < kMaxOps && c->more(); ++op) {
    const int code = c->byte() % 13;
    switch (code) {
      case 0: op_call(*c, false); break;
      case 1: op_call(*c, true); break;
      case 2: op_cancel_handle(*c); break;
      case 3: op_create_task(*c); break;
      case 4: op_cancel_task(*c); break;
      case 5: {
        const int i = c->byte();
        if (c->tasks.empty()) break;
        auto a = op_await_task(c, i);
        co_await std::move(a);
        break;
      }
      case 6: {
        const int x = c->byte();
        const int u = c->byte();
        auto a = op_to_thread(c, x, u);
        co_await std::move(a);
        break;
      }
      case 7: {
        const int n = 1 + c->byte() % 4;
        const bool existing = (c->byte() & 1) != 0;
        auto a = op_gather(c, n, existing);
        co_await std::move(a);
        break;
      }
      case 8: {
        const int mode = c->byte();
        const int t = c->byte();
        const int x = c->byte();
        auto a = op_wait_for(c, mode, t, x);
        co_await std::move(a);
        break;
      }
      case 9: {
        const int n = c->byte() % 4;
        auto a = op_task_group(c, n);
        co_await std::move(a);
        break;
      }
      case 10: {
        bool refused = false;
        try {
          c->loop->close();
        } catch (const uvaio::RuntimeError&) {
          refused = true;
        }
        FUZZ_CHECK(refused, "close() of a running loop did not throw RuntimeError");
        FUZZ_CHECK(!c->loop->is_closed(), "a refused close() closed the loop");
        break;
      }
      case 11: {
        const int ms = c->take_sleep_ms(c->byte());
        co_await uvaio::sleep(Ms(ms));
        break;
      }
      default:
        co_await uvaio::sleep(0s);
        break;
    }
  }
  if (!c->leave_pending) {
    auto d = drain(c);
    co_await std::move(d);
  }
  co_return 0;
}

void on_report(Ctx& c, const uvaio::ExceptionContext& context) {
  if (context.message == "Task was destroyed but it is pending!") {
    ++c.destroyed_pending_reports;
    return;
  }
  if (context.exception) {
    const Outcome o = classify(context.exception);
    if (o.end == End::error && o.value >= kCallbackCodeBase) {
      ++c.callback_reports;
      return;
    }
  }
  if (context.message.find("exception was never retrieved") != std::string::npos) return;
  violated("unexpected report to the exception handler: " + context.message);
}

void run_input(const std::uint8_t* data, std::size_t size) {
  const long made_before = Token::made.load();
  const long gone_before = Token::gone.load();
  Ctx c(data, size);
  c.leave_pending = (c.byte() & 1) != 0;
  {
    uvaio::Loop loop;
    c.loop = &loop;
    loop.set_exception_handler([&c](uvaio::Loop&, const uvaio::ExceptionContext& context) { on_report(c, context); });
    const int r = loop.run_until_complete(program(&c));
    FUZZ_CHECK(r == 0, "the program's result got lost");

    int pending = 0;
    for (TaskRec& t : c.tasks) {
      t.pending_at_close = !t.task.done();
      pending += t.pending_at_close ? 1 : 0;
    }
    if (!c.leave_pending) {
      FUZZ_CHECK(pending == 0, "tasks are still pending after the drain");
      for (const HandleRec& h : c.handles) {
        FUZZ_CHECK(h.runs == (h.cancelled_before_run ? 0 : 1), "a callback that was not cancelled did not run");
      }
    }
    const int runs_before_close = c.total_callback_runs;
    loop.close();
    FUZZ_CHECK(loop.is_closed(), "close() left the loop open");
    FUZZ_CHECK(c.total_callback_runs == runs_before_close, "a callback ran during close()");
    FUZZ_CHECK(c.destroyed_pending_reports == pending,
               std::to_string(pending) + " tasks were pending at close(), " +
                   std::to_string(c.destroyed_pending_reports) + " were reported destroyed");
    FUZZ_CHECK(c.callback_reports == c.throwing_callback_runs, "a callback's exception was not reported exactly once");
    for (std::size_t i = 0; i < c.tasks.size(); ++i) check_task(c, static_cast<int>(i));
    for (const BodyRec& b : c.bodies) FUZZ_CHECK(b.starts <= 1, "a body started twice");
    for (int i = 0; i < c.work_items; ++i) {
      FUZZ_CHECK(c.work_runs[static_cast<std::size_t>(i)].load() <= 1, "a work function ran twice");
    }
    c.tasks.clear();
    c.handles.clear();
    c.loop = nullptr;
  }
  const long made = Token::made.load() - made_before;
  const long gone = Token::gone.load() - gone_before;
  FUZZ_CHECK(made == gone, std::to_string(made) + " instrumented objects were made, " + std::to_string(gone) +
                               " destroyed");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool quiet = [] {
    // What uvaio logs (slow callbacks in debug mode, shutdown warnings) is noise
    // here; the checks read the exception handler. UVAIO_FUZZ_LOG=1 keeps it.
    const char* keep = std::getenv("UVAIO_FUZZ_LOG");
    if (keep == nullptr || *keep == '\0' || *keep == '0') {
      uvaio::set_logger(std::make_shared<spdlog::logger>("uvaio", std::make_shared<spdlog::sinks::null_sink_mt>()));
    }
    return true;
  }();
  (void)quiet;
  run_input(data, size);
  return 0;
}
