// uvaio's benchmark suite: every workload runs through plain libuv callbacks
// written here and through uvaio, alternating in one process (raw, uvaio,
// uvaio, raw, ... so that a drift in machine load hits both sides alike), and
// the table gives the medians and their ratio. Absolute times on a shared
// 2-core machine are noise; the ratio measured in one run is not.
//
//   uvaio_bench [--only a,b,...] [--scale S | --quick] [--rounds N]
//               [--side raw|uvaio|pool] [--ops N] [--no-warmup]
//               [--no-asyncio] [--asyncio-script PATH] [--list]
//
// stdout: one header line, one line per workload, then '#' lines (the legend
// and the machine). Seven whitespace-separated fields per workload line:
//   name uvaio_ns_per_op baseline_ns_per_op ratio asyncio_ns_per_op uvaio_per_asyncio notes
// ('-' where a figure does not exist; notes are comma-separated key=value).
// Progress goes to stderr.
//
// --side runs one side once, for valgrind --tool=callgrind (see
// callgrind_roundtrip.sh): the timed part of every side runs inside
// uvaio_bench_measured(), so --toggle-collect=uvaio_bench_measured counts
// exactly the timed instructions of the thread that runs the loop.

#include <malloc.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <uv.h>

#include <uvaio/uvaio.hpp>

#ifndef UVAIO_BENCH_ASYNCIO_SCRIPT
#define UVAIO_BENCH_ASYNCIO_SCRIPT "asyncio_bench.py"
#endif

// The timed part of every side runs in here (see the top of the file).
extern "C" __attribute__((noinline)) void uvaio_bench_measured(void (*fn)(void*), void* arg) {
  fn(arg);
  asm volatile("" ::: "memory");
}

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::duration;

double ns_since(Clock::time_point start) { return duration<double, std::nano>(Clock::now() - start).count(); }

// Runs body() inside uvaio_bench_measured and returns its wall time in ns.
template <class F>
double timed(F&& body) {
  auto call = [](void* p) { (*static_cast<F*>(p))(); };
  const auto start = Clock::now();
  uvaio_bench_measured(call, &body);
  return ns_since(start);
}

double process_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// Current resident set, from /proc/self/statm (pages).
double rss_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return std::nan("");
  long size = 0;
  long resident = 0;
  const int got = std::fscanf(f, "%ld %ld", &size, &resident);
  std::fclose(f);
  if (got != 2) return std::nan("");
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

// Bytes malloc has handed out and not taken back (chunk overhead included).
double heap_bytes() {
  const struct mallinfo2 mi = mallinfo2();
  return static_cast<double>(mi.uordblks) + static_cast<double>(mi.hblkhd);
}

double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void check_uv(int rc, const char* what) {
  if (rc != 0) {
    std::fprintf(stderr, "uvaio_bench: %s: %s\n", what, uv_strerror(rc));
    std::exit(2);
  }
}

void close_loop(uv_loop_t* loop) {
  // Every handle a raw side opens is closed by the time uv_run returns; this
  // is a check, not cleanup.
  check_uv(uv_loop_close(loop), "uv_loop_close");
}

std::string load_average() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  if (f == nullptr) return "?";
  double a = 0;
  double b = 0;
  double c = 0;
  const int got = std::fscanf(f, "%lf %lf %lf", &a, &b, &c);
  std::fclose(f);
  if (got != 3) return "?";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %.2f %.2f", a, b, c);
  return buf;
}

std::size_t cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return static_cast<std::size_t>(CPU_COUNT(&set));
  return std::max(1U, std::thread::hardware_concurrency());
}

std::size_t libuv_pool_size() {
  // libuv 1.44 reads UV_THREADPOOL_SIZE once: default 4, clamped to 1..1024.
  const char* v = std::getenv("UV_THREADPOOL_SIZE");
  long n = v != nullptr ? std::atol(v) : 4;
  if (n <= 0) n = 1;
  if (n > 1024) n = 1024;
  return static_cast<std::size_t>(n);
}

constexpr std::size_t kPoolWorkers = 4;

// --- the work functions ----------------------------------------------------------

void noop() {}

// A fixed amount of CPU work (not a fixed time: a preempted worker must not
// finish its item early), calibrated at start-up to take ~10 us.
std::uint64_t g_spin_iters = 0;

void spin_item() {
  std::uint64_t x = 0x9e3779b97f4a7c15ULL;
  for (std::uint64_t i = 0; i < g_spin_iters; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    asm volatile("" : "+r"(x));
  }
}

void calibrate_spin(double target_ns) {
  g_spin_iters = 200000;
  double best = 1e300;
  for (int i = 0; i < 7; ++i) {
    const auto start = Clock::now();
    spin_item();
    best = std::min(best, ns_since(start));
  }
  g_spin_iters = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(200000.0 * target_ns / best));
}

void raw_noop(uv_work_t* /*req*/) {}
void raw_spin(uv_work_t* /*req*/) { spin_item(); }

using WorkFn = void (*)();
uv_work_cb raw_work_for(WorkFn fn) { return fn == &spin_item ? raw_spin : raw_noop; }

// --- raw libuv: a window of uv_queue_work requests ------------------------------
//
// `width` requests in flight; each after_work callback resubmits its request
// until `total` have been submitted. width 1 is a plain chain (roundtrip).

struct RawWindow {
  uv_loop_t loop{};
  std::vector<uv_work_t> requests;
  long to_submit = 0;
  uv_work_cb work = raw_noop;

  static void after(uv_work_t* req, int status) {
    auto* self = static_cast<RawWindow*>(req->data);
    check_uv(status, "after_work");
    if (self->to_submit > 0) {
      --self->to_submit;
      check_uv(uv_queue_work(&self->loop, req, self->work, after), "uv_queue_work");
    }
  }
};

double raw_window(long total, long width, WorkFn fn) {
  RawWindow w;
  check_uv(uv_loop_init(&w.loop), "uv_loop_init");
  width = std::min(width, total);
  w.requests.resize(static_cast<std::size_t>(width));
  w.to_submit = total;
  w.work = raw_work_for(fn);
  const double ns = timed([&] {
    for (auto& r : w.requests) {
      r.data = &w;
      --w.to_submit;
      check_uv(uv_queue_work(&w.loop, &r, w.work, RawWindow::after), "uv_queue_work");
    }
    uv_run(&w.loop, UV_RUN_DEFAULT);
  });
  close_loop(&w.loop);
  return ns / static_cast<double>(total);
}

