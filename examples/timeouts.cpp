// Deadlines: wait_for cancels what it awaits on time-out, waits for it to
// finish, then throws TimeoutError; a cancellation the work swallows gives its
// value instead; cancelling the task from outside is a CancelledError, never a
// TimeoutError.

#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include <uvaio/uvaio.hpp>

using namespace std::chrono_literals;

// What happened, in order; touched on the loop thread only.
using Log = std::vector<std::string>;

void note(Log& log, std::string line) {
  std::printf("%s\n", line.c_str());
  log.push_back(std::move(line));
}

long long ms_since(uvaio::TimePoint start) {
  const auto elapsed = uvaio::get_running_loop().time() - start;
  return std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
}

// [snippet:wait_for]
// A query that needs 10 ms to roll back when it is cancelled.
uvaio::Async<int> query(std::shared_ptr<Log> log, uvaio::Duration takes) {
  std::exception_ptr cancelled;
  try {
    co_await uvaio::sleep(takes);
    co_return 42;
  } catch (const uvaio::CancelledError&) {
    cancelled = std::current_exception();  // no co_await inside a catch block in C++
  }
  co_await uvaio::sleep(10ms);
  note(*log, "query: rolled back");
  std::rethrow_exception(cancelled);
}

uvaio::Async<void> query_with_deadline(std::shared_ptr<Log> log) {
  const uvaio::TimePoint start = uvaio::get_running_loop().time();
  try {
    int rows = co_await uvaio::wait_for(query(log, 10s), 20ms);
    note(*log, "wait_for: " + std::to_string(rows) + " rows");
  } catch (const uvaio::TimeoutError& e) {
    // Thrown once the query has rolled back: 20 ms, then 10 ms more.
    note(*log, std::string("wait_for: ") + e.what() + (ms_since(start) >= 30 ? " after the rollback" : " early?!"));
  }
  int rows = co_await uvaio::timeout(1s, query(log, 5ms));  // the same as wait_for(query, 1s)
  note(*log, "timeout: " + std::to_string(rows) + " rows");
}
// [end]

// [snippet:swallowed]
// Returns the best answer found so far when it is cancelled.
uvaio::Async<int> search(uvaio::Duration takes) {
  int best = 7;
  try {
    co_await uvaio::sleep(takes);
    best = 10;
  } catch (const uvaio::CancelledError&) {
    // Swallowed: the task goes on and returns a value.
  }
  co_return best;
}

uvaio::Async<void> search_with_deadline(std::shared_ptr<Log> log) {
  int best = co_await uvaio::wait_for(search(10s), 10ms);  // no TimeoutError: a value came back
  note(*log, "wait_for: search returned " + std::to_string(best));

  // A Task given to wait_for is cancelled on time-out, as an Async is.
  uvaio::Task<int> task = uvaio::create_task(query(log, 10s), "query");
  uvaio::TimePoint deadline = uvaio::get_running_loop().time() + 10ms;
  try {
    co_await uvaio::timeout_at(deadline, task);
  } catch (const uvaio::TimeoutError&) {
    note(*log, "timeout_at: timed out, task cancelled: " + std::to_string(task.cancelled()));
  }
}
// [end]

// [snippet:outside]
uvaio::Async<void> patient(std::shared_ptr<Log> log) {
  try {
    co_await uvaio::wait_for(query(log, 10s), 1s);
  } catch (const uvaio::TimeoutError&) {
    note(*log, "patient: TimeoutError?!");
  }
}

uvaio::Async<void> cancel_from_outside(std::shared_ptr<Log> log) {
  uvaio::Task<void> task = uvaio::create_task(patient(log), "patient");
  co_await uvaio::sleep(5ms);
  task.cancel("shutting down");
  try {
    co_await task;
  } catch (const uvaio::CancelledError& e) {
    note(*log, "patient: CancelledError(\"" + e.message() + "\"), not a time-out");
  }
}
// [end]

uvaio::Async<void> main_coroutine(std::shared_ptr<Log> log) {
  co_await query_with_deadline(log);
  co_await search_with_deadline(log);
  co_await cancel_from_outside(log);
}

int main() {
  auto log = std::make_shared<Log>();
  uvaio::run(main_coroutine(log));
  const Log expected = {
      "query: rolled back",
      "wait_for: timed out after the rollback",
      "timeout: 42 rows",
      "wait_for: search returned 7",
      "query: rolled back",
      "timeout_at: timed out, task cancelled: 1",
      "query: rolled back",
      "patient: CancelledError(\"shutting down\"), not a time-out",
  };
  if (*log != expected) {
    std::fprintf(stderr, "timeouts: unexpected behaviour\n");
    return 1;
  }
  return 0;
}
