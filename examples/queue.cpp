// uvaio::Queue: a bounded queue between a producer and a few workers, with
// task_done()/join() to know when every job is handled and shutdown() to stop
// the workers; and a get() that gives up after a timeout.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <memory>
#include <numeric>
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

// [snippet:workers]
// Takes jobs until the queue is shut down and empty; returns how many it did.
uvaio::Async<int> worker(std::shared_ptr<uvaio::Queue<int>> jobs) {
  int handled = 0;
  try {
    for (;;) {
      int job = co_await jobs->get();  // waits while the queue is empty
      co_await uvaio::sleep(std::chrono::milliseconds(1 + job % 3));
      ++handled;
      jobs->task_done();
    }
  } catch (const uvaio::QueueShutDown&) {
    // No more jobs will come.
  }
  co_return handled;
}

uvaio::Async<void> run_jobs(std::shared_ptr<Log> log) {
  auto jobs = std::make_shared<uvaio::Queue<int>>(3);  // at most 3 jobs waiting
  std::vector<uvaio::Task<int>> workers;
  for (int i = 0; i < 3; ++i) workers.push_back(uvaio::create_task(worker(jobs), "worker-" + std::to_string(i)));

  std::size_t most_waiting = 0;
  for (int job = 1; job <= 12; ++job) {
    co_await jobs->put(job);  // waits while the queue is full: the producer keeps pace
    most_waiting = std::max(most_waiting, jobs->qsize());
  }
  co_await jobs->join();  // until task_done() was called for every job put
  note(*log, "queue: every job handled, never more than " + std::to_string(most_waiting) + " waiting");

  jobs->shutdown();  // the workers waiting in get() get QueueShutDown
  std::vector<int> handled = co_await uvaio::gather(workers);
  note(*log, "queue: the workers handled " + std::to_string(std::reduce(handled.begin(), handled.end())) +
                 " jobs between them");
  try {
    co_await jobs->put(13);
  } catch (const uvaio::QueueShutDown& e) {
    note(*log, std::string("queue: put after shutdown: ") + e.what());
  }
}
// [end]

// [snippet:timeout]
uvaio::Async<std::string> next_message(std::shared_ptr<uvaio::Queue<std::string>> inbox) {
  std::string message = co_await inbox->get();
  co_return message;
}

uvaio::Async<void> read_inbox(std::shared_ptr<Log> log) {
  auto inbox = std::make_shared<uvaio::Queue<std::string>>();
  try {
    co_await uvaio::wait_for(next_message(inbox), 5ms);
  } catch (const uvaio::TimeoutError&) {
    note(*log, "inbox: nothing within 5 ms");
  }
  // The cancelled get() took nothing with it: the next one gets this message.
  inbox->put_nowait("hello");
  std::string message = co_await uvaio::wait_for(next_message(inbox), 5ms);
  note(*log, "inbox: " + message);
}
// [end]

uvaio::Async<void> main_coroutine(std::shared_ptr<Log> log) {
  co_await run_jobs(log);
  co_await read_inbox(log);
}

int main() {
  auto log = std::make_shared<Log>();
  uvaio::run(main_coroutine(log));
  const Log expected = {
      "queue: every job handled, never more than 3 waiting",
      "queue: the workers handled 12 jobs between them",
      "queue: put after shutdown: queue is shut down",
      "inbox: nothing within 5 ms",
      "inbox: hello",
  };
  if (*log != expected) {
    std::fprintf(stderr, "queue: unexpected behaviour\n");
    return 1;
  }
  return 0;
}
