// TaskGroup: create_task, then an explicit join(). The first child that fails
// cancels the others; join() throws an ExceptionGroup with every failure, and
// groups nest.

#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <stdexcept>
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

uvaio::Async<std::string> fetch(std::string name, uvaio::Duration delay) {
  co_await uvaio::sleep(delay);
  co_return name;
}

// [snippet:join]
uvaio::Async<void> load_page(std::shared_ptr<Log> log) {
  uvaio::TaskGroup group;
  uvaio::Task<std::string> header = group.create_task(fetch("header", 10ms));
  uvaio::Task<std::string> body = group.create_task(fetch("body", 5ms));
  co_await group.join();  // every child is done
  note(*log, "page: " + header.result() + " + " + body.result());
}
// [end]

// [snippet:children]
uvaio::Async<void> validate() {
  co_await uvaio::sleep(5ms);
  throw std::runtime_error("validate: bad header");
}

// Cancelled by the group; its clean-up fails, which is a failure too.
uvaio::Async<void> upload() {
  bool cancelled = false;
  try {
    co_await uvaio::sleep(10s);
  } catch (const uvaio::CancelledError&) {
    cancelled = true;
  }
  if (cancelled) throw std::runtime_error("upload: could not remove the partial file");
}

// Cancelled by the group; a cancellation is not a failure.
uvaio::Async<void> make_thumbnail(std::shared_ptr<Log> log) {
  try {
    co_await uvaio::sleep(10s);
  } catch (const uvaio::CancelledError&) {
    note(*log, "thumbnail: cancelled");
    throw;
  }
}
// [end]

// [snippet:failure]
uvaio::Async<void> publish(std::shared_ptr<Log> log) {
  uvaio::TaskGroup group;
  group.create_task(upload(), "upload");
  group.create_task(make_thumbnail(log), "thumbnail");
  group.create_task(validate(), "validate");

  co_await uvaio::sleep(20ms);
  // validate() failed 15 ms ago and its siblings are cancelled, but this
  // code goes on: it learns of the failure at join().
  note(*log, "publish: still running, " + std::to_string(group.running()) + " children running");
  try {
    group.create_task(fetch("too late", 1ms));
  } catch (const uvaio::RuntimeError& e) {
    note(*log, std::string("publish: ") + e.what());
  }
  co_await group.join();  // throws ExceptionGroup
}

uvaio::Async<void> notify_subscribers(std::shared_ptr<Log> log) {
  try {
    co_await uvaio::sleep(10s);
  } catch (const uvaio::CancelledError&) {
    note(*log, "notify: cancelled");
    throw;
  }
}

// Groups nest: publish()'s ExceptionGroup is one failure of this group.
uvaio::Async<void> release(std::shared_ptr<Log> log) {
  uvaio::TaskGroup group;
  group.create_task(notify_subscribers(log), "notify");
  group.create_task(publish(log), "publish");
  co_await group.join();
}

// Prints a group's failures as a tree.
void describe(Log& log, const std::exception_ptr& error, const std::string& indent) {
  try {
    std::rethrow_exception(error);
  } catch (const uvaio::ExceptionGroup& group) {
    note(log, indent + group.what());
    for (const std::exception_ptr& inner : group.exceptions()) describe(log, inner, indent + "  ");
  } catch (const std::exception& e) {
    note(log, indent + e.what());
  }
}

uvaio::Async<void> release_and_report(std::shared_ptr<Log> log) {
  try {
    co_await release(log);
  } catch (const uvaio::ExceptionGroup&) {
    describe(*log, std::current_exception(), "");
  }
}
// [end]

uvaio::Async<void> main_coroutine(std::shared_ptr<Log> log) {
  co_await load_page(log);
  co_await release_and_report(log);
}

int main() {
  auto log = std::make_shared<Log>();
  uvaio::run(main_coroutine(log));
  const Log expected = {
      "page: header + body",
      "thumbnail: cancelled",
      "publish: still running, 0 children running",
      "publish: TaskGroup is shutting down",
      "notify: cancelled",
      "unhandled errors in a TaskGroup (1 sub-exception)",
      "  unhandled errors in a TaskGroup (2 sub-exceptions)",
      "    validate: bad header",
      "    upload: could not remove the partial file",
  };
  if (*log != expected) {
    std::fprintf(stderr, "task_group: unexpected behaviour\n");
    return 1;
  }
  return 0;
}
