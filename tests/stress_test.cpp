// Stress tests: many operations, random cancellations and failures, several
// threads. Each TEST_CASE is registered in meson as its own test in suite
// 'stress' (not 'unit'), so that `meson test --no-suite stress` leaves them out.
//
// Bounded in count and time: the counts below are the full ones (each case
// well under 30 s on 2 cores in a normal build); under AddressSanitizer and
// ThreadSanitizer they are scaled down. UVAIO_STRESS_SCALE (a float) replaces
// that scale; UVAIO_STRESS_SEED (an integer) replaces the fixed random seed.
// Both, and the counts used, are printed.
//
// Hot loops never call doctest's CHECK (millions of assertions would dominate
// the run, and doctest's assertions are not thread-safe): they record what went
// wrong in a Failures object, and the test CHECKs that it stayed empty, with
// the first few failures as the message.

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support.hpp"

using namespace std::chrono_literals;
using test_support::cancelled_message;
using test_support::Counted;
using test_support::what_of;
using test_support::yield_times;

TEST_SUITE_BEGIN("stress");

namespace {

// --- scale, seed, failures ----------------------------------------------------------------

// Sanitizers slow these tests down 5-10 times (ASan) and 15-30 times (TSan);
// the scales keep the whole suite near 20 s under either, measured on 2 busy
// cores, well inside the 60 s (ASan) and 90 s (TSan) the CI allows.
double sanitizer_scale() {
#if defined(__SANITIZE_THREAD__)
  return 1.0 / 20;
#elif defined(__SANITIZE_ADDRESS__)
  return 1.0 / 5;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
  return 1.0 / 20;
#elif __has_feature(address_sanitizer)
  return 1.0 / 5;
#else
  return 1.0;
#endif
#else
  return 1.0;
#endif
}

double stress_scale() {
  if (const char* text = std::getenv("UVAIO_STRESS_SCALE"); text != nullptr && *text != '\0') {
    const double value = std::strtod(text, nullptr);
    if (value > 0) return value;
  }
  return sanitizer_scale();
}

// `full` scaled, never below `minimum`.
std::size_t scaled(std::size_t full, std::size_t minimum) {
  const auto value = static_cast<std::size_t>(static_cast<double>(full) * stress_scale() + 0.5);
  return std::max(value, minimum);
}

std::uint64_t stress_seed() {
  if (const char* text = std::getenv("UVAIO_STRESS_SEED"); text != nullptr && *text != '\0') {
    return std::strtoull(text, nullptr, 0);
  }
  return 20240611;
}

// A seed per test case, so that the cases do not share one random sequence.
std::uint64_t case_seed(std::uint64_t salt) {
  const std::uint64_t seed = stress_seed();
  std::seed_seq sequence{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32),
                         static_cast<std::uint32_t>(salt)};
  std::uint32_t words[2];
  sequence.generate(words, words + 2);
  return (std::uint64_t{words[0]} << 32) | words[1];
}

std::string scale_line() {
  return "seed " + std::to_string(stress_seed()) + " (UVAIO_STRESS_SEED), scale " +
         std::to_string(stress_scale()) + " (UVAIO_STRESS_SCALE)";
}

// What went wrong, from any thread: the count and the first few descriptions.
class Failures {
 public:
  void add(const std::string& what) {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (++count_ <= 8) first_ += "\n  " + what;
  }
  std::size_t count() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return count_;
  }
  std::string summary() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return std::to_string(count_) + " failure(s):" + first_;
  }

 private:
  mutable std::mutex mutex_;
  std::size_t count_ = 0;
  std::string first_;
};

bool chance(std::mt19937_64& rng, double probability) {
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng) < probability;
}

std::size_t below(std::mt19937_64& rng, std::size_t bound) {
  return std::uniform_int_distribution<std::size_t>(0, bound - 1)(rng);
}

// --- instrumented callable and result --------------------------------------------------------

std::uint64_t expected_value(std::uint64_t index) {
  return index * 2654435761u + 17;
}

// The result of a Job: counts every instance (constructed by any constructor,
// destroyed), so that a result dropped or leaked on some path shows.
struct Payload {
  static inline std::atomic<long> constructed{0};
  static inline std::atomic<long> destroyed{0};
  static void reset() {
    constructed = 0;
    destroyed = 0;
  }

  std::uint64_t value = 0;
  std::thread::id worker;

  Payload(std::uint64_t v, std::thread::id w) : value(v), worker(w) { ++constructed; }
  Payload(const Payload& other) : value(other.value), worker(other.worker) { ++constructed; }
  Payload(Payload&& other) noexcept : value(other.value), worker(other.worker) { ++constructed; }
  Payload& operator=(const Payload&) = default;
  Payload& operator=(Payload&&) noexcept = default;
  ~Payload() { ++destroyed; }

  bool operator==(std::uint64_t expected) const { return value == expected; }
};

// Where the jobs of a run report that they started, finished, or saw a stop
// request; owned by the test, outliving every job.
struct JobBoard {
  explicit JobBoard(std::size_t count) : runs(new std::atomic<std::uint8_t>[count]), size(count) {
    for (std::size_t i = 0; i < count; ++i) runs[i].store(0, std::memory_order_relaxed);
  }
  std::unique_ptr<std::atomic<std::uint8_t>[]> runs;  // per index: how many times the job ran
  std::size_t size;
  std::atomic<std::uint64_t> last_started{0};   // index + 1 of the job that started last
  std::atomic<std::uint64_t> last_finished{0};  // index + 1 of the job that finished last
  std::atomic<std::uint64_t> stopped_early{
      0};  // jobs whose stop token was signalled while they spun
};

// The callable handed to to_thread / run_in_executor: counts its instances,
// records that it ran (once per index), optionally busy-waits a little (ended
// early by the stop token that cancelling the future signals), and returns
// expected_value(index) with the thread it ran on.
struct Job {
  static inline std::atomic<long> constructed{0};
  static inline std::atomic<long> destroyed{0};
  static void reset() {
    constructed = 0;
    destroyed = 0;
  }

  std::uint64_t index = 0;
  std::uint32_t spin_ns = 0;
  JobBoard* board = nullptr;

  Job(std::uint64_t i, std::uint32_t spin, JobBoard* b) : index(i), spin_ns(spin), board(b) {
    ++constructed;
  }
  Job(const Job& other) : index(other.index), spin_ns(other.spin_ns), board(other.board) {
    ++constructed;
  }
  Job(Job&& other) noexcept : index(other.index), spin_ns(other.spin_ns), board(other.board) {
    ++constructed;
  }
  Job& operator=(const Job&) = default;
  Job& operator=(Job&&) noexcept = default;
  ~Job() { ++destroyed; }

  Payload operator()(std::stop_token stop) {
    if (board != nullptr) {
      board->runs[index].fetch_add(1, std::memory_order_relaxed);
      board->last_started.store(index + 1, std::memory_order_relaxed);
    }
    if (spin_ns != 0) {
      const auto until = std::chrono::steady_clock::now() + std::chrono::nanoseconds(spin_ns);
      while (std::chrono::steady_clock::now() < until) {
        if (stop.stop_requested()) {
          if (board != nullptr) board->stopped_early.fetch_add(1, std::memory_order_relaxed);
          break;
        }
      }
    }
    if (board != nullptr) board->last_finished.store(index + 1, std::memory_order_relaxed);
    return Payload(expected_value(index), std::this_thread::get_id());
  }
};