// --- raw libuv: fan-out ----------------------------------------------------------
//
// Submit `width` requests, count completions; the last one starts the next batch.

struct RawFanout {
  uv_loop_t loop{};
  std::vector<uv_work_t> requests;
  long batches_left = 0;
  long outstanding = 0;

  void start_batch() {
    outstanding = static_cast<long>(requests.size());
    for (auto& r : requests) {
      r.data = this;
      check_uv(uv_queue_work(&loop, &r, raw_noop, after), "uv_queue_work");
    }
  }
  static void after(uv_work_t* req, int status) {
    auto* self = static_cast<RawFanout*>(req->data);
    check_uv(status, "after_work");
    if (--self->outstanding == 0 && --self->batches_left > 0) self->start_batch();
  }
};

double raw_fanout(long batches, long width) {
  RawFanout f;
  check_uv(uv_loop_init(&f.loop), "uv_loop_init");
  f.requests.resize(static_cast<std::size_t>(width));
  f.batches_left = batches;
  const double ns = timed([&] {
    f.start_batch();
    uv_run(&f.loop, UV_RUN_DEFAULT);
  });
  close_loop(&f.loop);
  return ns / static_cast<double>(batches * width);
}

// --- uvaio: the same workloads on an executor (null: the default one) -----------

uvaio::Async<void> uvaio_chain(long count, uvaio::Executor* executor, WorkFn fn) {
  if (executor == nullptr) {
    for (long i = 0; i < count; ++i) {
      co_await uvaio::to_thread(fn);
    }
  } else {
    uvaio::Loop& loop = uvaio::get_running_loop();
    for (long i = 0; i < count; ++i) {
      co_await loop.run_in_executor(executor, fn);
    }
  }
}

// `width` tasks, each awaiting its share of the `total` calls one after the
// other; width 1 awaits them all in the main task itself (roundtrip).
uvaio::Async<void> uvaio_window(long total, long width, uvaio::Executor* executor, WorkFn fn) {
  if (width <= 1) {
    co_await uvaio_chain(total, executor, fn);
    co_return;
  }
  std::vector<uvaio::Task<void>> tasks;
  tasks.reserve(static_cast<std::size_t>(width));
  for (long i = 0; i < width; ++i) {
    const long share = total / width + (i < total % width ? 1 : 0);
    tasks.push_back(uvaio::create_task(uvaio_chain(share, executor, fn)));
  }
  for (auto& task : tasks) {
    co_await task;
  }
}

uvaio::Async<void> uvaio_fanout(long batches, long width, uvaio::Executor* executor) {
  uvaio::Loop& loop = uvaio::get_running_loop();
  for (long b = 0; b < batches; ++b) {
    std::vector<uvaio::Future<void>> calls;
    calls.reserve(static_cast<std::size_t>(width));
    for (long i = 0; i < width; ++i) {
      if (executor == nullptr) {
        calls.push_back(uvaio::to_thread(noop));
      } else {
        calls.push_back(loop.run_in_executor(executor, noop));
      }
    }
    co_await uvaio::gather(std::move(calls));
  }
}

// Loop construction and close are outside the timed part, as uv_loop_init and
// uv_loop_close are for the raw sides.
double run_uvaio(uvaio::Async<void> main, long ops) {
  uvaio::Loop loop;
  const double ns = timed([&] { loop.run_until_complete(std::move(main)); });
  return ns / static_cast<double>(ops);
}

// --- spawn -------------------------------------------------------------------------
//
// uvaio: create a task running a trivial coroutine and await it, 1,000,000
// times. asyncio: the same with asyncio.create_task. Raw libuv has no tasks;
// the baseline is what a callback program writes for "run this on the next
// loop iteration and tell me when it is done": a hand-written ready queue
// drained by a uv_idle_t (as uvaio's own), a malloc'ed job per spawn that runs
// on one iteration and queues its parent's continuation for the next, which
// frees nothing and spawns the next job. Two loop iterations per op, as a
// task's first step and the awaiter's resumption take in uvaio and asyncio.

struct RawReadyQueue {
  struct Job {
    Job* next = nullptr;
    void (*run)(Job*) = nullptr;
  };

  uv_loop_t loop{};
  uv_idle_t idle{};
  Job* head = nullptr;
  Job** tail = &head;
  bool active = false;

  void init() {
    check_uv(uv_loop_init(&loop), "uv_loop_init");
    check_uv(uv_idle_init(&loop, &idle), "uv_idle_init");
    idle.data = this;
  }
  void post(Job* job) {
    job->next = nullptr;
    *tail = job;
    tail = &job->next;
    if (!active) {
      uv_idle_start(&idle, on_idle);
      active = true;
    }
  }
  // A snapshot per iteration, as asyncio's _run_once: jobs posted meanwhile
  // wait for the next one.
  static void on_idle(uv_idle_t* handle) {
    auto* self = static_cast<RawReadyQueue*>(handle->data);
    Job* list = self->head;
    self->head = nullptr;
    self->tail = &self->head;
    while (list != nullptr) {
      Job* next = list->next;
      list->run(list);
      list = next;
    }
    if (self->head == nullptr) {
      uv_idle_stop(&self->idle);
      self->active = false;
    }
  }
  void close() {
    uv_close(reinterpret_cast<uv_handle_t*>(&idle), nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
    close_loop(&loop);
  }
};

struct RawSpawn {
  struct Child : RawReadyQueue::Job {
    RawSpawn* owner = nullptr;
  };
  RawReadyQueue queue;
  RawReadyQueue::Job continuation;
  long remaining = 0;

