#include <doctest/doctest.h>

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

using namespace std::chrono_literals;

TEST_SUITE_BEGIN("signal");

namespace {

// doctest installs its own SIGINT handler around each test case; these tests
// need the default action in place (that is when run() installs its handler)
// and put doctest's back afterwards.
class DefaultAction {
 public:
  explicit DefaultAction(int signum) : signum_(signum) {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(signum_, &dfl, &saved_);
  }
  ~DefaultAction() { ::sigaction(signum_, &saved_, nullptr); }
  DefaultAction(const DefaultAction&) = delete;
  DefaultAction& operator=(const DefaultAction&) = delete;

 private:
  int signum_;
  struct sigaction saved_ {};
};

bool has_default_action(int signum) {
  struct sigaction current {};
  ::sigaction(signum, nullptr, &current);
  return (current.sa_flags & SA_SIGINFO) == 0 && current.sa_handler == SIG_DFL;
}

// Reads one byte from fd within 20 s; 0 on timeout or EOF.
char read_byte(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 20000) != 1) return 0;
  char c = 0;
  return ::read(fd, &c, 1) == 1 ? c : 0;
}

uvaio::Async<void> ignore_cancellation(int fd) {
  (void)::write(fd, "r", 1);
  for (;;) {
    try {
      co_await uvaio::sleep(1h);
    } catch (const uvaio::CancelledError&) {
      (void)::write(fd, "c", 1);
    }
  }
}

// First in the file, so that the process has no other thread yet when it forks.
TEST_CASE("the second SIGINT ends the process even when the main task ignores the first") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(fds[0]);
    ::signal(SIGINT, SIG_DFL);
    uvaio::run(ignore_cancellation(fds[1]));
    ::_exit(3);  // not reached: the second SIGINT kills the child
  }
  ::close(fds[1]);
  CHECK(read_byte(fds[0]) == 'r');
  ::kill(child, SIGINT);
  CHECK(read_byte(fds[0]) == 'c');  // the first one cancelled the main task
  ::kill(child, SIGINT);
  int status = 0;
  // Bounded: if the child survived, it is killed so that the test ends.
  for (int i = 0; i < 2000 && ::waitpid(child, &status, WNOHANG) == 0; ++i) std::this_thread::sleep_for(10ms);
  if (::waitpid(child, &status, WNOHANG) == 0) {
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
    FAIL("the child survived the second SIGINT");
  }
  ::close(fds[0]);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGINT);
}

uvaio::Async<void> interrupted_main(std::vector<std::string>* events) {
  struct Unwound {
    std::vector<std::string>* events;
    ~Unwound() { events->push_back("main unwound"); }
  } unwound{events};
  std::raise(SIGINT);
  try {
    co_await uvaio::sleep(30s);
  } catch (const uvaio::CancelledError&) {
    events->push_back("cancelled");
    throw;
  }
}

TEST_CASE("a SIGINT during run() cancels the main task and run() throws KeyboardInterrupt") {
  DefaultAction dfl(SIGINT);
  std::vector<std::string> events;
  try {
    uvaio::run(interrupted_main(&events));
    FAIL("run() returned");
  } catch (const uvaio::KeyboardInterrupt& e) {
    CHECK(std::string(e.what()) == "KeyboardInterrupt");
  }
  CHECK(events == std::vector<std::string>{"cancelled", "main unwound"});
  CHECK(has_default_action(SIGINT));
}

TEST_CASE("KeyboardInterrupt is not a std::exception") {
  DefaultAction dfl(SIGINT);
  std::vector<std::string> events;
  bool caught_as_std = false;
  bool caught_by_name = false;
  try {
    try {
      uvaio::run(interrupted_main(&events));
    } catch (const std::exception&) {
      caught_as_std = true;
    }
  } catch (const uvaio::KeyboardInterrupt&) {
    caught_by_name = true;
  }
  CHECK_FALSE(caught_as_std);
  CHECK(caught_by_name);
}

uvaio::Async<int> survives_interrupt() {
  std::raise(SIGINT);
  try {
    co_await uvaio::sleep(30s);
  } catch (const uvaio::CancelledError&) {
    co_return 7;  // asyncio too lets a main task that handles the cancellation return
  }
  co_return 0;
}

TEST_CASE("a main task that handles the SIGINT cancellation returns its value") {
  DefaultAction dfl(SIGINT);
  CHECK(uvaio::run(survives_interrupt()) == 7);
  CHECK(has_default_action(SIGINT));
}

uvaio::Async<void> cancelled_twice() {
  uvaio::TaskRef self = uvaio::current_task();
  self.cancel("someone else");
  std::raise(SIGINT);
  co_await uvaio::sleep(30s);
}

TEST_CASE("a main task cancelled by someone else too ends in CancelledError, not KeyboardInterrupt") {
  DefaultAction dfl(SIGINT);
  CHECK_THROWS_AS(uvaio::run(cancelled_twice()), uvaio::CancelledError);
  CHECK(has_default_action(SIGINT));
}

uvaio::Async<int> no_interrupt() {
  co_await uvaio::sleep(1ms);
  co_return 1;
}

