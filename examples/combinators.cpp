// Running several awaitables at once: gather (tuple and vector forms, the
// first failure), gather_settled, wait, as_completed and shield.

#include <chrono>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include <uvaio/uvaio.hpp>

using namespace std::chrono_literals;

// What happened, in order; touched on the loop thread only.
using Log = std::vector<std::string>;

void note(Log& log, std::string line) {
  std::printf("%s\n", line.c_str());
  log.push_back(std::move(line));
}

// A request that takes `delay`; it notes when it is cancelled.
uvaio::Async<std::string> fetch(std::shared_ptr<Log> log, std::string name, uvaio::Duration delay) {
  try {
    co_await uvaio::sleep(delay);
  } catch (const uvaio::CancelledError&) {
    note(*log, name + ": cancelled");
    throw;
  }
  co_return name;
}

uvaio::Async<std::string> fail(std::string name, uvaio::Duration delay) {
  co_await uvaio::sleep(delay);
  throw std::runtime_error(name + " is down");
}

uvaio::Async<void> warm_cache() {
  co_await uvaio::sleep(5ms);
}

// [snippet:gather]
uvaio::Async<void> gather_results(std::shared_ptr<Log> log) {
  // A tuple, in argument order; a void result is std::monostate.
  auto [user, orders, warmed] =
      co_await uvaio::gather(fetch(log, "user", 20ms), fetch(log, "orders", 10ms), warm_cache());
  static_assert(std::is_same_v<decltype(warmed), std::monostate>);
  note(*log, "gather: " + user + ", " + orders);

  // A vector, in input order, whatever order they finished in.
  std::vector<uvaio::Async<std::string>> pages;
  for (int i = 3; i >= 1; --i) pages.push_back(fetch(log, "page" + std::to_string(i), i * 5ms));
  std::vector<std::string> texts = co_await uvaio::gather(std::move(pages));
  note(*log, "gather: " + texts[0] + ", " + texts[1] + ", " + texts[2]);
}
// [end]

// [snippet:first_failure]
uvaio::Async<void> gather_failure(std::shared_ptr<Log> log) {
  uvaio::Task<std::string> report = uvaio::create_task(fetch(log, "report", 30ms));
  try {
    co_await uvaio::gather(fetch(log, "slow", 10s), fail("flaky", 5ms), report);
  } catch (const std::runtime_error& e) {
    // "slow" was cancelled and has finished by now; "report" is ours and goes on.
    note(*log, std::string("gather: ") + e.what() + "; report done: " + std::to_string(report.done()));
  }
  std::string finished = co_await report;
  note(*log, "gather: " + finished + " finished anyway");
}
// [end]

// [snippet:settled]
uvaio::Async<void> gather_every_outcome(std::shared_ptr<Log> log) {
  // Waits for every child; one Outcome per child, value or exception.
  auto [inventory, pricing] =
      co_await uvaio::gather_settled(fetch(log, "inventory", 5ms), fail("pricing", 1ms));
  if (inventory.has_value()) note(*log, "settled: " + inventory.value());
  try {
    note(*log, "settled: " + pricing.value());  // value() rethrows the child's exception
  } catch (const std::exception& e) {
    note(*log, std::string("settled: ") + e.what());
  }
}
// [end]

// [snippet:wait]
uvaio::Async<void> first_mirror(std::shared_ptr<Log> log) {
  std::vector<uvaio::Task<std::string>> mirrors = {
      uvaio::create_task(fetch(log, "mirror-eu", 30ms)),
      uvaio::create_task(fetch(log, "mirror-us", 10ms)),
      uvaio::create_task(fetch(log, "mirror-ap", 50ms)),
  };
  // Nothing is cancelled and nothing thrown for a child: done and pending
  // hold the tasks, in input order.
  auto [done, pending] = co_await uvaio::wait(mirrors, uvaio::ReturnWhen::first_completed);
  note(*log, "wait: " + done[0].result() + " answered first, " + std::to_string(pending.size()) + " pending");

  // With a timeout, whatever is not done by then stays in pending.
  auto [late_done, still_pending] = co_await uvaio::wait(pending, uvaio::ReturnWhen::all_completed, 5ms);
  note(*log, "wait: " + std::to_string(still_pending.size()) + " still pending after 5 ms");
  for (uvaio::Task<std::string>& task : still_pending) task.cancel();
  co_await uvaio::wait(still_pending);  // let them unwind
}
// [end]

// [snippet:as_completed]
uvaio::Async<void> in_finishing_order(std::shared_ptr<Log> log) {
  std::vector<uvaio::Async<std::string>> lookups;
  lookups.push_back(fetch(log, "dns", 15ms));
  lookups.push_back(fetch(log, "cache", 5ms));
  lookups.push_back(fetch(log, "disk", 10ms));
  for (auto next : uvaio::as_completed(std::move(lookups))) {
    std::string name = co_await next;
    note(*log, "as_completed: " + name);
  }
}
// [end]

// [snippet:shield]
uvaio::Async<void> save(std::shared_ptr<Log> log) {
  co_await uvaio::sleep(20ms);
  note(*log, "shield: saved");
}

// Gives up waiting when cancelled, but never interrupts the save.
uvaio::Async<void> handle_request(uvaio::Task<void> saving) {
  co_await uvaio::shield(saving);
}

uvaio::Async<void> cancel_around_a_save(std::shared_ptr<Log> log) {
  uvaio::Task<void> saving = uvaio::create_task(save(log), "save");
  uvaio::Task<void> request = uvaio::create_task(handle_request(saving), "request");
  co_await uvaio::sleep(5ms);
  request.cancel("client went away");
  try {
    co_await request;
  } catch (const uvaio::CancelledError& e) {
    note(*log, "shield: request cancelled (" + e.message() + "), save done: " + std::to_string(saving.done()));
  }
  co_await saving;
}
// [end]

uvaio::Async<void> main_coroutine(std::shared_ptr<Log> log) {
  co_await gather_results(log);
  co_await gather_failure(log);
  co_await gather_every_outcome(log);
  co_await first_mirror(log);
  co_await in_finishing_order(log);
  co_await cancel_around_a_save(log);
}

int main() {
  auto log = std::make_shared<Log>();
  uvaio::run(main_coroutine(log));
  const Log expected = {
      "gather: user, orders",
      "gather: page3, page2, page1",
      "slow: cancelled",
      "gather: flaky is down; report done: 0",
      "gather: report finished anyway",
      "settled: inventory",
      "settled: pricing is down",
      "wait: mirror-us answered first, 2 pending",
      "wait: 2 still pending after 5 ms",
      "mirror-eu: cancelled",
      "mirror-ap: cancelled",
      "as_completed: cache",
      "as_completed: disk",
      "as_completed: dns",
      "shield: request cancelled (client went away), save done: 0",
      "shield: saved",
  };
  if (*log != expected) {
    std::fprintf(stderr, "combinators: unexpected behaviour\n");
    return 1;
  }
  return 0;
}