void reset_instance_counters() {
  Job::reset();
  Payload::reset();
  Counted::reset();
}

// --- windowed run_in_executor / to_thread calls with random cancellation --------------------

// How a call is meant to end, decided up front from the seed.
enum class CallKind : std::uint8_t {
  plain,            // may be cancelled at random by the driver, else gives its value
  cancel_at_start,  // its task is cancelled right after create_task: its body never runs
  cancel_on_done,   // a done callback on the to_thread future, added before the task awaits it,
                    // cancels the task: the work completed, the task has not resumed yet
};

struct CallsConfig {
  std::size_t count = 0;
  std::size_t window = 0;               // tasks in flight at most
  uvaio::Executor* executor = nullptr;  // null: uvaio::to_thread (the default executor)
  double p_cancel_at_start = 0;
  double p_cancel_on_done = 0;
  double p_random_cancel =
      0;  // after each launch: cancel one task in flight, chosen one of three ways
  double p_spin = 0;
  std::uint32_t max_spin_ns = 0;
};

// One loop's run of `count` calls. Touched only on that loop's thread, except
// `board` (workers) and `failures` (thread-safe).
struct CallsRun {
  CallsRun(const CallsConfig& c, std::uint64_t seed)
      : config(c),
        rng(seed),
        kinds(c.count),
        finished(c.count, 0),
        board(c.count),
        slots(c.window),
        slot_index(c.window, 0) {
    for (auto& kind : kinds) {
      if (chance(rng, config.p_cancel_at_start)) {
        kind = CallKind::cancel_at_start;
      } else if (chance(rng, config.p_cancel_on_done)) {
        kind = CallKind::cancel_on_done;
      } else {
        kind = CallKind::plain;
      }
    }
    for (std::size_t s = c.window; s > 0; --s) free_slots.push_back(s - 1);
  }

  CallsConfig config;
  std::mt19937_64 rng;
  std::vector<CallKind> kinds;
  std::vector<std::uint8_t> finished;  // per index: how many times its outcome was recorded
  JobBoard board;
  std::vector<uvaio::Task<std::uint64_t>> slots;  // the tasks in flight
  std::vector<std::uint64_t> slot_index;          // which call each slot holds
  std::vector<std::size_t> free_slots;
  std::vector<std::size_t> slot_of;  // per index: its slot while in flight (sized lazily)
  std::thread::id loop_thread;
  std::size_t values = 0;
  std::size_t cancelled = 0;
  std::size_t cancelled_after_running = 0;  // counted at the end: cancelled, and the job ran
  std::size_t random_cancels = 0;
  Failures failures;

  void record(std::uint64_t index, const uvaio::Task<std::uint64_t>& task) {
    if (std::this_thread::get_id() != loop_thread)
      failures.add("done callback of call " + std::to_string(index) + " not on its loop thread");
    if (finished[index]++ != 0) {
      failures.add("call " + std::to_string(index) + " finished more than once");
      return;
    }
    const CallKind kind = kinds[index];
    if (!task.done()) {
      failures.add("done callback of call " + std::to_string(index) +
                   " ran while its task is pending");
      return;
    }
    if (task.cancelled()) {
      ++cancelled;
      const std::string message = cancelled_message([&] { (void)task.result(); });
      // A task cancelled twice before it resumes gets the last message, as in asyncio.
      const bool expected =
          kind == CallKind::cancel_at_start  ? message == "before start" || message == "random"
          : kind == CallKind::cancel_on_done ? message == "after completion" || message == "random"
                                             : message == "random";
      if (!expected)
        failures.add("call " + std::to_string(index) + " cancelled with message '" + message + "'");
      return;
    }
    if (const std::exception_ptr error = task.exception()) {
      failures.add("call " + std::to_string(index) + " failed: " + what_of(error));
      return;
    }
    if (kind != CallKind::plain) {
      failures.add("call " + std::to_string(index) + " meant to be cancelled gave a value");
      return;
    }
    if (task.result() != expected_value(index)) {
      failures.add("call " + std::to_string(index) + " gave " + std::to_string(task.result()));
      return;
    }
    ++values;
  }

  // Cancels one task in flight: the one in a random slot (mostly work still
  // queued), the one whose job started last (probably running), or the one
  // whose job finished last (probably done on the worker, not yet resumed).
  void random_cancel() {
    std::uint64_t index = 0;
    std::size_t slot = 0;
    switch (below(rng, 3)) {
      case 0:
        slot = below(rng, slots.size());
        if (!slots[slot]) return;
        break;
      case 1:
        index = board.last_started.load(std::memory_order_relaxed);
        if (index == 0 || !in_flight(index - 1, &slot)) return;
        break;
      default:
        index = board.last_finished.load(std::memory_order_relaxed);
        if (index == 0 || !in_flight(index - 1, &slot)) return;
        break;
    }
    if (slots[slot].cancel("random")) ++random_cancels;
  }

  bool in_flight(std::uint64_t index, std::size_t* slot) const {
    const std::size_t s = slot_of[index];
    if (!slots[s] || slot_index[s] != index) return false;
    *slot = s;
    return true;
  }

  // After the loop closed and every job is done.
  void check_end() {
    for (std::size_t i = 0; i < config.count; ++i) {
      const unsigned runs = board.runs[i].load(std::memory_order_relaxed);
      if (finished[i] != 1)
        failures.add("call " + std::to_string(i) + " finished " + std::to_string(finished[i]) +
                     " times");
      if (runs > 1)
        failures.add("the job of call " + std::to_string(i) + " ran " + std::to_string(runs) +
                     " times");
      if (kinds[i] == CallKind::cancel_at_start && runs != 0) {
        failures.add("the job of call " + std::to_string(i) +
                     ", cancelled before its task started, ran");
      }
    }
  }
};

uvaio::Async<std::uint64_t> await_call(CallsRun* run, Job job, bool cancel_on_done) {
  uvaio::Future<Payload> future;
  if (run->config.executor == nullptr) {
    future = uvaio::to_thread(std::move(job));
  } else {
    future = uvaio::get_running_loop().run_in_executor(run->config.executor, std::move(job));
  }
  if (cancel_on_done) {
    // Registered before the task awaits the future, so it runs first when the
    // future completes (done callbacks and waiters resume in registration order).
    const uvaio::TaskRef self = uvaio::current_task();
    auto cancel_self = [self](const uvaio::Future<Payload>&) { self.cancel("after completion"); };
    future.add_done_callback(cancel_self);
  }
  Payload payload = co_await std::move(future);
  if (std::this_thread::get_id() != run->loop_thread)
    run->failures.add("a task resumed off its loop thread");
  if (payload.worker == run->loop_thread) run->failures.add("a job ran on the loop thread");
  co_return payload.value;
}

