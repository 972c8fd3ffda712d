#include <doctest/doctest.h>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "support.hpp"

using namespace std::chrono_literals;

using test_support::TempDir;

TEST_SUITE_BEGIN("subprocess");

namespace {

using uvaio::Process;
using uvaio::ProcessOptions;
using uvaio::Stdio;

// The state letter of /proc/<pid>/stat ('S' sleeping, 'Z' zombie ...), or
// nullopt once the process is gone (reaped).
std::optional<char> proc_state(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return std::nullopt;
  std::string line;
  std::getline(stat, line);
  const auto paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 >= line.size()) return std::nullopt;
  return line[paren + 2];
}

// Lets the loop run until the child `pid` was reaped (gone from /proc), for at
// most ~10 s, so a child that is never reaped fails the CHECK that follows
// instead of hanging the test.
uvaio::Async<void> until_reaped(int pid) {
  for (int i = 0; i < 10000 && proc_state(pid).has_value(); ++i) co_await uvaio::sleep(1ms);
}

uvaio::Async<int> exit_code_of(std::string program, std::vector<std::string> args, ProcessOptions options = {}) {
  Process child = co_await uvaio::create_subprocess_exec(std::move(program), std::move(args), std::move(options));
  co_return co_await child.wait();
}

TEST_CASE("wait gives the child's exit code, and returncode reports it afterwards") {
  auto body = []() -> uvaio::Async<std::vector<int>> {
    Process ok = co_await uvaio::create_subprocess_exec("true");
    auto start_three = uvaio::create_subprocess_exec("sh", {"-c", "exit 3"});
    Process three = co_await start_three;
    std::vector<int> seen;
    seen.push_back(ok.returncode().has_value() ? 1 : 0);
    seen.push_back(ok.pid() > 0 && three.pid() > 0 && ok.pid() != three.pid() ? 1 : 0);
    const int first = co_await ok.wait();
    seen.push_back(first);
    const int second = co_await three.wait();
    seen.push_back(second);
    seen.push_back(ok.returncode().value_or(-1000));
    seen.push_back(three.returncode().value_or(-1000));
    const int again = co_await three.wait();
    seen.push_back(again);
    co_return seen;
  };
  CHECK(uvaio::run(body()) == std::vector<int>{0, 1, 0, 3, 0, 3, 3});
}

TEST_CASE("a child killed by a signal has the negated signal number as returncode") {
  auto body = []() -> uvaio::Async<std::vector<int>> {
    auto start_killed = uvaio::create_subprocess_exec("sleep", {"60"});
    Process killed = co_await start_killed;
    auto start_terminated = uvaio::create_subprocess_exec("sleep", {"60"});
    Process terminated = co_await start_terminated;
    auto start_hung_up = uvaio::create_subprocess_exec("sleep", {"60"});
    Process hung_up = co_await start_hung_up;
    killed.kill();
    terminated.terminate();
    hung_up.send_signal(SIGHUP);
    std::vector<int> codes;
    codes.push_back(co_await killed.wait());
    codes.push_back(co_await terminated.wait());
    codes.push_back(co_await hung_up.wait());
    co_return codes;
  };
  CHECK(uvaio::run(body()) == std::vector<int>{-SIGKILL, -SIGTERM, -SIGHUP});
}

TEST_CASE("signalling a child that has exited does nothing") {
  auto body = []() -> uvaio::Async<std::optional<int>> {
    auto start_child = uvaio::create_subprocess_exec("sh", {"-c", "exit 7"});
    Process child = co_await start_child;
    co_await child.wait();
    child.kill();
    child.terminate();
    child.send_signal(SIGUSR1);
    co_return child.returncode();
  };
  CHECK(uvaio::run(body()) == std::optional<int>(7));
}

TEST_CASE("an invalid signal number is a UvError naming the signal and the pid") {
  auto body = []() -> uvaio::Async<std::string> {
    auto start_child = uvaio::create_subprocess_exec("sleep", {"60"});
    Process child = co_await start_child;
    std::string message;
    try {
      child.send_signal(12345);
    } catch (const uvaio::UvError& e) {
      message = e.what();
      message += e.code() == UV_EINVAL ? " [EINVAL]" : " [other code]";
    }
    const std::string expected = "send signal 12345 to pid " + std::to_string(child.pid()) +
                                 ": EINVAL (invalid argument) [EINVAL]";
    child.kill();
    co_await child.wait();
    co_return message == expected ? std::string("as expected") : message;
  };
  CHECK(uvaio::run(body()) == "as expected");
}

