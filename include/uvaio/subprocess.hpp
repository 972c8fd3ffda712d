#pragma once

// Child processes (asyncio's create_subprocess_exec and Process) over uv_spawn.

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "uvaio/async.hpp"
#include "uvaio/export.hpp"
#include "uvaio/streams.hpp"

namespace uvaio {

namespace detail {
class ProcessState;
}

// Where one of the child's standard descriptors goes (asyncio's None, PIPE,
// DEVNULL, STDOUT).
enum class Stdio {
  inherit,    // the child shares ours
  pipe,       // a pipe to this process (Process::stdin_stream() ...)
  null,       // /dev/null: reading gives EOF, writes are discarded
  to_stdout,  // stderr only: wherever the child's stdout goes (its pipe too)
};

// How create_subprocess_exec starts the child.
struct ProcessOptions {
  Stdio stdin_mode = Stdio::inherit;
  Stdio stdout_mode = Stdio::inherit;
  Stdio stderr_mode = Stdio::inherit;
  // The child's working directory; ours when empty.
  std::optional<std::string> cwd = std::nullopt;
  // The child's whole environment, "NAME=value" each; ours when empty.
  std::optional<std::vector<std::string>> env = std::nullopt;
};

// A child process started by create_subprocess_exec (asyncio.subprocess.Process).
// A copyable handle: copies refer to the same child and the same pipes. Use it
// on its loop's thread; wait() and communicate() resume on that thread.
// Dropping every copy before the child exited neither kills it nor leaks: the
// library keeps watching the child, reaps it when it exits (no zombie) and then
// frees what it holds; the pipes close when the last Process copy and the last
// stream handle taken from it are gone (the child then sees EOF / EPIPE). The loop
// closing while the child runs stops the watching: the child keeps running and,
// once it exits, stays a zombie until this process exits; wait() then throws
// RuntimeError("Event loop is closed"). Kill and wait() for children first.
class UVAIO_API Process {
 public:
  Process() noexcept = default;
  Process(std::shared_ptr<detail::ProcessState> state, StreamWriter stdin_pipe, StreamReader stdout_pipe,
          StreamReader stderr_pipe) noexcept;

  // The child's process id; stays valid (and unused by others) until it was reaped.
  int pid() const;
  // The exit status once the child has exited (and the loop has seen it):
  // its exit code, or -N when signal N killed it (as Python). nullopt before.
  std::optional<int> returncode() const;
  // Waits for the child to exit and gives returncode(). Any number of tasks
  // may wait at once; cancelling a wait only stops that wait (the child runs
  // on). RuntimeError("Event loop is closed") if the loop closed first.
  Async<int> wait() const;

  // Writes `input` to the child's stdin and closes it, reads stdout and stderr
  // to EOF concurrently, waits for the exit, and gives (stdout, stderr): ""
  // for a stream that is not Stdio::pipe. Nothing blocks, so a child that
  // writes much before reading its stdin cannot deadlock it. A child that exits
  // without reading all its input is not an error (BrokenPipeError and
  // ConnectionResetError while writing are ignored, as asyncio does). Every
  // byte is held in memory. Cancelling it cancels the reading and writing, not
  // the child. ValueError for non-empty input when stdin is not Stdio::pipe.
  Async<std::pair<std::string, std::string>> communicate(std::string input = {}) const;

  // The parent's ends of the pipes: empty handles (operator bool false) unless
  // that descriptor was Stdio::pipe.
  StreamWriter stdin_stream() const;
  StreamReader stdout_stream() const;
  StreamReader stderr_stream() const;

  // Sends signal `signal` (uv_process_kill). A child that has already exited
  // (returncode() set) is left alone: the call does nothing (Popen's choice;
  // asyncio raises ProcessLookupError). A bad signal number is a UvError
  // (EINVAL); RuntimeError("Event loop is closed") after the loop closed.
  void send_signal(int signal) const;
  void terminate() const;  // SIGTERM
  void kill() const;       // SIGKILL

  explicit operator bool() const noexcept { return state_ != nullptr; }

 private:
  detail::ProcessState& state() const;
  std::shared_ptr<detail::ProcessState> state_;
  StreamWriter stdin_;
  StreamReader stdout_;
  StreamReader stderr_;
};

// Starts `program` (searched in PATH like execvp when it has no '/': the PATH
// of options.env when one is given, as the child's own) with
// argv[1..] = `args`, on the running loop. Failing to start it is the UvError
// subclass for the cause, naming the program: FileNotFoundError("spawn
// 'no-such-prog': ENOENT (no such file or directory)"), PermissionError for
// EACCES; a missing cwd names it too ("spawn 'ls' in '/nope': ENOENT ...").
// ValueError for an empty program, a NUL byte inside any string, or
// Stdio::to_stdout for stdin or stdout.
UVAIO_API Async<Process> create_subprocess_exec(std::string program, std::vector<std::string> args = {},
                                                ProcessOptions options = {});

}  // namespace uvaio