uvaio::Async<void> drive_calls(CallsRun* run) {
  run->loop_thread = std::this_thread::get_id();
  run->slot_of.assign(run->config.count, 0);
  uvaio::Loop& loop = uvaio::get_running_loop();
  uvaio::Semaphore room(static_cast<int>(run->config.window));
  for (std::uint64_t i = 0; i < run->config.count; ++i) {
    co_await room.acquire();
    const CallKind kind = run->kinds[i];
    std::uint32_t spin = 0;
    if (chance(run->rng, run->config.p_spin)) {
      spin = static_cast<std::uint32_t>(below(run->rng, run->config.max_spin_ns) + 1);
    }
    uvaio::Task<std::uint64_t> task = loop.create_task(
        await_call(run, Job(i, spin, &run->board), kind == CallKind::cancel_on_done));
    const std::size_t slot = run->free_slots.back();
    run->free_slots.pop_back();
    run->slots[slot] = task;
    run->slot_index[slot] = i;
    run->slot_of[i] = slot;
    auto on_done = [run, i, slot, &room](const uvaio::Task<std::uint64_t>& done) {
      run->record(i, done);
      run->slots[slot] = {};
      run->free_slots.push_back(slot);
      room.release();
    };
    task.add_done_callback(on_done);
    if (kind == CallKind::cancel_at_start) task.cancel("before start");
    if (chance(run->rng, run->config.p_random_cancel)) run->random_cancel();
  }
  for (std::size_t w = 0; w < run->config.window; ++w) co_await room.acquire();
}

std::string describe(const CallsRun& run) {
  std::size_t at_start = 0;
  std::size_t on_done = 0;
  for (const CallKind kind : run.kinds) {
    if (kind == CallKind::cancel_at_start) ++at_start;
    if (kind == CallKind::cancel_on_done) ++on_done;
  }
  return std::to_string(run.config.count) + " calls, window " + std::to_string(run.config.window) +
         ": " + std::to_string(run.values) + " values, " + std::to_string(run.cancelled) +
         " cancelled (requests: " + std::to_string(at_start) + " before the task started, " +
         std::to_string(on_done) + " once the work completed, " +
         std::to_string(run.random_cancels) +
         " at random; outcomes: " + std::to_string(run.cancelled_after_running) +
         " cancelled after their job ran, " + std::to_string(run.board.stopped_early.load()) +
         " jobs stopped by their token while running)";
}

void count_cancelled_after_running(CallsRun& run) {
  // Both ran and cancelled: the task's outcome was recorded as cancelled but
  // the job ran. finished[] says each was recorded once; values did run.
  std::size_t ran = 0;
  for (std::size_t i = 0; i < run.config.count; ++i)
    ran += run.board.runs[i].load(std::memory_order_relaxed);
  run.cancelled_after_running = ran >= run.values ? ran - run.values : 0;
}

}  // namespace

// --- 1. to_thread with random cancellation ------------------------------------------------------