  void spawn() {
    auto* child = new Child;
    child->owner = this;
    child->run = [](RawReadyQueue::Job* job) {
      auto* c = static_cast<Child*>(job);
      RawSpawn* self = c->owner;
      delete c;
      self->queue.post(&self->continuation);
    };
    queue.post(child);
  }
};

double raw_spawn(long n) {
  RawSpawn s;
  s.queue.init();
  s.remaining = n;
  s.continuation.run = [](RawReadyQueue::Job* job) {
    RawSpawn* self = reinterpret_cast<RawSpawn*>(reinterpret_cast<char*>(job) - offsetof(RawSpawn, continuation));
    if (--self->remaining > 0) self->spawn();
  };
  const double ns = timed([&] {
    s.spawn();
    uv_run(&s.queue.loop, UV_RUN_DEFAULT);
  });
  s.queue.close();
  return ns / static_cast<double>(n);
}

uvaio::Async<void> trivial() { co_return; }

uvaio::Async<void> uvaio_spawn(long n) {
  for (long i = 0; i < n; ++i) {
    uvaio::Task<void> task = uvaio::create_task(trivial());
    co_await task;
  }
}

// --- sleep0 ----------------------------------------------------------------------
//
// uvaio: one task awaiting sleep(0s) 1,000,000 times (each yields to the loop
// once). Baseline: a uv_idle_t callback that runs 1,000,000 times, one per
// loop iteration -- the least libuv does to "let the loop go round once".

struct RawIdleChain {
  uv_loop_t loop{};
  uv_idle_t idle{};
  long remaining = 0;
  static void on_idle(uv_idle_t* handle) {
    auto* self = static_cast<RawIdleChain*>(handle->data);
    if (--self->remaining == 0) uv_idle_stop(handle);
  }
};

double raw_sleep0(long n) {
  RawIdleChain c;
  check_uv(uv_loop_init(&c.loop), "uv_loop_init");
  check_uv(uv_idle_init(&c.loop, &c.idle), "uv_idle_init");
  c.idle.data = &c;
  c.remaining = n;
  const double ns = timed([&] {
    uv_idle_start(&c.idle, RawIdleChain::on_idle);
    uv_run(&c.loop, UV_RUN_DEFAULT);
  });
  uv_close(reinterpret_cast<uv_handle_t*>(&c.idle), nullptr);
  uv_run(&c.loop, UV_RUN_DEFAULT);
  close_loop(&c.loop);
  return ns / static_cast<double>(n);
}

uvaio::Async<void> uvaio_sleep0(long n) {
  for (long i = 0; i < n; ++i) {
    co_await uvaio::sleep(std::chrono::seconds(0));
  }
}

// --- timers ----------------------------------------------------------------------
//
// 1,000,000 concurrent sleeps of random length in [0, 1000) ms (the same
// delays, from a fixed seed, for both sides), all fired. Wall time is bounded
// below by the longest sleep, so the figure is the process's CPU time per
// sleep (CLOCK_PROCESS_CPUTIME_ID: user + system, page faults included).
// uvaio: a task per sleep, `co_await uvaio::sleep(d)`. Baseline: a malloc'ed
// uv_timer_t per sleep, started, closed and freed in its callback.
//
// Memory per pending sleep. Before the sleeps are created the heap is trimmed
// (malloc_trim returns free pages to the kernel) and the resident set read
// from /proc/self/statm; it is read again once every sleep is pending (uvaio:
// when the main task resumes from a sleep(0) queued after the new tasks' first
// steps; raw: after the last uv_timer_start). That second reading is the peak
// of the run -- the sleeps only finish after it. (VmHWM would give the peak of
// the whole process, which an earlier workload may have set.) The difference
// divided by the number of sleeps is the RSS per pending sleep. The coroutine
// frame's share is measured apart: mallinfo2's allocated bytes (malloc chunk
// overhead included, as RSS includes it) across creating 1,000 unstarted
// frames of the same coroutine, divided by 1,000. RSS per sleep minus that is
// what a pending sleep costs beyond its frame: the task state and the loop's
// timer-heap slot. mallinfo2 is also read at the peak: heap bytes per sleep
// beyond the frame, a figure without page-granularity noise.

struct TimerMemory {
  double rss_per_op = 0;
  double heap_per_op = 0;
};

std::vector<std::chrono::microseconds> random_delays(long n) {
  std::mt19937_64 rng(12345);
  std::uniform_int_distribution<long> us(0, 999999);
  std::vector<std::chrono::microseconds> v(static_cast<std::size_t>(n));
  for (auto& d : v) d = std::chrono::microseconds(us(rng));
  return v;
}

struct RawTimer {
  uv_timer_t timer;
  long* remaining;
};

void on_raw_timer_closed(uv_handle_t* handle) {
  auto* timer = static_cast<RawTimer*>(handle->data);
  --*timer->remaining;
  std::free(timer);
}

void on_raw_timer(uv_timer_t* handle) { uv_close(reinterpret_cast<uv_handle_t*>(handle), on_raw_timer_closed); }

double raw_timers(const std::vector<std::chrono::microseconds>& delays, TimerMemory& memory) {
  const long n = static_cast<long>(delays.size());
  uv_loop_t loop{};
  check_uv(uv_loop_init(&loop), "uv_loop_init");
  long remaining = n;
  malloc_trim(0);
  const double rss0 = rss_bytes();
  const double heap0 = heap_bytes();
  const double cpu0 = process_cpu_ns();
  timed([&] {
    uv_update_time(&loop);
    for (const auto d : delays) {
      auto* t = static_cast<RawTimer*>(std::malloc(sizeof(RawTimer)));
      t->remaining = &remaining;
      check_uv(uv_timer_init(&loop, &t->timer), "uv_timer_init");
      t->timer.data = t;
      // libuv timers are whole milliseconds: rounded up, as uvaio does.
      const auto ms = std::chrono::ceil<std::chrono::milliseconds>(d).count();
      check_uv(uv_timer_start(&t->timer, on_raw_timer, static_cast<std::uint64_t>(ms), 0), "uv_timer_start");
    }
    memory.rss_per_op = (rss_bytes() - rss0) / static_cast<double>(n);
    memory.heap_per_op = (heap_bytes() - heap0) / static_cast<double>(n);
    uv_run(&loop, UV_RUN_DEFAULT);
  });
  const double cpu = process_cpu_ns() - cpu0;
  if (remaining != 0) {
    std::fprintf(stderr, "uvaio_bench: raw timers: %ld never fired\n", remaining);
    std::exit(2);
  }
  close_loop(&loop);
  return cpu / static_cast<double>(n);
}

struct SleepersState {
  long remaining = 0;
  uvaio::Future<void> all_fired;
};

uvaio::Async<void> sleeper(std::chrono::microseconds delay, SleepersState* state) {
  co_await uvaio::sleep(delay);
  if (--state->remaining == 0) state->all_fired.set_result();
}

// Heap bytes (chunk overhead included) of one unstarted sleeper frame.
double sleeper_frame_bytes() {
  constexpr int kFrames = 1000;
  std::vector<uvaio::Async<void>> frames;
  frames.reserve(kFrames);
  SleepersState dummy;
  const double before = heap_bytes();
  for (int i = 0; i < kFrames; ++i) frames.push_back(sleeper(std::chrono::microseconds(1), &dummy));
  const double after = heap_bytes();
  return (after - before) / kFrames;
}

uvaio::Async<void> trivial();

// Heap bytes of the task state create_task() allocates (beyond the frame).
double task_state_bytes() {
  constexpr int kTasks = 1000;
  uvaio::Loop loop;
  std::vector<uvaio::Async<void>> frames;
  frames.reserve(kTasks);
  std::vector<uvaio::Task<void>> tasks;
  tasks.reserve(kTasks);
  for (int i = 0; i < kTasks; ++i) frames.push_back(trivial());
  const double with_frames = heap_bytes();
  for (auto& frame : frames) tasks.push_back(loop.create_task(std::move(frame)));
  const double with_tasks = heap_bytes();
  loop.run_until_complete(tasks.back());  // FIFO: every task has finished by then
  return (with_tasks - with_frames) / kTasks;
}

uvaio::Async<void> uvaio_timers(const std::vector<std::chrono::microseconds>* delays, TimerMemory* memory,
                                double rss0, double heap0) {
  SleepersState state;
  state.remaining = static_cast<long>(delays->size());
  state.all_fired = uvaio::get_running_loop().create_future<void>();
  for (const auto d : *delays) {
    uvaio::create_task(sleeper(d, &state));  // the loop owns a pending task
  }
  // FIFO: by the time this task runs again, every sleeper's first step has
  // armed its timer (the shortest sleeps cannot fire before the next iteration).
  co_await uvaio::sleep(std::chrono::seconds(0));
  const double count = static_cast<double>(delays->size());
  memory->rss_per_op = (rss_bytes() - rss0) / count;
  memory->heap_per_op = (heap_bytes() - heap0) / count;
  co_await state.all_fired;
}

double run_uvaio_timers(const std::vector<std::chrono::microseconds>& delays, TimerMemory& memory) {
  uvaio::Loop loop;
  malloc_trim(0);
  const double rss0 = rss_bytes();
  const double heap0 = heap_bytes();
  const double cpu0 = process_cpu_ns();
  timed([&] { loop.run_until_complete(uvaio_timers(&delays, &memory, rss0, heap0)); });
  return (process_cpu_ns() - cpu0) / static_cast<double>(delays.size());
}

// --- threadsafe --------------------------------------------------------------------
//
// Another thread calls loop.call_soon_threadsafe(cb) 1,000,000 times; the loop
// runs every cb. Baseline: what a libuv program writes for the same -- a
// malloc'ed message on a mutex-protected intrusive FIFO plus uv_async_send per
// call, the async callback taking the whole list at once (sends coalesce).

struct RawInbox {
  struct Message {
    Message* next;
    void (*fn)(RawInbox&);
  };
  uv_loop_t loop{};
  uv_async_t async{};
  std::mutex mutex;
  Message* head = nullptr;
  Message** tail = &head;
  long count = 0;
  long n = 0;