TEST_CASE("a program that does not exist is a FileNotFoundError naming it") {
  CHECK_THROWS_WITH_AS(uvaio::run(exit_code_of("no-such-prog", {})), "spawn 'no-such-prog': ENOENT (no such file or directory)",
                       uvaio::FileNotFoundError);
}

TEST_CASE("a file that is not executable is a PermissionError naming it") {
  TempDir dir;
  const std::string path = dir.path() + "/not-executable";
  { std::ofstream(path) << "#!/bin/sh\n"; }
  CHECK_THROWS_WITH_AS(uvaio::run(exit_code_of(path, {})), ("spawn '" + path + "': EACCES (permission denied)").c_str(),
                       uvaio::PermissionError);
  ::unlink(path.c_str());
}

TEST_CASE("a working directory that does not exist is a FileNotFoundError naming it") {
  CHECK_THROWS_WITH_AS(uvaio::run(exit_code_of("true", {}, {.cwd = "/nonexistent-uvaio-dir"})),
                       "spawn 'true' in '/nonexistent-uvaio-dir': ENOENT (no such file or directory)",
                       uvaio::FileNotFoundError);
}

TEST_CASE("with env given, the program is looked up in env's PATH, not ours") {
  ProcessOptions options{.env = std::vector<std::string>{"PATH=/nonexistent-uvaio-dir"}};
  CHECK_THROWS_WITH_AS(uvaio::run(exit_code_of("true", {}, options)),
                       "spawn 'true': ENOENT (no such file or directory)", uvaio::FileNotFoundError);
}

TEST_CASE("an empty program name or a NUL byte in an argument is a ValueError") {
  CHECK_THROWS_WITH_AS(uvaio::run(exit_code_of("", {})), "create_subprocess_exec: the program name is empty", uvaio::ValueError);
  CHECK_THROWS_WITH_AS(uvaio::run(exit_code_of("echo", {std::string("a\0b", 3)})), "create_subprocess_exec: an argument contains a NUL byte",
                       uvaio::ValueError);
  CHECK_THROWS_WITH_AS(uvaio::run(exit_code_of("true", {}, {.env = std::vector<std::string>{"NOEQUALS"}})), "create_subprocess_exec: environment entry 'NOEQUALS' is not NAME=value",
                       uvaio::ValueError);
}

TEST_CASE("cwd and env reach the child") {
  TempDir dir;
  // The child checks them itself; its exit code says which check failed.
  const std::string script = "test \"$(pwd)\" = '" + dir.path() + "' || exit 10; test \"$X\" = 'hello world' || exit 11; "
                             "test -z \"$HOME\" || exit 12; exit 0";
  ProcessOptions options{.cwd = dir.path(), .env = std::vector<std::string>{"X=hello world", "PATH=/usr/bin:/bin"}};
  CHECK(uvaio::run(exit_code_of("sh", {"-c", script}, options)) == 0);
}

TEST_CASE("Stdio::null gives the child EOF on stdin and /dev/null on stdout and stderr") {
  const std::string script =
      "test \"$(readlink /proc/$$/fd/1)\" = /dev/null || exit 10; "
      "test \"$(readlink /proc/$$/fd/2)\" = /dev/null || exit 11; "
      "if read line; then exit 12; fi; exit 0";
  ProcessOptions options{.stdin_mode = Stdio::null, .stdout_mode = Stdio::null, .stderr_mode = Stdio::null};
  CHECK(uvaio::run(exit_code_of("sh", {"-c", script}, options)) == 0);
}

TEST_CASE("two tasks waiting for one child both get its exit code") {
  auto waiter = [](Process child) -> uvaio::Async<int> { co_return co_await child.wait(); };
  auto body = [](decltype(waiter) make_waiter) -> uvaio::Async<std::pair<int, int>> {
    auto start_child = uvaio::create_subprocess_exec("sh", {"-c", "exit 5"});
    Process child = co_await start_child;
    auto a = uvaio::create_task(make_waiter(child));
    auto b = uvaio::create_task(make_waiter(child));
    const int first = co_await a;
    const int second = co_await b;
    co_return std::pair{first, second};
  };
  CHECK(uvaio::run(body(waiter)) == std::pair{5, 5});
}