TEST_CASE(
    "to_thread calls cancelled at random moments each finish once with their value or "
    "CancelledError") {
  reset_instance_counters();
  CallsConfig config;
  config.count = scaled(1'000'000, 2'000);
  config.window = 2'000;
  config.p_cancel_at_start = 0.03;
  config.p_cancel_on_done = 0.03;
  config.p_random_cancel = 0.05;
  config.p_spin = 0.05;
  config.max_spin_ns = 20'000;
  MESSAGE(scale_line());
  CallsRun run(config, case_seed(1));
  uvaio::run(drive_calls(&run));  // closes the loop, waiting for the jobs still running
  run.check_end();
  count_cancelled_after_running(run);
  MESSAGE(describe(run));

  CHECK_MESSAGE(run.failures.count() == 0, run.failures.summary());
  CHECK(run.values + run.cancelled == config.count);
  CHECK(run.cancelled > 0);
  CHECK(run.values > 0);
  CHECK(run.cancelled_after_running > 0);
  CHECK(Job::constructed.load() > 0);
  CHECK(Job::constructed.load() == Job::destroyed.load());
  CHECK(Payload::constructed.load() > 0);
  CHECK(Payload::constructed.load() == Payload::destroyed.load());
}

// --- 2. call_soon_threadsafe from 8 producers ----------------------------------------------------

namespace {

struct PostRun {
  PostRun(std::size_t producer_count, std::size_t per)
      : producers(producer_count), per_producer(per) {
    for (std::size_t p = 0; p < producers; ++p) {
      ran.emplace_back(per, 0);
      cancel_tried.emplace_back(per, 0);
      cancel_took.emplace_back(per, 0);
    }
    next.assign(producers, 0);
  }
  std::size_t producers;
  std::size_t per_producer;
  // Loop thread only.
  std::vector<std::vector<std::uint8_t>> ran;  // [producer][seq]: times the callback ran
  std::vector<std::uint64_t> next;             // per producer: the lowest seq that may still run
  std::size_t ended = 0;                       // producers whose end marker arrived
  std::size_t received = 0;
  uvaio::Future<void> all_ended;
  std::thread::id loop_thread;
  // Producer p only, read after it was joined.
  std::vector<std::vector<std::uint8_t>> cancel_tried;  // the producer cancelled this post's handle
  std::vector<std::vector<std::uint8_t>> cancel_took;  // ... and cancelled() said it will never run
  Failures failures;
};

// Posted by the producers; counts its instances.
struct Post {
  static inline std::atomic<long> constructed{0};
  static inline std::atomic<long> destroyed{0};

  PostRun* run;
  std::uint32_t producer;
  std::uint64_t seq;  // run->per_producer: the producer's end marker

  Post(PostRun* r, std::uint32_t p, std::uint64_t s) : run(r), producer(p), seq(s) {
    ++constructed;
  }
  Post(const Post& other) : run(other.run), producer(other.producer), seq(other.seq) {
    ++constructed;
  }
  Post(Post&& other) noexcept : run(other.run), producer(other.producer), seq(other.seq) {
    ++constructed;
  }
  Post& operator=(const Post&) = delete;
  Post& operator=(Post&&) = delete;
  ~Post() { ++destroyed; }

  void operator()() {
    PostRun& r = *run;
    if (std::this_thread::get_id() != r.loop_thread)
      r.failures.add("a callback ran off the loop thread");
    if (seq < r.next[producer]) {
      r.failures.add("producer " + std::to_string(producer) + ": post " + std::to_string(seq) +
                     " ran after post " + std::to_string(r.next[producer] - 1));
    }
    r.next[producer] = seq + 1;
    if (seq == r.per_producer) {
      if (++r.ended == r.producers) r.all_ended.set_result();
      return;
    }
    ++r.ran[producer][seq];
    ++r.received;
  }
};

// Posts per_producer callbacks, cancelling about 1 in 50 of them (a random one
// among the last 16 posted, from this thread, while the loop may be running
// it), then an end marker that is never cancelled: it arrives after every
// earlier post of this producer if their order holds.
void produce(uvaio::Loop* loop, PostRun* run, std::uint32_t producer, std::uint64_t seed,
             std::latch* start) {
  std::mt19937_64 rng(seed);
  std::vector<std::pair<std::uint64_t, uvaio::Handle>> recent;
  start->wait();
  try {
    for (std::uint64_t seq = 0; seq < run->per_producer; ++seq) {
      uvaio::Handle handle = loop->call_soon_threadsafe(Post(run, producer, seq));
      if (recent.size() < 16) {
        recent.emplace_back(seq, std::move(handle));
      } else {
        recent[below(rng, 16)] = {seq, std::move(handle)};
      }
      if (below(rng, 50) == 0) {
        auto& [victim, victim_handle] = recent[below(rng, recent.size())];
        if (victim_handle && run->cancel_tried[producer][victim] == 0) {
          victim_handle.cancel();
          run->cancel_tried[producer][victim] = 1;
          run->cancel_took[producer][victim] = victim_handle.cancelled() ? 1 : 0;
        }
      }
      if (below(rng, 4096) == 0) std::this_thread::yield();
    }
    recent.clear();
    (void)loop->call_soon_threadsafe(Post(run, producer, run->per_producer));
  } catch (...) {
    run->failures.add("producer " + std::to_string(producer) + ": " +
                      what_of(std::current_exception()));
  }
}

uvaio::Async<void> receive_posts(PostRun* run, std::latch* start) {
  run->loop_thread = std::this_thread::get_id();
  run->all_ended = uvaio::get_running_loop().create_future<void>();
  start->count_down();
  co_await run->all_ended;
}

}  // namespace

TEST_CASE(
    "call_soon_threadsafe from 8 producer threads keeps each producer's order and loses nothing") {
  Post::constructed = 0;
  Post::destroyed = 0;
  const std::size_t producers = 8;
  const std::size_t per_producer = scaled(100'000, 1'000);
  MESSAGE(scale_line());
  const std::uint64_t seed = case_seed(2);
  PostRun run(producers, per_producer);
  {
    uvaio::Loop loop;
    std::latch start(1);
    std::vector<std::thread> threads;
    for (std::uint32_t p = 0; p < producers; ++p)
      threads.emplace_back(produce, &loop, &run, p, seed + p, &start);
    struct Join {
      std::vector<std::thread>& threads;
      std::latch& start;
      ~Join() {
        // Let the producers go even if the loop never started, then end them.
        if (start.try_wait() == false) start.count_down();
        for (auto& t : threads) t.join();
      }
    } join{threads, start};
    loop.run_until_complete(receive_posts(&run, &start));
  }
  std::size_t cancelled = 0;
  std::size_t cancel_too_late = 0;
  for (std::size_t p = 0; p < producers; ++p) {
    if (run.next[p] != per_producer + 1)
      run.failures.add("producer " + std::to_string(p) + "'s end marker missing");
    for (std::size_t seq = 0; seq < per_producer; ++seq) {
      const unsigned ran = run.ran[p][seq];
      const bool took = run.cancel_took[p][seq] != 0;
      if (took) ++cancelled;
      if (run.cancel_tried[p][seq] != 0 && !took) ++cancel_too_late;
      // Cancelled (and cancelled() said so): never runs. Otherwise: runs once.
      if (ran != (took ? 0u : 1u)) {
        run.failures.add("producer " + std::to_string(p) + ": post " + std::to_string(seq) +
                         " ran " + std::to_string(ran) + " times" +
                         (took ? " though cancelled" : ""));
      }
    }
  }
  MESSAGE(producers << " producers x " << per_producer << " posts: " << run.received << " ran, "
                    << cancelled << " cancelled in time, " << cancel_too_late
                    << " cancelled too late (they ran)");
  CHECK_MESSAGE(run.failures.count() == 0, run.failures.summary());
  CHECK(run.ended == producers);
  CHECK(run.received + cancelled == producers * per_producer);
  CHECK(cancelled > 0);
  CHECK(Post::constructed.load() > 0);
  CHECK(Post::constructed.load() == Post::destroyed.load());
}

// --- 3. nested TaskGroups with random failures ---------------------------------------------------

namespace {

struct LeafFailure : std::runtime_error {
  explicit LeafFailure(std::size_t leaf_id)
      : std::runtime_error("leaf " + std::to_string(leaf_id) + " failed"), id(leaf_id) {}
  std::size_t id;
};

enum class LeafKind : std::uint8_t { quick, failing, forever };

struct TreeRun {
  explicit TreeRun(std::uint64_t seed) : rng(seed) {}
  std::mt19937_64 rng;
  std::size_t mids = 0;
  std::size_t inners_per_mid = 0;
  std::size_t leaves_per_inner = 0;
  double p_failing_group = 0;
  double p_contain = 0;

  std::vector<std::size_t> raised;  // leaf ids, in the order they threw
  std::vector<std::exception_ptr>
      surfaced;  // groups caught by a level that contains them, and the root's
  std::size_t leaves_created = 0;
  std::size_t leaves_ok = 0;
  std::size_t leaves_failed = 0;
  std::size_t leaves_cancelled = 0;
  std::size_t forever_leaves = 0;
  std::size_t failing_groups = 0;
  std::size_t inner_groups_failed = 0;
  std::size_t mid_groups_failed = 0;
  bool root_failed = false;
  Failures failures;
};

uvaio::Async<int> leaf(TreeRun* run, std::vector<std::size_t>* group_raised, std::size_t id,
                       LeafKind kind, int yields) {
  const Counted local(static_cast<int>(id));
  co_await yield_times(yields);
  if (kind == LeafKind::failing) {
    run->raised.push_back(id);
    group_raised->push_back(id);
    throw LeafFailure(id);
  }
  if (kind == LeafKind::forever) co_await uvaio::sleep(1h);
  co_return local.value % 1000;  // leaf_value(id), read from the frame
}

int leaf_value(std::size_t id) {
  return static_cast<int>(id % 1000);
}

// The ids of the LeafFailures in a (nested) ExceptionGroup; anything else is a failure.
void collect_leaf_ids(TreeRun* run, const std::exception_ptr& error,
                      std::vector<std::size_t>* ids) {
  try {
    std::rethrow_exception(error);
  } catch (const uvaio::ExceptionGroup& group) {
    if (group.exceptions().empty()) run->failures.add("an empty ExceptionGroup");
    for (const auto& member : group.exceptions()) collect_leaf_ids(run, member, ids);
  } catch (const LeafFailure& failure) {
    ids->push_back(failure.id);
  } catch (...) {
    run->failures.add("an ExceptionGroup holds " + what_of(std::current_exception()));
  }
}

// What join() threw: nothing, an ExceptionGroup, or CancelledError.
struct Joined {
  std::exception_ptr error;
  bool group = false;
  bool cancelled = false;
};

// Checks that the members of a group thrown by join() are exactly `expected`
// (the failed children's exceptions), in the order they failed.
void check_members(TreeRun* run, const char* level, const Joined& joined,
                   const std::vector<std::exception_ptr>& expected) {
  if (!joined.group) {
    if (!expected.empty())
      run->failures.add(std::string(level) + ": children failed but join threw no ExceptionGroup");
    return;
  }
  try {
    std::rethrow_exception(joined.error);
  } catch (const uvaio::ExceptionGroup& group) {
    if (!test_support::starts_with(group.what(), "unhandled errors in a TaskGroup"))
      run->failures.add(std::string(level) + ": ExceptionGroup says " + group.what());
    if (group.exceptions() != expected) {
      run->failures.add(std::string(level) + ": ExceptionGroup holds " +
                        std::to_string(group.exceptions().size()) + " member(s), not the " +
                        std::to_string(expected.size()) + " failed children in order");
    }
  }
}

}  // namespace

namespace {

// A group of leaves_per_inner leaves. In a failing group, 1-3 leaves fail and
// 1-5 wait forever (only the group's cancellation ends them). A group whose
// join throws an ExceptionGroup either contains it (records it, returns
// normally) or lets it propagate to the mid level.
uvaio::Async<int> inner_task(TreeRun* run, std::size_t first_id, bool failing_group, bool contain,
                             std::vector<std::size_t>* mid_failed, std::size_t index_in_mid) {
  const std::size_t n = run->leaves_per_inner;
  std::vector<LeafKind> kinds(n, LeafKind::quick);
  if (failing_group) {
    ++run->failing_groups;
    const std::size_t failing = 1 + below(run->rng, 3);
    for (std::size_t f = 0; f < failing; ++f) kinds[below(run->rng, n)] = LeafKind::failing;
    const std::size_t forever = 1 + below(run->rng, 5);
    for (std::size_t f = 0; f < forever; ++f) {
      const std::size_t k = below(run->rng, n);
      if (kinds[k] == LeafKind::quick) kinds[k] = LeafKind::forever;
    }
  }
  std::vector<std::size_t> group_raised;
  uvaio::TaskGroup group;
  std::vector<uvaio::Task<int>> children;
  children.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const int yields = static_cast<int>(below(run->rng, 4));
    children.push_back(group.create_task(leaf(run, &group_raised, first_id + i, kinds[i], yields)));
    if (kinds[i] == LeafKind::forever) ++run->forever_leaves;
  }
  run->leaves_created += n;

  Joined joined;
  try {
    co_await group.join();
  } catch (const uvaio::ExceptionGroup&) {
    joined.error = std::current_exception();
    joined.group = true;
  } catch (const uvaio::CancelledError&) {
    joined.error = std::current_exception();
    joined.cancelled = true;
  }

  std::size_t ok = 0;
  std::size_t cancelled = 0;
  std::vector<std::exception_ptr> failed_by_leaf(n);
  std::size_t failed = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const uvaio::Task<int>& child = children[i];
    const std::size_t id = first_id + i;
    const std::string name = "leaf " + std::to_string(id);
    if (!child.done()) {
      run->failures.add(name + " still pending after join");
      continue;
    }
    if (child.cancelled()) {
      ++cancelled;
      continue;
    }
    if (kinds[i] == LeafKind::forever)
      run->failures.add(name + " (waiting forever) was not cancelled");
    if (const std::exception_ptr error = child.exception()) {
      ++failed;
      failed_by_leaf[i] = error;
      if (kinds[i] != LeafKind::failing) run->failures.add(name + " failed: " + what_of(error));
      if (what_of(error) != name + " failed")
        run->failures.add(name + " failed with " + what_of(error));
      continue;
    }
    if (kinds[i] != LeafKind::quick) run->failures.add(name + " gave a value");
    if (child.result() != leaf_value(id))
      run->failures.add(name + " gave " + std::to_string(child.result()));
    ++ok;
  }
  run->leaves_ok += ok;
  run->leaves_cancelled += cancelled;
  run->leaves_failed += failed;

  // The group's members: exactly the failed leaves, in the order they raised.
  std::vector<std::exception_ptr> expected;
  for (const std::size_t id : group_raised) expected.push_back(failed_by_leaf[id - first_id]);
  if (group_raised.size() != failed)
    run->failures.add("inner group: raised and failed leaves differ");
  check_members(run, "inner group", joined, expected);
  if (!joined.group && !joined.cancelled && cancelled != 0) {
    run->failures.add("inner group: join returned normally but " + std::to_string(cancelled) +
                      " leaves were cancelled");
  }
  if (joined.cancelled && failed != 0)
    run->failures.add("inner group: join threw CancelledError though leaves failed");

  if (joined.group) {
    ++run->inner_groups_failed;
    if (contain) {
      run->surfaced.push_back(joined.error);
      co_return static_cast<int>(ok);
    }
    mid_failed->push_back(index_in_mid);
  }
  if (joined.error) std::rethrow_exception(joined.error);
  co_return static_cast<int>(ok);
}