  void post(Message* m) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      *tail = m;
      tail = &m->next;
    }
    uv_async_send(&async);
  }
  static void on_async(uv_async_t* handle) {
    auto* self = static_cast<RawInbox*>(handle->data);
    Message* list = nullptr;
    {
      std::lock_guard<std::mutex> lock(self->mutex);
      list = self->head;
      self->head = nullptr;
      self->tail = &self->head;
    }
    while (list != nullptr) {
      Message* next = list->next;
      list->fn(*self);
      delete list;
      list = next;
    }
    if (self->count == self->n) uv_close(reinterpret_cast<uv_handle_t*>(&self->async), nullptr);
  }
};

double raw_threadsafe(long n) {
  RawInbox inbox;
  check_uv(uv_loop_init(&inbox.loop), "uv_loop_init");
  check_uv(uv_async_init(&inbox.loop, &inbox.async, RawInbox::on_async), "uv_async_init");
  inbox.async.data = &inbox;
  inbox.n = n;
  const double ns = timed([&] {
    std::thread producer([&inbox, n] {
      for (long i = 0; i < n; ++i) {
        inbox.post(new RawInbox::Message{nullptr, [](RawInbox& self) { ++self.count; }});
      }
    });
    uv_run(&inbox.loop, UV_RUN_DEFAULT);
    producer.join();
  });
  close_loop(&inbox.loop);
  return ns / static_cast<double>(n);
}

struct ThreadsafeState {
  long count = 0;
  long n = 0;
  uvaio::Future<void> done;
};

uvaio::Async<void> uvaio_threadsafe(long n) {
  uvaio::Loop& loop = uvaio::get_running_loop();
  ThreadsafeState state;
  state.n = n;
  state.done = loop.create_future<void>();
  ThreadsafeState* s = &state;
  // Future handles belong to the loop thread: the callbacks capture a plain pointer.
  std::thread producer([&loop, s, n] {
    for (long i = 0; i < n; ++i) {
      loop.call_soon_threadsafe([s] {
        if (++s->count == s->n) s->done.set_result();
      });
    }
  });
  co_await state.done;
  producer.join();
}

// --- echo ------------------------------------------------------------------------
//
// TCP over loopback: kEchoConnections clients, each doing n / kEchoConnections
// (n = 100,000 at scale 1)
// ping-pong round trips of a 64-byte message with its own server-side
// connection (write, then wait for the whole echo). Connecting is included.
// Baseline: a raw libuv echo server and clients written here (uv_try_write,
// falling back to a malloc'ed uv_write). uvaio: start_server with a handler
// looping readexactly(64) / write / drain, and clients looping write / drain /
// readexactly(64), one task each. Ops = round trips.

constexpr int kEchoConnections = 50;
constexpr std::size_t kEchoMessage = 64;

struct RawEcho;

struct RawEchoConn {
  uv_tcp_t tcp{};
  RawEcho* bench = nullptr;
  bool client = false;
  long remaining = 0;       // clients: round trips still to start
  std::size_t pending = 0;  // clients: bytes of the echo still to come
  char buffer[64 * 1024];
};

struct RawEchoWrite {
  uv_write_t req{};
  char data[1];  // allocated longer
};

struct RawEcho {
  uv_loop_t loop{};
  uv_tcp_t server{};
  int clients_left = 0;
  std::vector<RawEchoConn*> conns;
  char message[kEchoMessage];