TEST_CASE("cancelling a wait leaves the child running; a later wait sees it killed") {
  auto waiter = [](Process child) -> uvaio::Async<int> { co_return co_await child.wait(); };
  auto body = [](decltype(waiter) make_waiter) -> uvaio::Async<std::vector<std::string>> {
    auto start_child = uvaio::create_subprocess_exec("sleep", {"60"});
    Process child = co_await start_child;
    auto task = uvaio::create_task(make_waiter(child));
    auto other = uvaio::create_task(make_waiter(child));
    co_await test_support::yield_times(2);
    task.cancel("stop waiting");
    co_await test_support::settle(task);
    std::vector<std::string> seen;
    seen.push_back(test_support::cancelled_message([&] { task.result(); }));
    seen.push_back(other.done() ? "other done" : "other waiting");
    // Still running: not exited as far as we know, and not a zombie.
    seen.push_back(child.returncode() ? "exited" : "running");
    const auto state = proc_state(child.pid());
    seen.push_back(state && *state != 'Z' ? "alive" : "gone");
    child.kill();
    const int code = co_await child.wait();
    seen.push_back(std::to_string(code));
    const int others = co_await other;
    seen.push_back(std::to_string(others));
    co_return seen;
  };
  CHECK(uvaio::run(body(waiter)) ==
        std::vector<std::string>{"stop waiting", "other waiting", "running", "alive", "-9", "-9"});
}

TEST_CASE("dropping the Process of a running child neither kills it nor leaves a zombie") {
  auto body = []() -> uvaio::Async<std::vector<std::string>> {
    int pid = 0;
    {
      auto start_child = uvaio::create_subprocess_exec("sleep", {"60"});
      Process child = co_await start_child;
      pid = child.pid();
    }
    std::vector<std::string> seen;
    co_await test_support::yield_times(3);
    const auto state = proc_state(pid);
    seen.push_back(state && *state != 'Z' ? "still running" : "gone");
    ::kill(pid, SIGKILL);
    co_await until_reaped(pid);
    seen.push_back(proc_state(pid) ? "not reaped" : "reaped");
    errno = 0;
    const pid_t waited = ::waitpid(pid, nullptr, WNOHANG);
    seen.push_back(waited == -1 && errno == ECHILD ? "ECHILD" : "waitpid gave " + std::to_string(waited));
    co_return seen;
  };
  CHECK(uvaio::run(body()) == std::vector<std::string>{"still running", "reaped", "ECHILD"});
}

TEST_CASE("a default-constructed Process throws RuntimeError") {
  Process empty;
  CHECK_FALSE(empty);
  CHECK_THROWS_WITH_AS(empty.pid(), "Process: empty handle (default-constructed or moved from)", uvaio::RuntimeError);
  CHECK_THROWS_AS(empty.kill(), uvaio::RuntimeError);
  CHECK_THROWS_AS((void)empty.wait(), uvaio::RuntimeError);
}

TEST_CASE("closing the loop with a child running frees everything; the Process then says the loop is closed") {
  auto waiter = [](Process child) -> uvaio::Async<int> { co_return co_await child.wait(); };
  test_support::LogCapture log;
  Process child;
  {
    uvaio::Loop loop;
    child = loop.run_until_complete(uvaio::create_subprocess_exec("sleep", {"60"}));
    // A task still waiting when the loop closes is destroyed with it.
    auto task = loop.create_task(waiter(child));
    test_support::run_iterations(loop, 2);
    CHECK_FALSE(task.done());
    // Kill it first (as programs should), but close before the loop sees the exit.
    REQUIRE(::kill(child.pid(), SIGKILL) == 0);
    loop.close();
    CHECK(task.cancelled());
  }
  CHECK(log.count("Task was destroyed but it is pending!") == 1);
  CHECK_FALSE(child.returncode().has_value());
  CHECK_THROWS_WITH_AS(child.kill(), "Event loop is closed", uvaio::RuntimeError);
  auto after = [](Process c) -> uvaio::Async<int> { co_return co_await c.wait(); };
  CHECK_THROWS_WITH_AS(uvaio::run(after(child)), "Event loop is closed", uvaio::RuntimeError);
  // libuv stopped watching the child when the loop closed: nobody reaped it,
  // so we do (it is dead: SIGKILL).
  int status = 0;
  CHECK(::waitpid(child.pid(), &status, 0) == child.pid());
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
}

// --- pipes -----------------------------------------------------------------------

using Output = std::pair<std::string, std::string>;

uvaio::Async<std::pair<Output, int>> communicate_with(std::string program, std::vector<std::string> args,
                                                     ProcessOptions options, std::string input = {}) {
  auto start = uvaio::create_subprocess_exec(std::move(program), std::move(args), std::move(options));
  Process child = co_await start;
  auto talking = child.communicate(std::move(input));
  Output output = co_await talking;
  const int code = child.returncode().value_or(-1000);
  co_return std::pair{std::move(output), code};
}

const ProcessOptions all_pipes{.stdin_mode = Stdio::pipe, .stdout_mode = Stdio::pipe, .stderr_mode = Stdio::pipe};