// A group of inner groups; contains or propagates its ExceptionGroup like them.
uvaio::Async<int> mid_task(TreeRun* run, std::size_t mid_index, bool contain,
                           std::vector<std::size_t>* root_failed) {
  std::vector<std::size_t> failed_order;
  uvaio::TaskGroup group;
  std::vector<uvaio::Task<int>> children;
  for (std::size_t k = 0; k < run->inners_per_mid; ++k) {
    const bool failing = chance(run->rng, run->p_failing_group);
    const bool contain_inner = chance(run->rng, run->p_contain);
    const std::size_t first_id = (mid_index * run->inners_per_mid + k) * run->leaves_per_inner;
    children.push_back(
        group.create_task(inner_task(run, first_id, failing, contain_inner, &failed_order, k)));
  }

  Joined joined;
  try {
    co_await group.join();
  } catch (const uvaio::ExceptionGroup&) {
    joined.error = std::current_exception();
    joined.group = true;
  } catch (const uvaio::CancelledError&) {
    joined.error = std::current_exception();
    joined.cancelled = true;
  }

  int sum = 0;
  std::size_t failed = 0;
  for (const auto& child : children) {
    if (!child.done()) {
      run->failures.add("an inner group's task is still pending after the mid group's join");
    } else if (!child.cancelled()) {
      if (child.exception()) {
        ++failed;
      } else {
        sum += child.result();
      }
    }
  }
  std::vector<std::exception_ptr> expected;
  for (const std::size_t k : failed_order) expected.push_back(children[k].exception());
  if (failed != failed_order.size())
    run->failures.add("mid group: failed inner tasks and rethrown groups differ");
  check_members(run, "mid group", joined, expected);

  if (joined.group) {
    ++run->mid_groups_failed;
    if (contain) {
      run->surfaced.push_back(joined.error);
      co_return sum;
    }
    root_failed->push_back(mid_index);
  }
  if (joined.error) std::rethrow_exception(joined.error);
  co_return sum;
}

uvaio::Async<void> root_task(TreeRun* run) {
  std::vector<std::size_t> failed_order;
  uvaio::TaskGroup group;
  std::vector<uvaio::Task<int>> children;
  for (std::size_t m = 0; m < run->mids; ++m) {
    children.push_back(
        group.create_task(mid_task(run, m, chance(run->rng, run->p_contain), &failed_order)));
  }
  Joined joined;
  try {
    co_await group.join();
  } catch (const uvaio::ExceptionGroup&) {
    joined.error = std::current_exception();
    joined.group = true;
  }
  std::vector<std::exception_ptr> expected;
  for (const std::size_t m : failed_order) expected.push_back(children[m].exception());
  check_members(run, "root group", joined, expected);
  if (joined.group) {
    run->root_failed = true;
    run->surfaced.push_back(joined.error);
  }
}

}  // namespace