  static void on_closed(uv_handle_t* h) { delete static_cast<RawEchoConn*>(h->data); }
  static void close_conn(RawEchoConn* c) {
    if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&c->tcp)) == 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_closed);
    }
  }
  static void on_written(uv_write_t* req, int status) {
    check_uv(status, "uv_write");
    std::free(req);
  }
  static void send(RawEchoConn* c, const char* data, std::size_t size) {
    uv_buf_t buf = uv_buf_init(const_cast<char*>(data), static_cast<unsigned>(size));
    int sent = uv_try_write(reinterpret_cast<uv_stream_t*>(&c->tcp), &buf, 1);
    if (sent == UV_EAGAIN) sent = 0;
    if (sent < 0) check_uv(sent, "uv_try_write");
    if (static_cast<std::size_t>(sent) == size) return;
    const std::size_t rest = size - static_cast<std::size_t>(sent);
    auto* w = static_cast<RawEchoWrite*>(std::malloc(sizeof(RawEchoWrite) + rest));
    std::memcpy(w->data, data + sent, rest);
    uv_buf_t queued = uv_buf_init(w->data, static_cast<unsigned>(rest));
    check_uv(uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c->tcp), &queued, 1, on_written), "uv_write");
  }
  static void on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) {
    auto* c = static_cast<RawEchoConn*>(h->data);
    *buf = uv_buf_init(c->buffer, sizeof c->buffer);
  }
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    auto* c = static_cast<RawEchoConn*>(s->data);
    if (nread < 0) {
      close_conn(c);
      return;
    }
    if (nread == 0) return;
    if (!c->client) {
      send(c, buf->base, static_cast<std::size_t>(nread));
      return;
    }
    c->pending -= static_cast<std::size_t>(nread);
    if (c->pending > 0) return;
    if (--c->remaining > 0) {
      c->pending = kEchoMessage;
      send(c, c->bench->message, kEchoMessage);
      return;
    }
    close_conn(c);
    if (--c->bench->clients_left == 0) uv_close(reinterpret_cast<uv_handle_t*>(&c->bench->server), nullptr);
  }
  static void on_connection(uv_stream_t* server, int status) {
    check_uv(status, "listen");
    auto* self = static_cast<RawEcho*>(server->data);
    auto* c = new RawEchoConn;
    c->bench = self;
    c->tcp.data = c;
    check_uv(uv_tcp_init(&self->loop, &c->tcp), "uv_tcp_init");
    check_uv(uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->tcp)), "uv_accept");
    uv_tcp_nodelay(&c->tcp, 1);
    check_uv(uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), on_alloc, on_read), "uv_read_start");
  }
  static void on_connect(uv_connect_t* req, int status) {
    check_uv(status, "connect");
    auto* c = static_cast<RawEchoConn*>(req->data);
    delete req;
    uv_tcp_nodelay(&c->tcp, 1);
    check_uv(uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), on_alloc, on_read), "uv_read_start");
    c->pending = kEchoMessage;
    send(c, c->bench->message, kEchoMessage);
  }
};

double raw_echo(long n) {
  const long per_connection = std::max<long>(1, n / kEchoConnections);
  RawEcho b;
  std::memset(b.message, 'm', sizeof b.message);
  check_uv(uv_loop_init(&b.loop), "uv_loop_init");
  check_uv(uv_tcp_init(&b.loop, &b.server), "uv_tcp_init");
  b.server.data = &b;
  const auto any = uvaio::SocketAddress::parse("127.0.0.1", 0);
  check_uv(uv_tcp_bind(&b.server, any.native(), 0), "uv_tcp_bind");
  check_uv(uv_listen(reinterpret_cast<uv_stream_t*>(&b.server), 128, RawEcho::on_connection), "uv_listen");
  sockaddr_storage bound{};
  int size = sizeof bound;
  check_uv(uv_tcp_getsockname(&b.server, reinterpret_cast<sockaddr*>(&bound), &size), "getsockname");
  b.clients_left = kEchoConnections;
  const double ns = timed([&] {
    for (int i = 0; i < kEchoConnections; ++i) {
      auto* c = new RawEchoConn;
      c->bench = &b;
      c->client = true;
      c->remaining = per_connection;
      c->tcp.data = c;
      check_uv(uv_tcp_init(&b.loop, &c->tcp), "uv_tcp_init");
      auto* req = new uv_connect_t;
      req->data = c;
      check_uv(uv_tcp_connect(req, &c->tcp, reinterpret_cast<sockaddr*>(&bound), RawEcho::on_connect), "connect");
    }
    // Ends when every client finished and closed (the server closes with the
    // last one; the server-side connections close on EOF).
    uv_run(&b.loop, UV_RUN_DEFAULT);
  });
  close_loop(&b.loop);
  return ns / static_cast<double>(per_connection * kEchoConnections);
}

uvaio::Async<void> uvaio_echo_handler(uvaio::StreamReader reader, uvaio::StreamWriter writer) {
  for (;;) {
    std::string message = co_await reader.read(kEchoMessage);
    if (message.empty()) break;
    writer.write(message);
    co_await writer.drain();
  }
}

uvaio::Async<void> uvaio_echo_client(std::uint16_t port, long round_trips) {
  auto [reader, writer] = co_await uvaio::open_connection("127.0.0.1", port);
  const std::string message(kEchoMessage, 'm');
  for (long i = 0; i < round_trips; ++i) {
    writer.write(message);
    co_await writer.drain();
    std::string echo = co_await reader.readexactly(kEchoMessage);
  }
  writer.close();
  co_await writer.wait_closed();
}

uvaio::Async<void> uvaio_echo(long n) {
  const long per_connection = std::max<long>(1, n / kEchoConnections);
  uvaio::Server server = co_await uvaio::start_server(uvaio_echo_handler, "127.0.0.1", 0);
  std::vector<uvaio::Task<void>> clients;
  for (int i = 0; i < kEchoConnections; ++i) clients.push_back(uvaio::create_task(uvaio_echo_client(server.port(), per_connection)));
  for (auto& client : clients) co_await client;
  server.close();
  co_await server.wait_closed();
}

double run_uvaio_echo(long n) {
  const long per_connection = std::max<long>(1, n / kEchoConnections);
  return run_uvaio(uvaio_echo(n), per_connection * kEchoConnections);
}

// --- the driver --------------------------------------------------------------------

struct Options {
  double scale = 1.0;
  int rounds = 7;
  bool rounds_given = false;
  bool quick = false;
  std::set<std::string> only;
  std::string side;  // empty: every side
  long ops = 0;      // >0: overrides the workload's size
  bool warmup = true;
  bool asyncio = true;
  std::string asyncio_script = UVAIO_BENCH_ASYNCIO_SCRIPT;
};

