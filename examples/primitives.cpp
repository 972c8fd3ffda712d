// The loop-thread primitives: Event, Lock (with a scoped guard), Semaphore,
// BoundedSemaphore and Condition. Waiters are served first come, first served,
// and a waiting task can be cancelled without disturbing the others.

#include <algorithm>
#include <chrono>
#include <cstdio>
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

// [snippet:event]
uvaio::Async<void> runner(std::shared_ptr<Log> log, std::shared_ptr<uvaio::Event> start, std::string name) {
  co_await start->wait();  // at once if the event is already set
  note(*log, "event: " + name + " runs");
}

uvaio::Async<void> start_together(std::shared_ptr<Log> log) {
  auto start = std::make_shared<uvaio::Event>();
  std::vector<uvaio::Task<void>> runners;
  for (const char* name : {"a", "b", "c"}) runners.push_back(uvaio::create_task(runner(log, start, name)));
  co_await uvaio::sleep(5ms);
  note(*log, "event: set");
  start->set();  // wakes every waiter, in the order they started waiting
  co_await uvaio::gather(runners);
}
// [end]

// [snippet:lock]
// One writer at a time: the guard releases the lock when it goes, also when
// an exception (a CancelledError too) unwinds the coroutine.
uvaio::Async<void> write_entry(std::shared_ptr<Log> log, std::shared_ptr<uvaio::Lock> lock, std::string entry) {
  uvaio::LockGuard guard = co_await lock->scoped();
  co_await uvaio::sleep(2ms);  // the write, with the lock held
  note(*log, "lock: wrote " + entry);
}

uvaio::Async<void> write_entries(std::shared_ptr<Log> log) {
  auto lock = std::make_shared<uvaio::Lock>();
  std::vector<uvaio::Task<void>> writers;
  for (const char* entry : {"a", "b", "c", "d"}) {
    writers.push_back(uvaio::create_task(write_entry(log, lock, entry)));
  }
  co_await uvaio::sleep(1ms);  // "a" holds the lock; "b", "c", "d" wait, in that order
  writers[2].cancel();         // "c" stops waiting; the others keep their turns
  co_await uvaio::gather_settled(writers);
  note(*log, "lock: writer c cancelled: " + std::to_string(writers[2].cancelled()) +
                 ", locked() = " + std::to_string(lock->locked()));
}
// [end]

// [snippet:semaphore]
struct Downloads {
  uvaio::Semaphore slots{2};  // at most two at a time
  int running = 0;
  int most_running = 0;
};

uvaio::Async<void> download(std::shared_ptr<Downloads> downloads, int n) {
  uvaio::SemaphoreGuard slot = co_await downloads->slots.scoped();
  downloads->most_running = std::max(downloads->most_running, ++downloads->running);
  co_await uvaio::sleep(std::chrono::milliseconds(1 + n % 3));
  --downloads->running;
}

uvaio::Async<void> download_all(std::shared_ptr<Log> log) {
  auto downloads = std::make_shared<Downloads>();
  std::vector<uvaio::Async<void>> all;
  for (int n = 0; n < 8; ++n) all.push_back(download(downloads, n));
  co_await uvaio::gather(std::move(all));
  note(*log, "semaphore: 8 downloads, at most " + std::to_string(downloads->most_running) + " at a time");

  uvaio::BoundedSemaphore bounded(1);
  try {
    bounded.release();  // never acquired: one release too many
  } catch (const uvaio::ValueError& e) {
    note(*log, std::string("semaphore: ") + e.what());
  }
}
// [end]

// [snippet:condition]
struct Account {
  uvaio::Condition changed;  // with its own Lock
  int balance = 0;
};

uvaio::Async<void> withdraw(std::shared_ptr<Log> log, std::shared_ptr<Account> account, int amount) {
  uvaio::LockGuard guard = co_await account->changed.scoped();
  // wait_for() releases the lock while it waits and checks the predicate with
  // the lock held. (The lambda is named first: g++ 12 destroys a temporary
  // that owns something twice when it is made inside a co_await expression.)
  auto enough = [account, amount] { return account->balance >= amount; };
  co_await account->changed.wait_for(enough);
  account->balance -= amount;
  note(*log, "condition: withdrew " + std::to_string(amount) + ", balance " + std::to_string(account->balance));
}

uvaio::Async<void> deposit(std::shared_ptr<Log> log, std::shared_ptr<Account> account, int amount) {
  uvaio::LockGuard guard = co_await account->changed.scoped();
  account->balance += amount;
  note(*log, "condition: deposited " + std::to_string(amount));
  account->changed.notify_all();  // only with the lock held
}

uvaio::Async<void> pay_from_deposits(std::shared_ptr<Log> log) {
  auto account = std::make_shared<Account>();
  uvaio::Task<void> rent = uvaio::create_task(withdraw(log, account, 70));
  for (int amount : {30, 30, 30}) {
    co_await uvaio::sleep(2ms);
    co_await deposit(log, account, amount);
  }
  co_await rent;
}
// [end]

uvaio::Async<void> main_coroutine(std::shared_ptr<Log> log) {
  co_await start_together(log);
  co_await write_entries(log);
  co_await download_all(log);
  co_await pay_from_deposits(log);
}

int main() {
  auto log = std::make_shared<Log>();
  uvaio::run(main_coroutine(log));
  const Log expected = {
      "event: set",
      "event: a runs",
      "event: b runs",
      "event: c runs",
      "lock: wrote a",
      "lock: wrote b",
      "lock: wrote d",
      "lock: writer c cancelled: 1, locked() = 0",
      "semaphore: 8 downloads, at most 2 at a time",
      "semaphore: BoundedSemaphore released too many times",
      "condition: deposited 30",
      "condition: deposited 30",
      "condition: deposited 30",
      "condition: withdrew 70, balance 20",
  };
  if (*log != expected) {
    std::fprintf(stderr, "primitives: unexpected behaviour\n");
    return 1;
  }
  return 0;
}