std::string pattern(char first, std::size_t size) {
  std::string out(size, '\0');
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<char>(first + i % 26);
  return out;
}

std::uint64_t fnv1a(const std::string& data) {
  std::uint64_t hash = 14695981039346656037ull;
  for (const char c : data) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ull;
  }
  return hash;
}

TEST_CASE("communicate gives stdout and stderr separately; cwd and env reach the child") {
  TempDir dir;
  ProcessOptions options = all_pipes;
  options.cwd = dir.path();
  options.env = std::vector<std::string>{"X=hello world", "PATH=/usr/bin:/bin"};
  auto [output, code] = uvaio::run(communicate_with("sh", {"-c", "pwd; echo \"$X\"; echo oops >&2; exit 4"}, options));
  CHECK(output.first == dir.path() + "\nhello world\n");
  CHECK(output.second == "oops\n");
  CHECK(code == 4);
}

TEST_CASE("communicate with 10 MiB each way does not deadlock with a child that writes before it reads") {
  constexpr std::size_t size = 10 * 1024 * 1024;
  std::string input = pattern('0', size);
  const std::string summary = "stdin " + std::to_string(size) + " " + std::to_string(fnv1a(input)) + "\n";
  auto [output, code] =
      uvaio::run(communicate_with(UVAIO_SUBPROCESS_CHILD, {"flood", std::to_string(size)}, all_pipes, input));
  CHECK(code == 0);
  CHECK(output.first.size() == size + summary.size());
  CHECK(output.second.size() == size);
  // Whole-string comparisons, but doctest would print 10 MiB on failure.
  const bool stdout_exact = output.first == pattern('A', size) + summary;
  const bool stderr_exact = output.second == pattern('a', size);
  CHECK(stdout_exact);
  CHECK(stderr_exact);
}

TEST_CASE("communicate ignores a child that exits without reading its stdin") {
  auto [output, code] = uvaio::run(communicate_with("sh", {"-c", "echo early; exit 0"}, all_pipes,
                                                    std::string(10 * 1024 * 1024, 'x')));
  CHECK(output == Output{"early\n", ""});
  CHECK(code == 0);
}

TEST_CASE("Stdio::null stdin reads as EOF and communicate gives empty strings for streams that are not pipes") {
  ProcessOptions options{.stdin_mode = Stdio::null, .stdout_mode = Stdio::pipe, .stderr_mode = Stdio::null};
  auto [output, code] = uvaio::run(communicate_with("sh", {"-c", "cat; echo done; echo hidden >&2"}, options));
  CHECK(output == Output{"done\n", ""});
  CHECK(code == 0);
}

TEST_CASE("Stdio::to_stdout sends stderr into the stdout pipe, in the order written") {
  ProcessOptions options{.stdout_mode = Stdio::pipe, .stderr_mode = Stdio::to_stdout};
  auto [output, code] = uvaio::run(communicate_with("sh", {"-c", "echo one; echo two >&2; echo three"}, options));
  CHECK(output == Output{"one\ntwo\nthree\n", ""});
  CHECK(code == 0);
}

TEST_CASE("Stdio::to_stdout is refused for stdin and stdout") {
  ProcessOptions options{.stdout_mode = Stdio::to_stdout};
  CHECK_THROWS_WITH_AS(uvaio::run(exit_code_of("true", {}, options)),
                       "create_subprocess_exec: Stdio::to_stdout is only for stderr_mode", uvaio::ValueError);
}

TEST_CASE("communicate with input refuses a stdin that is not a pipe") {
  auto body = []() -> uvaio::Async<std::string> {
    Process child = co_await uvaio::create_subprocess_exec("true");
    std::string message;
    try {
      (void)child.communicate("data");
    } catch (const uvaio::ValueError& e) {
      message = e.what();
    }
    co_await child.wait();
    co_return message;
  };
  CHECK(uvaio::run(body()) == "communicate: input given but stdin is not Stdio::pipe");
}

TEST_CASE("the pipes are StreamWriter and StreamReader a program can talk through line by line") {
  auto body = []() -> uvaio::Async<std::vector<std::string>> {
    auto start = uvaio::create_subprocess_exec("cat", {}, all_pipes);
    Process child = co_await start;
    std::vector<std::string> seen;
    seen.push_back(child.stdin_stream() && child.stdout_stream() && child.stderr_stream() ? "pipes" : "missing");
    uvaio::StreamWriter in = child.stdin_stream();
    uvaio::StreamReader out = child.stdout_stream();
    in.write("first\n");
    std::string line = co_await out.readline();
    seen.push_back(line);
    in.write("second\n");
    co_await in.drain();
    line = co_await out.readline();
    seen.push_back(line);
    in.write_eof();
    std::string rest = co_await out.read();
    seen.push_back("rest '" + rest + "'");
    const int code = co_await child.wait();
    seen.push_back(std::to_string(code));
    co_return seen;
  };
  CHECK(uvaio::run(body()) == std::vector<std::string>{"pipes", "first\n", "second\n", "rest ''", "0"});
}