TEST_CASE(
    "nested TaskGroups with random failures surface exactly the failures raised and cancel the "
    "siblings") {
  Counted::reset();
  TreeRun run(case_seed(3));
  run.mids = 10;
  run.inners_per_mid = 20;
  run.leaves_per_inner = scaled(500, 10);
  run.p_failing_group = 0.1;
  run.p_contain = 0.5;
  const std::size_t total = run.mids * run.inners_per_mid * run.leaves_per_inner;
  MESSAGE(scale_line());
  uvaio::run(root_task(&run));

  std::vector<std::size_t> surfaced_ids;
  for (const auto& error : run.surfaced) collect_leaf_ids(&run, error, &surfaced_ids);
  std::vector<std::size_t> raised = run.raised;
  std::sort(raised.begin(), raised.end());
  std::sort(surfaced_ids.begin(), surfaced_ids.end());
  const bool raised_unique = std::adjacent_find(raised.begin(), raised.end()) == raised.end();

  MESSAGE(total << " leaf tasks in " << run.mids * run.inners_per_mid << " inner groups ("
                << run.failing_groups << " with failing leaves) under " << run.mids
                << " mid groups: " << run.leaves_ok << " values, " << run.leaves_failed
                << " failed, " << run.leaves_cancelled << " cancelled (" << run.forever_leaves
                << " waiting forever); groups failed: " << run.inner_groups_failed << " inner, "
                << run.mid_groups_failed << " mid, root "
                << std::string(run.root_failed ? "yes" : "no"));
  CHECK_MESSAGE(run.failures.count() == 0, run.failures.summary());
  CHECK(run.leaves_created == total);
  CHECK(run.leaves_ok + run.leaves_failed + run.leaves_cancelled == total);
  CHECK(run.leaves_failed == run.raised.size());
  CHECK(run.raised.size() > 0);
  CHECK(raised_unique);
  CHECK(surfaced_ids == raised);  // every failure surfaced exactly once, nothing else did
  CHECK(run.leaves_cancelled >= run.forever_leaves);
  CHECK(run.inner_groups_failed > 0);
  CHECK(Counted::constructed.load() > 0);
  CHECK(Counted::alive() == 0);
}

// --- 4. loops created and destroyed with work in flight ----------------------------------------

namespace {

// A callback posted with call_soon_threadsafe by the poster thread. The one
// instance the loop holds (not moved from) records, when destroyed, whether
// it ran: every accepted or refused post is destroyed exactly once that way.
struct Posted {
  static inline std::atomic<long> constructed{0};
  static inline std::atomic<long> destroyed{0};
  static inline std::atomic<long> ran{0};
  static inline std::atomic<long> ended_ran{0};
  static inline std::atomic<long> ended_unrun{0};
  static void reset() { constructed = destroyed = ran = ended_ran = ended_unrun = 0; }

  std::thread::id loop_thread;
  Failures* failures;
  bool live = true;
  bool did_run = false;

  Posted(std::thread::id t, Failures* f) : loop_thread(t), failures(f) { ++constructed; }
  Posted(Posted&& other) noexcept
      : loop_thread(other.loop_thread),
        failures(other.failures),
        live(std::exchange(other.live, false)),
        did_run(other.did_run) {
    ++constructed;
  }
  Posted(const Posted&) = delete;
  Posted& operator=(const Posted&) = delete;
  Posted& operator=(Posted&&) = delete;
  ~Posted() {
    ++destroyed;
    if (live) ++(did_run ? ended_ran : ended_unrun);
  }

  void operator()() {
    if (did_run) failures->add("a posted callback ran twice");
    did_run = true;
    ++ran;
    if (std::this_thread::get_id() != loop_thread)
      failures->add("a posted callback ran off the loop thread");
  }
};

// The thread that posts to the loop of the current round, while it runs,
// while it closes, and after.
class RoundPoster {
 public:
  RoundPoster(std::size_t per_round, std::uint64_t seed, Failures* failures)
      : per_round_(per_round), rng_(seed), failures_(failures), thread_([this] { loop(); }) {}
  RoundPoster(const RoundPoster&) = delete;
  RoundPoster& operator=(const RoundPoster&) = delete;
  ~RoundPoster() {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // Starts posting to `target` (whose loop runs on this thread).
  void begin(uvaio::Loop* target) {
    closing_.store(false);
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      target_ = target;
      loop_thread_ = std::this_thread::get_id();
      ++round_;
      posting_ = true;
    }
    cv_.notify_all();
  }
  // From here on the loop may refuse posts.
  void closing() { closing_.store(true); }
  // Waits until this round's posts were made; the loop may be destroyed then.
  void finish() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [this] { return !posting_; });
    target_ = nullptr;
  }

  std::atomic<long> accepted{0};
  std::atomic<long> refused{0};

 private:
  void loop() {
    std::uint64_t seen = 0;
    for (;;) {
      uvaio::Loop* target = nullptr;
      std::thread::id loop_thread;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return quit_ || round_ != seen; });
        if (quit_) return;
        seen = round_;
        target = target_;
        loop_thread = loop_thread_;
      }
      for (std::size_t i = 0; i < per_round_; ++i) {
        const auto pause = std::chrono::nanoseconds(below(rng_, 40'000));
        const auto until = std::chrono::steady_clock::now() + pause;
        while (std::chrono::steady_clock::now() < until) {
        }
        const bool was_closing = closing_.load();
        try {
          (void)target->call_soon_threadsafe(Posted(loop_thread, failures_));
          ++accepted;
        } catch (const uvaio::RuntimeError& e) {
          ++refused;
          if (!was_closing && !closing_.load())
            failures_->add("call_soon_threadsafe refused before close()");
          if (std::string(e.what()) != "Event loop is closed")
            failures_->add(std::string("refused with: ") + e.what());
        } catch (...) {
          failures_->add("call_soon_threadsafe threw " + what_of(std::current_exception()));
        }
      }
      {
        const std::lock_guard<std::mutex> lock(mutex_);
        posting_ = false;
      }
      cv_.notify_all();
    }
  }

  std::size_t per_round_;
  std::mt19937_64 rng_;
  Failures* failures_;
  std::mutex mutex_;
  std::condition_variable cv_;
  uvaio::Loop* target_ = nullptr;
  std::thread::id loop_thread_;
  std::uint64_t round_ = 0;
  bool posting_ = false;
  bool quit_ = false;
  std::atomic<bool> closing_{false};
  std::thread thread_;  // last: starts once everything above is initialised
};

// Runs when a timer fires; holds a Counted so that dropped timers show.
struct TimerCall {
  Counted held;
  int* runs;
  void operator()() { ++*runs; }
};

// A call for the ThreadPoolExecutor that outlives the loops: the pool may
// still hold it (queued, cancelled) after its loop is gone, so it has counters
// of its own, checked once the pool has shut down.
struct PoolCall {
  static inline std::atomic<long> constructed{0};
  static inline std::atomic<long> destroyed{0};

  std::uint64_t index;
  std::uint32_t spin_ns;

