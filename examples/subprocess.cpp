// Child processes: communicate(), reading a child's output line by line,
// signals, and the error for a program that does not exist.

#include <csignal>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <uvaio/uvaio.hpp>

// [snippet:communicate]
uvaio::Async<void> shout() {
  uvaio::ProcessOptions options{.stdin_mode = uvaio::Stdio::pipe, .stdout_mode = uvaio::Stdio::pipe};
  // Name the Async before awaiting it: g++ 12 rejects a braced list
  // inside a co_await expression.
  auto starting = uvaio::create_subprocess_exec("tr", {"a-z", "A-Z"}, options);
  uvaio::Process tr = co_await starting;
  // Writes, reads and waits concurrently: no deadlock, however much flows.
  auto talking = tr.communicate("hello from a child process\n");
  auto [out, err] = co_await talking;
  std::printf("%s", out.c_str());
  std::printf("tr exited with %d\n", tr.returncode().value());
}
// [end]

// [snippet:lines]
uvaio::Async<void> numbered_lines() {
  uvaio::ProcessOptions options{.stdout_mode = uvaio::Stdio::pipe};
  auto starting = uvaio::create_subprocess_exec("printf", {"alpha\\nbeta\\ngamma\\n"}, options);
  uvaio::Process child = co_await starting;
  uvaio::StreamReader lines = child.stdout_stream();
  for (int n = 1;; ++n) {
    std::string line = co_await lines.readline();
    if (line.empty()) break;  // EOF
    std::printf("%d: %s", n, line.c_str());
  }
  int code = co_await child.wait();
  std::printf("printf exited with %d\n", code);
}
// [end]

// [snippet:signals]
uvaio::Async<void> stop_a_sleeper() {
  auto starting = uvaio::create_subprocess_exec("sleep", {"60"});
  uvaio::Process sleeper = co_await starting;
  sleeper.terminate();                  // SIGTERM
  int code = co_await sleeper.wait();   // -15: killed by signal 15, as in Python
  std::printf("sleep ended with %d\n", code);
  sleeper.kill();                       // it has exited: does nothing
}
// [end]

// [snippet:errors]
uvaio::Async<void> missing_program() {
  try {
    auto starting = uvaio::create_subprocess_exec("no-such-program");
    co_await starting;
  } catch (const uvaio::FileNotFoundError& e) {
    std::printf("%s\n", e.what());  // spawn 'no-such-program': ENOENT (no such file or directory)
  }
}
// [end]

uvaio::Async<int> main_coroutine() {
  co_await shout();
  co_await numbered_lines();
  co_await stop_a_sleeper();
  co_await missing_program();
  co_return 0;
}

int main() { return uvaio::run(main_coroutine()); }