TEST_CASE("a stream that is not Stdio::pipe gives an empty handle") {
  auto body = []() -> uvaio::Async<int> {
    Process child = co_await uvaio::create_subprocess_exec("true");
    const int empty = (child.stdin_stream() ? 0 : 1) + (child.stdout_stream() ? 0 : 1) + (child.stderr_stream() ? 0 : 1);
    co_await child.wait();
    co_return empty;
  };
  CHECK(uvaio::run(body()) == 3);
}

TEST_CASE("dropping the Process closes its pipes: cat sees EOF, exits and is reaped") {
  auto body = []() -> uvaio::Async<std::vector<std::string>> {
    int pid = 0;
    {
      auto start = uvaio::create_subprocess_exec("cat", {}, all_pipes);
      Process child = co_await start;
      pid = child.pid();
    }
    co_await until_reaped(pid);
    std::vector<std::string> seen;
    seen.push_back(proc_state(pid) ? "not reaped" : "reaped");
    errno = 0;
    const pid_t waited = ::waitpid(pid, nullptr, WNOHANG);
    seen.push_back(waited == -1 && errno == ECHILD ? "ECHILD" : "waitpid gave " + std::to_string(waited));
    co_return seen;
  };
  CHECK(uvaio::run(body()) == std::vector<std::string>{"reaped", "ECHILD"});
}

TEST_CASE("a program that cannot start with pipes requested closes the pipes and names the program") {
  auto [error, loop_closed_cleanly] = [] {
    std::string what;
    uvaio::Loop loop;
    try {
      loop.run_until_complete(exit_code_of("no-such-prog", {}, all_pipes));
    } catch (const uvaio::FileNotFoundError& e) {
      what = e.what();
    }
    loop.close();
    return std::pair{what, loop.is_closed()};
  }();
  CHECK(error == "spawn 'no-such-prog': ENOENT (no such file or directory)");
  CHECK(loop_closed_cleanly);
}

TEST_CASE("cancelling communicate leaves the child running; killing it ends its wait") {
  auto talk = [](Process child) -> uvaio::Async<Output> { co_return co_await child.communicate("ignored"); };
  auto body = [](decltype(talk) make_talk) -> uvaio::Async<std::vector<std::string>> {
    auto start = uvaio::create_subprocess_exec("sleep", {"60"}, all_pipes);
    Process child = co_await start;
    auto task = uvaio::create_task(make_talk(child));
    co_await test_support::yield_times(3);
    task.cancel("enough");
    co_await test_support::settle(task, 50);
    std::vector<std::string> seen;
    seen.push_back(test_support::cancelled_message([&] { task.result(); }));
    const auto state = proc_state(child.pid());
    seen.push_back(state && *state != 'Z' ? "alive" : "gone");
    child.kill();
    const int code = co_await child.wait();
    seen.push_back(std::to_string(code));
    co_return seen;
  };
  CHECK(uvaio::run(body(talk)) == std::vector<std::string>{"enough", "alive", "-9"});
}

TEST_CASE("closing the loop while communicate runs with a child still running frees the pipes") {
  auto talk = [](Process child) -> uvaio::Async<Output> { co_return co_await child.communicate("some input"); };
  int pid = 0;
  {
    test_support::LogCapture log;
    uvaio::Loop loop;
    Process child = loop.run_until_complete(uvaio::create_subprocess_exec("sleep", {"60"}, all_pipes));
    pid = child.pid();
    auto task = loop.create_task(talk(child));
    test_support::run_iterations(loop, 3);
    CHECK_FALSE(task.done());
    REQUIRE(::kill(pid, SIGKILL) == 0);
    loop.close();
    CHECK(task.cancelled());
    CHECK_FALSE(child.returncode().has_value());
    // communicate's task and gather's two readers (the child never wrote); the
    // writer too if the pipe had not taken the input yet.
    const std::size_t destroyed = log.count("Task was destroyed but it is pending!");
    CHECK(destroyed >= 3);
    CHECK(destroyed <= 4);
  }
  int status = 0;
  CHECK(::waitpid(pid, &status, 0) == pid);
  CHECK(WTERMSIG(status) == SIGKILL);
}

}  // namespace

TEST_SUITE_END();