  PoolCall(std::uint64_t i, std::uint32_t spin) : index(i), spin_ns(spin) { ++constructed; }
  PoolCall(const PoolCall& other) : index(other.index), spin_ns(other.spin_ns) { ++constructed; }
  PoolCall(PoolCall&& other) noexcept : index(other.index), spin_ns(other.spin_ns) {
    ++constructed;
  }
  PoolCall& operator=(const PoolCall&) = delete;
  PoolCall& operator=(PoolCall&&) = delete;
  ~PoolCall() { ++destroyed; }

  std::uint64_t operator()(std::stop_token stop) const {
    const auto until = std::chrono::steady_clock::now() + std::chrono::nanoseconds(spin_ns);
    while (!stop.stop_requested() && std::chrono::steady_clock::now() < until) {
    }
    return expected_value(index);
  }
};

uvaio::Async<std::uint64_t> await_job(Job job) {
  uvaio::Future<Payload> future = uvaio::to_thread(std::move(job));
  Payload payload = co_await std::move(future);
  co_return payload.value;
}

uvaio::Async<int> sleeper(uvaio::Duration delay, int value) {
  const Counted held(value);
  co_await uvaio::sleep(delay);
  co_return held.value;
}

// What one round left in flight, checked after its loop is gone.
struct Round {
  std::vector<uvaio::Future<Payload>> futures;  // to_thread futures nobody awaits
  std::vector<std::uint64_t> future_index;
  std::vector<uvaio::Future<std::uint64_t>> pool_futures;  // run_in_executor on the shared pool
  std::vector<std::uint64_t> pool_index;
  std::vector<uvaio::Task<std::uint64_t>> callers;  // tasks awaiting to_thread
  std::vector<std::uint64_t> caller_index;
  std::vector<uvaio::Task<int>> sleepers;
  std::vector<bool> sleeper_forever;
  std::vector<uvaio::TimerHandle> timers;
  int timer_runs = 0;
  int forever_timer_runs = 0;
};