struct Row {
  std::string name;
  double uvaio = std::nan("");
  double baseline = std::nan("");
  double asyncio = std::nan("");
  std::string notes;
};

const std::vector<std::string>& all_names() {
  static const std::vector<std::string> names = {
      "roundtrip",           "batch64",           "batch1024",           "fanout",
      "mixed",               "threadpool_roundtrip", "threadpool_batch64", "threadpool_batch1024",
      "threadpool_fanout",   "threadpool_mixed",  "spawn",               "sleep0",
      "timers",              "threadsafe",        "echo"};
  return names;
}

// The workloads that also run in asyncio_bench.py.
const std::set<std::string>& asyncio_names() {
  static const std::set<std::string> names = {"roundtrip", "fanout", "spawn", "sleep0", "timers", "threadsafe"};
  return names;
}

class Suite {
 public:
  explicit Suite(Options options) : o_(std::move(options)), load_at_start_(load_average()) {}

  bool selected(const std::string& name) const { return o_.only.empty() || o_.only.count(name) > 0; }
  bool side_on(const std::string& side) const { return o_.side.empty() || o_.side == side; }
  long size(long full) const {
    if (o_.ops > 0) return o_.ops;
    return std::max<long>(1, std::lround(static_cast<double>(full) * o_.scale));
  }

  // One side of a workload: a name for the progress line and a run at size n
  // returning ns/op.
  struct Side {
    std::string name;
    std::function<double(long)> run;
    std::vector<double> samples;
  };

  // Rounds of every side in turn, the order reversed every other round
  // (ABBA) so that a steady drift in machine load does not favour one side.
  void measure(const std::string& label, std::vector<Side>& sides, long n) {
    if (o_.warmup) {
      for (auto& s : sides) s.run(std::max<long>(1, n / 10));
    }
    for (int r = 0; r < o_.rounds; ++r) {
      std::vector<Side*> order;
      for (auto& s : sides) order.push_back(&s);
      if (r % 2 == 1) std::reverse(order.begin(), order.end());
      std::string line;
      for (Side* s : order) {
        const double ns = s->run(n);
        s->samples.push_back(ns);
        char buf[96];
        std::snprintf(buf, sizeof buf, " %s=%.0f", s->name.c_str(), ns);
        line += buf;
      }
      std::fprintf(stderr, "[%s] round %d/%d n=%ld ns/op:%s\n", label.c_str(), r + 1, o_.rounds, n, line.c_str());
    }
  }

  // roundtrip, batch64, batch1024, mixed: a window of `width` calls in flight;
  // fanout: batches of `width` gathered at once. Raw libuv, the default
  // executor and a 4-worker ThreadPoolExecutor in the same rounds,
  // so both uvaio lines share one baseline.
  void executor_family(const std::string& name, long total, long width, WorkFn fn, bool fanout) {
    const std::string pool_name = "threadpool_" + name;
    const bool want_raw = side_on("raw") && (selected(name) || selected(pool_name));
    const bool want_default = selected(name) && side_on("uvaio");
    bool want_pool = selected(pool_name) && side_on("pool");
    // Nothing to compare (unless --side raw asked for the baseline alone).
    if (!want_default && !want_pool && !(want_raw && o_.side == "raw")) return;
    const bool mixed = fn == &spin_item;
    if (fanout) total = std::max<long>(1, total / width) * width;
    std::vector<Side> sides;
    // Fan-out sizes are whole batches (a warm-up at a tenth of the size too).
    auto batches_of = [width](long n) { return std::max<long>(1, n / width); };
    if (want_raw) {
      sides.push_back({"raw", [=](long n) { return fanout ? raw_fanout(batches_of(n), width) : raw_window(n, width, fn); }, {}});
    }
    if (want_default) {
      sides.push_back({"uvaio", [=](long n) {
                         return fanout ? run_uvaio(uvaio_fanout(batches_of(n), width, nullptr), batches_of(n) * width)
                                       : run_uvaio(uvaio_window(n, width, nullptr, fn), n);
                       }, {}});
    }
    std::unique_ptr<uvaio::ThreadPoolExecutor> pool;
    if (want_pool) {
      pool = std::make_unique<uvaio::ThreadPoolExecutor>(
          uvaio::ThreadPoolExecutor::Options{.max_workers = kPoolWorkers, .name = "bench"});
      uvaio::Executor* ex = pool.get();
      sides.push_back({"pool", [=](long n) {
                         return fanout ? run_uvaio(uvaio_fanout(batches_of(n), width, ex), batches_of(n) * width)
                                       : run_uvaio(uvaio_window(n, width, ex, fn), n);
                       }, {}});
    }
    if (mixed && o_.side.empty()) {
      // The serial reference: the same items one after the other on this
      // thread, on a tenth of the items (its time per item is what counts).
      sides.push_back({"serial", [](long n) {
                         const long items = std::max<long>(1, n / 10);
                         const double ns = timed([&] {
                           for (long i = 0; i < items; ++i) spin_item();
                         });
                         return ns / static_cast<double>(items);
                       }, {}});
    }
    measure(name, sides, total);
    double raw = std::nan("");
    double serial = std::nan("");
    for (auto& s : sides) {
      if (s.name == "raw") raw = median(s.samples);
      if (s.name == "serial") serial = median(s.samples);
    }
    auto efficiency = [&](double parallel_ns, std::size_t workers) {
      return (serial / parallel_ns) / static_cast<double>(std::min(workers, cores()));
    };
    if (o_.side == "raw") rows_.push_back({name, std::nan(""), raw, std::nan(""), ""});
    for (auto& s : sides) {
      if (s.name != "uvaio" && s.name != "pool") continue;
      Row row{s.name == "pool" ? pool_name : name, median(s.samples), raw, std::nan(""), ""};
      if (mixed && !std::isnan(serial)) {
        const std::size_t workers = s.name == "pool" ? kPoolWorkers : libuv_pool_size();
        char buf[160];
        std::snprintf(buf, sizeof buf, "eff_uvaio=%.2f,eff_raw=%.2f,workers=%zu,serial_ns=%.0f",
                      efficiency(row.uvaio, workers), efficiency(raw, libuv_pool_size()), workers, serial);
        row.notes = buf;
      }
      rows_.push_back(row);
    }
  }