TEST_CASE("run() leaves SIGINT alone when it does not have its default action") {
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  struct sigaction saved {};
  ::sigaction(SIGINT, &ignore, &saved);
  auto main = []() -> uvaio::Async<int> {
    std::raise(SIGINT);  // ignored: nothing is cancelled
    co_await uvaio::sleep(5ms);
    co_return 2;
  };
  CHECK(uvaio::run(main()) == 2);
  struct sigaction after {};
  ::sigaction(SIGINT, nullptr, &after);
  CHECK((after.sa_handler == SIG_IGN));
  ::sigaction(SIGINT, &saved, nullptr);
}

TEST_CASE("run() restores SIGINT's default action when no SIGINT came") {
  DefaultAction dfl(SIGINT);
  CHECK(uvaio::run(no_interrupt()) == 1);
  CHECK(has_default_action(SIGINT));
}

TEST_CASE("run() called off the main thread does not touch SIGINT") {
  DefaultAction dfl(SIGINT);
  bool saw_handler = true;
  std::thread worker([&saw_handler] {
    auto main = []() -> uvaio::Async<bool> {
      co_return has_default_action(SIGINT);
    };
    saw_handler = !uvaio::run(main());
  });
  worker.join();
  CHECK_FALSE(saw_handler);
}

// --- add_signal_handler ------------------------------------------------------

uvaio::Async<std::vector<std::string>> count_signals() {
  std::vector<std::string> events;
  uvaio::Loop& loop = uvaio::get_running_loop();
  const auto loop_thread = std::this_thread::get_id();
  loop.add_signal_handler(SIGUSR1, [&events, loop_thread] {
    events.push_back(std::this_thread::get_id() == loop_thread ? "usr1 on loop" : "usr1 elsewhere");
  });
  std::raise(SIGUSR1);
  events.push_back("raised");  // the handler runs later, from the ready queue
  while (events.size() < 2) co_await uvaio::sleep(1ms);
  // A second registration replaces the first.
  loop.add_signal_handler(SIGUSR1, [&events] { events.push_back("replaced"); });
  std::thread other([] { ::kill(::getpid(), SIGUSR1); });
  other.join();
  while (events.size() < 3) co_await uvaio::sleep(1ms);
  CHECK(loop.remove_signal_handler(SIGUSR1));
  CHECK_FALSE(loop.remove_signal_handler(SIGUSR1));
  co_return events;
}

TEST_CASE("a signal handler runs on the loop thread after the signal, and can be replaced and removed") {
  DefaultAction dfl(SIGUSR1);
  CHECK(uvaio::run(count_signals()) == std::vector<std::string>{"raised", "usr1 on loop", "replaced"});
  CHECK(has_default_action(SIGUSR1));
}

TEST_CASE("add_signal_handler refuses bad signal numbers and uncatchable signals") {
  uvaio::Loop loop;
  CHECK_THROWS_WITH_AS(loop.add_signal_handler(0, [] {}), "invalid signal number 0", uvaio::ValueError);
  CHECK_THROWS_WITH_AS(loop.add_signal_handler(NSIG, [] {}), ("invalid signal number " + std::to_string(NSIG)).c_str(),
                       uvaio::ValueError);
  CHECK_THROWS_WITH_AS(loop.add_signal_handler(SIGKILL, [] {}), "sig 9 cannot be caught", uvaio::RuntimeError);
  CHECK_THROWS_WITH_AS(loop.add_signal_handler(SIGSTOP, [] {}), ("sig " + std::to_string(SIGSTOP) + " cannot be caught").c_str(),
                       uvaio::RuntimeError);
  CHECK_FALSE(loop.remove_signal_handler(SIGKILL));
  loop.close();
  CHECK_THROWS_WITH_AS(loop.add_signal_handler(SIGUSR2, [] {}), "Event loop is closed", uvaio::RuntimeError);
}

TEST_CASE("an exception from a signal handler goes to the exception handler") {
  DefaultAction dfl(SIGUSR2);
  uvaio::Loop loop;
  std::vector<std::string> reports;
  loop.set_exception_handler([&reports](uvaio::Loop&, const uvaio::ExceptionContext& context) {
    try {
      std::rethrow_exception(context.exception);
    } catch (const std::exception& e) {
      reports.push_back(e.what());
    }
  });
  loop.add_signal_handler(SIGUSR2, [] { throw std::runtime_error("handler failed"); });
  // Until the handler has run, however long the signal takes to come round
  // (bounded, so that a lost signal fails the CHECK below instead of hanging).
  auto main = [](const std::vector<std::string>* reports) -> uvaio::Async<void> {
    std::raise(SIGUSR2);
    for (int i = 0; i < 20000 && reports->empty(); ++i) co_await uvaio::sleep(1ms);
  };
  loop.run_until_complete(main(&reports));
  CHECK(reports == std::vector<std::string>{"handler failed"});
  loop.close();
  CHECK(has_default_action(SIGUSR2));
}

TEST_CASE("closing a loop with signal handlers installed frees them and restores the default action") {
  DefaultAction dfl(SIGUSR1);
  auto loop = std::make_unique<uvaio::Loop>();
  loop->add_signal_handler(SIGUSR1, [] {});
  loop->add_signal_handler(SIGUSR2, [] {});
  CHECK_FALSE(has_default_action(SIGUSR1));
  loop->close();
  CHECK(has_default_action(SIGUSR1));
  CHECK(has_default_action(SIGUSR2));
  CHECK_FALSE(loop->remove_signal_handler(SIGUSR1));
  loop.reset();
}

}  // namespace

TEST_SUITE_END();