uvaio::Async<void> start_round(Round* round, std::mt19937_64* rng, std::uint64_t* next_job,
                               uvaio::ThreadPoolExecutor* pool) {
  uvaio::Loop& loop = uvaio::get_running_loop();
  for (int k = 0; k < 2; ++k) {
    const std::uint64_t index = (*next_job)++;
    const auto spin = chance(*rng, 0.5) ? static_cast<std::uint32_t>(below(*rng, 30'000) + 1) : 0u;
    round->pool_futures.push_back(loop.run_in_executor(pool, PoolCall(index, spin)));
    round->pool_index.push_back(index);
  }
  for (int k = 0; k < 3; ++k) {
    const std::uint64_t index = (*next_job)++;
    const auto spin = chance(*rng, 0.5) ? static_cast<std::uint32_t>(below(*rng, 30'000) + 1) : 0u;
    round->futures.push_back(uvaio::to_thread(Job(index, spin, nullptr)));
    round->future_index.push_back(index);
  }
  for (int k = 0; k < 2; ++k) {
    const std::uint64_t index = (*next_job)++;
    const auto spin = chance(*rng, 0.5) ? static_cast<std::uint32_t>(below(*rng, 30'000) + 1) : 0u;
    round->callers.push_back(loop.create_task(await_job(Job(index, spin, nullptr))));
    round->caller_index.push_back(index);
  }
  for (int k = 0; k < 2; ++k) {
    const bool forever = chance(*rng, 0.5);
    const uvaio::Duration delay =
        forever ? uvaio::Duration(1h)
                : uvaio::Duration(std::chrono::microseconds(below(*rng, 2'000)));
    round->sleepers.push_back(loop.create_task(sleeper(delay, k + 1)));
    round->sleeper_forever.push_back(forever);
  }
  for (int k = 0; k < 3; ++k) {
    const bool forever = k == 2;
    const uvaio::Duration delay =
        forever ? uvaio::Duration(1h)
                : uvaio::Duration(std::chrono::microseconds(below(*rng, 1'500)));
    round->timers.push_back(loop.call_later(
        delay, TimerCall{Counted(k), forever ? &round->forever_timer_runs : &round->timer_runs}));
  }
  co_await yield_times(static_cast<int>(below(*rng, 4)));
  if (chance(*rng, 0.25)) {
    const uvaio::Future<Payload> first = round->futures.front();
    const Payload& payload = co_await first;
    (void)payload;
  }
}

// "" when `handle` ended cancelled or with `expected`; else what it ended with.
template <class Handle, class T>
std::string end_of(const Handle& handle, const T& expected) {
  if (!handle.done()) return "still pending after close";
  if (handle.cancelled()) return "";
  if (const std::exception_ptr error = handle.exception()) return "failed: " + what_of(error);
  if (!(handle.result() == expected)) return "has a wrong value";
  return "";
}

void check_round(const Round& round, std::size_t round_number, Failures* failures) {
  const std::string where = "round " + std::to_string(round_number) + ": ";
  for (std::size_t k = 0; k < round.futures.size(); ++k) {
    const std::string end = end_of(round.futures[k], expected_value(round.future_index[k]));
    if (!end.empty()) failures->add(where + "a to_thread future " + end);
  }
  for (std::size_t k = 0; k < round.pool_futures.size(); ++k) {
    const std::string end = end_of(round.pool_futures[k], expected_value(round.pool_index[k]));
    if (!end.empty()) failures->add(where + "a run_in_executor future on the shared pool " + end);
  }
  for (std::size_t k = 0; k < round.callers.size(); ++k) {
    const std::string end = end_of(round.callers[k], expected_value(round.caller_index[k]));
    if (!end.empty()) failures->add(where + "a task awaiting to_thread " + end);
  }
  for (std::size_t k = 0; k < round.sleepers.size(); ++k) {
    const auto& task = round.sleepers[k];
    const std::string end = end_of(task, static_cast<int>(k) + 1);
    if (!end.empty()) failures->add(where + "a sleeping task " + end);
    if (round.sleeper_forever[k] && task.done() && !task.cancelled()) {
      failures->add(where + "a task sleeping an hour was not cancelled");
    }
  }
  if (round.forever_timer_runs != 0) failures->add(where + "an hour's timer ran");
  if (round.timer_runs > 2) failures->add(where + "a timer ran twice");
}

}  // namespace

TEST_CASE(
    "loops created and destroyed with work in flight end every future cancelled or with its "
    "value") {
  reset_instance_counters();
  Posted::reset();
  PoolCall::constructed = 0;
  PoolCall::destroyed = 0;
  const std::size_t rounds = scaled(10'000, 200);
  const std::size_t posts_per_round = 3;
  MESSAGE(scale_line());
  std::mt19937_64 rng(case_seed(4));
  Failures failures;
  std::uint64_t next_job = 0;
  std::size_t destroyed_pending = 0;
  std::size_t closed_explicitly = 0;
  std::size_t closed_by_runner = 0;
  std::size_t values = 0;
  std::size_t cancelled = 0;
  long unbalanced_rounds = 0;
  long accepted = 0;
  long refused = 0;
  uvaio::ThreadPoolExecutor pool({.max_workers = 2, .name = "stress-rounds"});
  {
    RoundPoster poster(posts_per_round, case_seed(40), &failures);
    for (std::size_t r = 0; r < rounds; ++r) {
      Round round;
      std::size_t expected_reports = 0;
      std::size_t reports = 0;
      const std::size_t mode = below(rng, 3);
      {
        // Closed by close() during posts, by ~Loop, or by Runner::close().
        std::optional<uvaio::Loop> own_loop;
        std::optional<uvaio::Runner> runner;
        if (mode == 2) {
          runner.emplace();
        } else {
          own_loop.emplace();
        }
        uvaio::Loop& loop = runner ? runner->get_loop() : *own_loop;
        loop.set_exception_handler([&](uvaio::Loop&, const uvaio::ExceptionContext& context) {
          if (context.message == "Task was destroyed but it is pending!") {
            ++reports;
          } else {
            failures.add("round " + std::to_string(r) + ": unexpected report: " + context.message +
                         " " + what_of(context.exception));
          }
        });
        poster.begin(&loop);
        if (runner) {
          runner->run(start_round(&round, &rng, &next_job, &pool));
        } else {
          loop.run_until_complete(start_round(&round, &rng, &next_job, &pool));
        }
        if (mode != 2) {
          for (const auto& task : round.callers) expected_reports += task.done() ? 0 : 1;
          for (const auto& task : round.sleepers) expected_reports += task.done() ? 0 : 1;
        }
        if (mode == 2) {
          // asyncio.Runner's close: the pending tasks are cancelled and unwind
          // (none is destroyed pending), the default executor's work is waited
          // for, then the loop closes -- while the poster may be posting.
          poster.closing();
          runner->close();
          poster.finish();
          ++closed_by_runner;
          // Nobody cancelled the to_thread futures that no task awaits, and
          // closing waited for the default executor: they all have values.
          for (const auto& future : round.futures) {
            if (future.cancelled())
              failures.add("round " + std::to_string(r) +
                           ": Runner::close() cancelled a to_thread future");
          }
        } else if (mode == 0) {
          // close() while the poster may be posting; ~Loop then has nothing to do.
          poster.closing();
          loop.close();
          poster.finish();
          ++closed_explicitly;
        } else {
          // The destructor closes the loop; nobody may touch it by then.
          poster.finish();
          poster.closing();
        }
      }
      if (reports != expected_reports) {
        failures.add("round " + std::to_string(r) + ": " + std::to_string(reports) +
                     " tasks reported destroyed, " + std::to_string(expected_reports) +
                     " were pending");
      }
      destroyed_pending += reports;
      check_round(round, r, &failures);
      for (const auto& future : round.futures) (future.cancelled() ? cancelled : values) += 1;
      for (const auto& task : round.callers) (task.cancelled() ? cancelled : values) += 1;
      for (const auto& future : round.pool_futures) (future.cancelled() ? cancelled : values) += 1;
      round = Round();
      // Everything the round made is gone now, including what worker threads held.
      if (Job::constructed.load() != Job::destroyed.load() ||
          Payload::constructed.load() != Payload::destroyed.load() || Counted::alive() != 0) {
        ++unbalanced_rounds;
        failures.add("round " + std::to_string(r) + ": instances alive: jobs " +
                     std::to_string(Job::constructed.load() - Job::destroyed.load()) +
                     ", payloads " +
                     std::to_string(Payload::constructed.load() - Payload::destroyed.load()) +
                     ", counted " + std::to_string(Counted::alive()));
        // Rebase, so that one leak does not fail every later round.
        Job::reset();
        Payload::reset();
        Counted::reset();
      }
    }
    accepted = poster.accepted.load();
    refused = poster.refused.load();
  }                     // the poster thread ends here
  pool.shutdown(true);  // lets go of the calls it still held for loops long gone
  MESSAGE(rounds << " loops (" << closed_explicitly << " closed by close() during posts, "
                 << closed_by_runner << " by Runner::close() during posts, the rest by ~Loop): "
                 << next_job << " to_thread and pool calls (" << values << " values, " << cancelled
                 << " cancelled), " << destroyed_pending << " tasks destroyed pending, " << accepted
                 << " posts accepted (" << Posted::ran.load()
                 << " ran, the rest dropped by close), " << refused << " refused after close");
  CHECK_MESSAGE(failures.count() == 0, failures.summary());
  CHECK(unbalanced_rounds == 0);
  CHECK(values + cancelled == next_job);
  CHECK(values > 0);
  CHECK(cancelled > 0);
  CHECK(destroyed_pending > 0);
  CHECK(accepted + refused == static_cast<long>(rounds * posts_per_round));
  CHECK(Posted::ended_ran.load() + Posted::ended_unrun.load() == accepted + refused);
  CHECK(Posted::ran.load() == Posted::ended_ran.load());
  CHECK(Posted::ran.load() > 0);
  CHECK(Posted::constructed.load() == Posted::destroyed.load());
  CHECK(PoolCall::constructed.load() > 0);
  CHECK(PoolCall::constructed.load() == PoolCall::destroyed.load());
}

// --- 5. two loops sharing one ThreadPoolExecutor -------------------------------------------------

TEST_CASE(
    "two loops on two threads sharing one ThreadPoolExecutor each get every result once on their "
    "own thread") {
  reset_instance_counters();
  MESSAGE(scale_line());
  uvaio::ThreadPoolExecutor pool({.max_workers = 4, .name = "stress"});
  CallsConfig config;
  config.count = scaled(250'000, 1'000);
  config.window = 1'000;
  config.executor = &pool;
  config.p_cancel_at_start = 0.01;
  config.p_cancel_on_done = 0.01;
  config.p_random_cancel = 0.02;
  config.p_spin = 0.02;
  config.max_spin_ns = 10'000;
  CallsRun first(config, case_seed(51));
  CallsRun second(config, case_seed(52));
  std::exception_ptr errors[2];
  {
    std::thread a([&] {
      try {
        uvaio::run(drive_calls(&first));
      } catch (...) {
        errors[0] = std::current_exception();
      }
    });
    std::thread b([&] {
      try {
        uvaio::run(drive_calls(&second));
      } catch (...) {
        errors[1] = std::current_exception();
      }
    });
    a.join();
    b.join();
  }
  pool.shutdown(true);  // the pool lets go of cancelled calls it still held
  for (CallsRun* run : {&first, &second}) {
    run->check_end();
    count_cancelled_after_running(*run);
    MESSAGE(describe(*run));
  }
  CHECK(what_of(errors[0]) == "<null>");
  CHECK(what_of(errors[1]) == "<null>");
  CHECK(first.loop_thread != second.loop_thread);
  CHECK(first.loop_thread != std::thread::id());
  CHECK(second.loop_thread != std::thread::id());
  for (CallsRun* run : {&first, &second}) {
    CHECK_MESSAGE(run->failures.count() == 0, run->failures.summary());
    CHECK(run->values + run->cancelled == config.count);
    CHECK(run->values > 0);
    CHECK(run->cancelled > 0);
  }
  CHECK(pool.threads() <= 4);
  CHECK(Job::constructed.load() > 0);
  CHECK(Job::constructed.load() == Job::destroyed.load());
  CHECK(Payload::constructed.load() == Payload::destroyed.load());
}

TEST_SUITE_END();