  void simple(const std::string& name, long n, std::function<double(long)> raw,
              std::function<double(long)> ours) {
    if (!selected(name)) return;
    std::vector<Side> sides;
    if (side_on("raw")) sides.push_back({"raw", std::move(raw), {}});
    if (side_on("uvaio")) sides.push_back({"uvaio", std::move(ours), {}});
    if (sides.empty()) return;
    measure(name, sides, n);
    Row row{name, std::nan(""), std::nan(""), std::nan(""), ""};
    for (auto& s : sides) (s.name == "raw" ? row.baseline : row.uvaio) = median(s.samples);
    rows_.push_back(row);
  }

  void timers(long n) {
    if (!selected("timers")) return;
    const auto delays = random_delays(n);
    std::vector<double> raw_rss;
    std::vector<double> raw_heap;
    std::vector<double> our_rss;
    std::vector<double> our_heap;
    std::vector<Side> sides;
    if (side_on("raw")) {
      sides.push_back({"raw", [&](long m) {
                         TimerMemory mem;
                         if (m != n) return raw_timers(random_delays(m), mem);
                         const double ns = raw_timers(delays, mem);
                         {
                           raw_rss.push_back(mem.rss_per_op);
                           raw_heap.push_back(mem.heap_per_op);
                         }
                         return ns;
                       }, {}});
    }
    if (side_on("uvaio")) {
      sides.push_back({"uvaio", [&](long m) {
                         TimerMemory mem;
                         if (m != n) return run_uvaio_timers(random_delays(m), mem);
                         const double ns = run_uvaio_timers(delays, mem);
                         {
                           our_rss.push_back(mem.rss_per_op);
                           our_heap.push_back(mem.heap_per_op);
                         }
                         return ns;
                       }, {}});
    }
    if (sides.empty()) return;
    measure("timers", sides, n);
    Row row{"timers", std::nan(""), std::nan(""), std::nan(""), ""};
    for (auto& s : sides) (s.name == "raw" ? row.baseline : row.uvaio) = median(s.samples);
    const double frame = sleeper_frame_bytes();
    const double task = task_state_bytes();
    char buf[320];
    std::snprintf(buf, sizeof buf,
                  "rss_B=%.0f,frame_B=%.0f,rss_beyond_frame_B=%.0f,heap_beyond_frame_B=%.0f,task_state_B=%.0f,"
                  "raw_rss_B=%.0f,raw_heap_B=%.0f",
                  median(our_rss), frame, median(our_rss) - frame, median(our_heap) - frame, task, median(raw_rss),
                  median(raw_heap));
    row.notes = buf;
    rows_.push_back(row);
  }

  void run_all() {
    if (selected("mixed") || selected("threadpool_mixed")) calibrate_spin(10000.0);
    executor_family("roundtrip", size(100000), 1, noop, false);
    executor_family("batch64", size(1000000), 64, noop, false);
    executor_family("batch1024", size(1000000), 1024, noop, false);
    executor_family("fanout", size(200000), 10000, noop, true);
    executor_family("mixed", size(200000), 64, spin_item, false);
    simple("spawn", size(1000000), raw_spawn, [](long n) { return run_uvaio(uvaio_spawn(n), n); });
    simple("sleep0", size(1000000), raw_sleep0, [](long n) { return run_uvaio(uvaio_sleep0(n), n); });
    timers(size(1000000));
    simple("threadsafe", size(1000000), raw_threadsafe, [](long n) { return run_uvaio(uvaio_threadsafe(n), n); });
    simple("echo", size(100000), raw_echo, run_uvaio_echo);
    if (!rows_.empty() && rows_.back().name == "echo") {
      Row& row = rows_.back();
      char buf[96];
      std::snprintf(buf, sizeof buf, "uvaio_rt_per_s=%.0f,raw_rt_per_s=%.0f,connections=%d", 1e9 / row.uvaio,
                    1e9 / row.baseline, kEchoConnections);
      row.notes = buf;
    }
    if (o_.asyncio && o_.side.empty()) run_asyncio();
  }

  // asyncio_bench.py in a python3 subprocess, after the C++ workloads so that
  // it does not run alongside them.
  void run_asyncio() {
    std::string names;
    for (const auto& r : rows_) {
      if (asyncio_names().count(r.name) > 0) names += (names.empty() ? "" : ",") + r.name;
    }
    if (names.empty()) return;
    const char* env_python = std::getenv("UVAIO_BENCH_PYTHON");
    const std::string python = env_python != nullptr && *env_python != '\0' ? env_python : "python3";
    if (access(o_.asyncio_script.c_str(), R_OK) != 0) {
      notes_.push_back("asyncio column skipped: " + o_.asyncio_script + " not found");
      return;
    }
    char scale[32];
    std::snprintf(scale, sizeof scale, "%g", o_.scale);
    const std::string rounds = std::to_string(std::min(o_.rounds, 3));
    std::vector<std::string> args = {python, o_.asyncio_script, "--scale", scale, "--rounds", rounds, "--only", names};
    std::fprintf(stderr, "[asyncio] %s %s --scale %s --rounds %s --only %s\n", python.c_str(),
                 o_.asyncio_script.c_str(), scale, rounds.c_str(), names.c_str());
    std::string out;
    const int status = run_capture(args, out);
    if (status == 127) {
      notes_.push_back("asyncio column skipped: " + python + " not found");
      return;
    }
    if (status != 0) {
      notes_.push_back("asyncio column skipped: " + python + " exited with status " + std::to_string(status));
      return;
    }
    std::istringstream lines(out);
    std::string line;
    std::map<std::string, double> found;
    while (std::getline(lines, line)) {
      std::istringstream fields(line);
      std::string name;
      std::string value;
      std::string ops;
      if (!(fields >> name >> value >> ops) || name == "name" || name[0] == '#') continue;
      char* end = nullptr;
      const double v = std::strtod(value.c_str(), &end);
      if (end != value.c_str()) found[name] = v;
      if (end != value.c_str()) asyncio_ops_[name] = ops;
    }
    for (auto& r : rows_) {
      auto it = found.find(r.name);
      if (it != found.end()) r.asyncio = it->second;
    }
    asyncio_python_ = python;
  }

  static int run_capture(const std::vector<std::string>& args, std::string& out) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    std::fflush(nullptr);
    const pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execvp(argv[0], argv.data());
      _exit(127);
    }
    close(fds[1]);
    char buf[4096];
    ssize_t got = 0;
    while ((got = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(got));
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  void print() const {
    auto num = [](double v, const char* fmt) {
      if (std::isnan(v)) return std::string("-");
      char buf[64];
      std::snprintf(buf, sizeof buf, fmt, v);
      return std::string(buf);
    };
    std::printf("%-22s %16s %19s %8s %18s %18s %s\n", "name", "uvaio_ns_per_op", "baseline_ns_per_op", "ratio",
                "asyncio_ns_per_op", "uvaio_per_asyncio", "notes");
    for (const auto& r : rows_) {
      std::printf("%-22s %16s %19s %8s %18s %18s %s\n", r.name.c_str(), num(r.uvaio, "%.1f").c_str(),
                  num(r.baseline, "%.1f").c_str(), num(r.uvaio / r.baseline, "%.3f").c_str(),
                  num(r.asyncio, "%.1f").c_str(), num(r.uvaio / r.asyncio, "%.4f").c_str(),
                  r.notes.empty() ? "-" : r.notes.c_str());
    }
    std::printf("# ratio = uvaio / baseline: medians of %d rounds in this process, sides alternating (ABBA); < 1: uvaio faster\n",
                o_.rounds);
    std::printf("# baselines: roundtrip/batch*/mixed = uv_queue_work window refilled from after_work; fanout = "
                "10,000 uv_queue_work per batch, the last completion starts the next\n");
    std::printf("#   threadpool_* = uvaio on ThreadPoolExecutor(max_workers=%zu) against the same raw libuv "
                "baseline (libuv pool: %zu threads)\n",
                kPoolWorkers, libuv_pool_size());
    std::printf("#   spawn = callback chain: malloc'ed job run from a uv_idle-driven ready queue, its "
                "continuation queued for the next iteration (2 iterations/op)\n");
    std::printf("#   sleep0 = uv_idle callback, one per loop iteration; timers = malloc'ed uv_timer_t per "
                "sleep, closed and freed when fired\n");
    std::printf("#   threadsafe = mutex-protected FIFO of malloc'ed messages + uv_async_send per call\n");
    std::printf("# timers: ns/op = process CPU time per sleep (wall time is bounded by the 1 s sleeps); rss_B = RSS "
                "per pending sleep at the peak; frame_B = the sleeping coroutine's frame (malloc'ed bytes);\n"
                "#   rss_beyond_frame_B = rss_B - frame_B (the task state, task_state_B, plus the timer-heap slot); "
                "raw_* = the same for a malloc'ed uv_timer_t\n");
    if (g_spin_iters > 0) std::printf("# mixed: eff = (serial ns per item / parallel ns per item) / min(workers, %zu cores); item = "
                "%llu LCG steps (~10 us); the serial reference runs a tenth of the items\n",
                cores(), static_cast<unsigned long long>(g_spin_iters));
    if (!asyncio_python_.empty()) {
      std::string sizes;
      for (const auto& [name, ops] : asyncio_ops_) sizes += " " + name + "=" + ops;
      std::printf("# asyncio: %s %s (ops per round:%s); uvaio_per_asyncio < 1: uvaio faster\n",
                  asyncio_python_.c_str(), o_.asyncio_script.c_str(), sizes.c_str());
    }
    for (const auto& s : skipped_) std::printf("# skipped: %s\n", s.c_str());
    for (const auto& n : notes_) std::printf("# %s\n", n.c_str());
    std::printf("# machine: %zu cores, load average %s at the start, %s at the end; libuv %s; scale %g\n", cores(),
                load_at_start_.c_str(), load_average().c_str(), uv_version_string(), o_.scale);
  }

 private:
  Options o_;
  std::vector<Row> rows_;
  std::vector<std::string> skipped_;
  std::vector<std::string> notes_;
  std::map<std::string, std::string> asyncio_ops_;
  std::string asyncio_python_;
  std::string load_at_start_;
};

[[noreturn]] void usage(int status) {
  std::fprintf(status == 0 ? stdout : stderr,
               "usage: uvaio_bench [--only a,b,...] [--scale S | --quick] [--rounds N] [--side raw|uvaio|pool]\n"
               "                   [--ops N] [--no-warmup] [--no-asyncio] [--asyncio-script PATH] [--list]\n"
               "  --only      workloads to run (--list shows them); default: all\n"
               "  --scale S   multiply every size by S; --quick: --scale 0.1 and 3 rounds\n"
               "  --rounds N  alternating rounds per workload (default 7); the table gives medians\n"
               "  --side X    run only raw libuv, uvaio (default executor) or pool (ThreadPoolExecutor)\n"
               "  --ops N     exact size of every selected workload (with --side: for callgrind)\n"
               "  --no-asyncio  skip the asyncio column (python3 asyncio_bench.py; UVAIO_BENCH_PYTHON)\n");
  std::exit(status);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(2);
      return argv[++i];
    };
    if (a == "--only") {
      std::string list = value();
      std::stringstream ss(list);
      std::string name;
      while (std::getline(ss, name, ',')) {
        if (std::find(all_names().begin(), all_names().end(), name) == all_names().end()) {
          std::fprintf(stderr, "uvaio_bench: unknown workload '%s' (--list)\n", name.c_str());
          return 2;
        }
        o.only.insert(name);
      }
    } else if (a == "--scale") {
      o.scale = std::atof(value().c_str());
      if (!(o.scale > 0)) usage(2);
    } else if (a == "--quick") {
      o.scale = 0.1;
      o.quick = true;
    } else if (a == "--rounds") {
      o.rounds = std::max(1, std::atoi(value().c_str()));
      o.rounds_given = true;
    } else if (a == "--side") {
      o.side = value();
      if (o.side != "raw" && o.side != "uvaio" && o.side != "pool") usage(2);
    } else if (a == "--ops") {
      o.ops = std::atol(value().c_str());
    } else if (a == "--no-warmup") {
      o.warmup = false;
    } else if (a == "--no-asyncio") {
      o.asyncio = false;
    } else if (a == "--asyncio-script") {
      o.asyncio_script = value();
    } else if (a == "--list") {
      for (const auto& n : all_names()) std::printf("%s\n", n.c_str());
      return 0;
    } else if (a == "--help" || a == "-h") {
      usage(0);
    } else {
      usage(2);
    }
  }
  if (o.quick && !o.rounds_given) o.rounds = 3;
  Suite suite(o);
  suite.run_all();
  suite.print();
  return 0;
}
