#include "uvaio/subprocess.hpp"

#include <csignal>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include "io.hpp"
#include "stream.hpp"
#include "uvaio/gather.hpp"
#include "uvaio/loop.hpp"

namespace uvaio {
namespace detail {

// The uv_process_t and what the exit callback learns, shared by the Process
// handles. Lifetime: from uv_spawn until the handle's close callback the state
// holds a reference to itself (self_), so the handle outlives every callback
// libuv may make, whoever drops their Process. The handle is closed as soon as
// the exit callback ran (the child is reaped by then), or by Loop::close()
// (close_for_loop: libuv then stops watching the child). While the handle is
// open the state is registered with its loop and loop_ is valid; afterwards
// loop_ is not used again.
class ProcessState final : public IoResource {
 public:
  explicit ProcessState(LoopImpl& loop) noexcept : loop_(&loop) { handle_.data = this; }
  ~ProcessState() override = default;

  // Starts the child; on failure the handle (which uv_spawn initialises even
  // then) is closed and the error thrown, naming the program.
  static void spawn(std::shared_ptr<ProcessState> self, const std::string& program, uv_process_options_t& options,
                    const std::string& cwd_note) {
    ProcessState& state = *self;
    state.loop_->register_io(state);
    state.open_ = true;
    state.self_ = std::move(self);
    options.exit_cb = &on_exit;
    const int rc = uv_spawn(&state.loop_->uv_, &state.handle_, &options);
    if (rc < 0) {
      state.close_handle();
      throw_uv_error(rc, "spawn '" + program + "'" + cwd_note);
    }
    state.pid_ = state.handle_.pid;
  }

  Future<int> add_exit_waiter() {
    if (loop_closed_ || !open_) throw RuntimeError("Event loop is closed");
    check_usable(loop_, "Process.wait");
    // Waits that were cancelled leave a done future behind: drop those, so
    // that repeated cancelled waits on a long-lived child do not pile up.
    std::erase_if(exit_waiters_, [](const Future<int>& f) { return f.done(); });
    Future<int> waiter = owner_of(*loop_).create_future<int>();
    exit_waiters_.push_back(waiter);
    return waiter;
  }

  void send_signal(int signal) {
    if (returncode_) return;
    if (loop_closed_ || !open_) throw RuntimeError("Event loop is closed");
    check_usable(loop_, "Process.send_signal");
    // Until the exit callback has run the child is not reaped (at worst a
    // zombie), so its pid cannot have been reused by another process.
    const int rc = uv_process_kill(&handle_, signal);
    if (rc < 0) throw_uv_error(rc, "send signal " + std::to_string(signal) + " to pid " + std::to_string(pid_));
  }

  void close_for_loop() noexcept override {
    loop_closed_ = true;
    exit_waiters_.clear();
    close_handle();
  }

  int pid_ = 0;
  std::optional<int> returncode_;

 private:
  void close_handle() noexcept {
    if (!open_) return;
    open_ = false;
    loop_->unregister_io(*this);
    uv_close(reinterpret_cast<uv_handle_t*>(&handle_), &on_close);
  }

  static void on_exit(uv_process_t* handle, int64_t exit_status, int term_signal) {
    auto* self = static_cast<ProcessState*>(handle->data);
    // As Python: -N for a child killed by signal N.
    self->returncode_ = term_signal != 0 ? -term_signal : static_cast<int>(exit_status);
    // Settling only schedules the waiting tasks (through the ready queue);
    // none runs here. While the loop closes nobody will run them at all.
    if (!self->loop_->closing()) {
      for (const Future<int>& waiter : self->exit_waiters_) {
        if (waiter.done()) continue;  // that wait was cancelled
        try {
          waiter.set_result(*self->returncode_);
        } catch (...) {
          // Only InvalidStateError is possible, and done() was checked.
        }
      }
    }
    self->exit_waiters_.clear();
    self->close_handle();
  }

  static void on_close(uv_handle_t* handle) {
    auto* self = static_cast<ProcessState*>(handle->data);
    // Released last: this may free *self (no Process refers to it any more).
    std::shared_ptr<ProcessState> keep = std::move(self->self_);
  }

  uv_process_t handle_{};
  LoopImpl* loop_;
  std::shared_ptr<ProcessState> self_;
  std::vector<Future<int>> exit_waiters_;
  bool open_ = false;         // registered, and the handle not yet uv_close()d
  bool loop_closed_ = false;  // Loop::close() closed the handle before the exit
};

}  // namespace detail

namespace {

void check_no_nul(const std::string& text, const char* what) {
  if (text.find('\0') != std::string::npos) {
    throw ValueError(std::string("create_subprocess_exec: ") + what + " contains a NUL byte");
  }
}

void check_arguments(const std::string& program, const std::vector<std::string>& args, const ProcessOptions& options) {
  if (program.empty()) throw ValueError("create_subprocess_exec: the program name is empty");
  check_no_nul(program, "the program name");
  for (const std::string& arg : args) check_no_nul(arg, "an argument");
  if (options.cwd) check_no_nul(*options.cwd, "the working directory");
  if (options.env) {
    for (const std::string& entry : *options.env) {
      check_no_nul(entry, "an environment entry");
      if (entry.find('=') == std::string::npos) {
        throw ValueError("create_subprocess_exec: environment entry '" + entry + "' is not NAME=value");
      }
    }
  }
  if (options.stdin_mode == Stdio::to_stdout || options.stdout_mode == Stdio::to_stdout) {
    throw ValueError("create_subprocess_exec: Stdio::to_stdout is only for stderr_mode");
  }
}

// The pipes of one spawn. Until released, they are closed when this goes
// (the spawn failed): libuv opens them even when exec fails, and an open
// handle nobody holds would stay registered with the loop until it closes.
struct SpawnPipes {
  std::shared_ptr<detail::StreamState> pipes[3];
  // stderr merged into a stdout pipe: the child's end of our socketpair,
  // closed in the parent once uv_spawn has returned.
  int merged_child_fd = -1;
  bool spawned = false;

  SpawnPipes() = default;
  SpawnPipes(const SpawnPipes&) = delete;
  SpawnPipes& operator=(const SpawnPipes&) = delete;
  ~SpawnPipes() {
    close_child_end();
    if (spawned) return;
    for (auto& pipe : pipes) {
      if (pipe) pipe->close();
    }
  }
  void close_child_end() noexcept {
    if (merged_child_fd >= 0) ::close(merged_child_fd);
    merged_child_fd = -1;
  }
};

uv_stdio_container_t stdio_for(detail::LoopImpl& loop, Stdio mode, int fd, SpawnPipes& pipes) {
  uv_stdio_container_t container{};
  switch (mode) {
    case Stdio::inherit:
      container.flags = UV_INHERIT_FD;
      container.data.fd = fd;
      break;
    case Stdio::null:
      // libuv opens /dev/null for descriptors 0-2 marked UV_IGNORE.
      container.flags = UV_IGNORE;
      break;
    case Stdio::pipe:
      pipes.pipes[fd] = detail::make_pipe_stream(loop);
      // Flags are from the child's point of view: it reads its stdin.
      container.flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | (fd == 0 ? UV_READABLE_PIPE : UV_WRITABLE_PIPE));
      container.data.stream = reinterpret_cast<uv_stream_t*>(pipes.pipes[fd]->pipe());
      break;
    case Stdio::to_stdout:
      break;  // set up by merge_stderr
  }
  return container;
}

// Stdio::to_stdout: the child's fd 2 is a duplicate of its fd 1. With a stdout
// pipe that needs the child's end of the pipe before uv_spawn, which
// UV_CREATE_PIPE does not give: make the socketpair here (as libuv would:
// close-on-exec, our end non-blocking), open our end in the stdout pipe, and
// pass the other end as both fd 1 and fd 2.
void merge_stderr(Stdio stdout_mode, uv_stdio_container_t stdio[3], SpawnPipes& pipes) {
  switch (stdout_mode) {
    case Stdio::inherit:
      stdio[2].flags = UV_INHERIT_FD;
      stdio[2].data.fd = 1;
      return;
    case Stdio::null:
    case Stdio::to_stdout:
      stdio[2].flags = UV_IGNORE;
      return;
    case Stdio::pipe:
      break;
  }
  uv_os_sock_t fds[2];
  int rc = uv_socketpair(SOCK_STREAM, 0, fds, UV_NONBLOCK_PIPE, 0);
  if (rc < 0) throw_uv_error(rc, "create_subprocess_exec: socketpair for stdout");
  pipes.merged_child_fd = fds[1];
  rc = uv_pipe_open(pipes.pipes[1]->pipe(), fds[0]);
  if (rc < 0) {
    ::close(fds[0]);
    throw_uv_error(rc, "create_subprocess_exec: uv_pipe_open for stdout");
  }
  for (int fd : {1, 2}) {
    stdio[fd].flags = UV_INHERIT_FD;
    stdio[fd].data.fd = fds[1];
  }
}

Process spawn(const std::string& program, const std::vector<std::string>& args, const ProcessOptions& options) {
  detail::LoopImpl& loop = detail::io_loop("create_subprocess_exec");
  check_arguments(program, args, options);

  // libuv is done with all of these when uv_spawn returns (the child execs
  // from the copies fork made), so they may be locals.
  std::vector<char*> argv;
  argv.reserve(args.size() + 2);
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  if (options.env) {
    envp.reserve(options.env->size() + 1);
    for (const std::string& entry : *options.env) envp.push_back(const_cast<char*>(entry.c_str()));
    envp.push_back(nullptr);
  }
  SpawnPipes pipes;
  uv_stdio_container_t stdio[3] = {stdio_for(loop, options.stdin_mode, 0, pipes),
                                    stdio_for(loop, options.stdout_mode, 1, pipes),
                                    stdio_for(loop, options.stderr_mode, 2, pipes)};
  if (options.stderr_mode == Stdio::to_stdout) merge_stderr(options.stdout_mode, stdio, pipes);

  uv_process_options_t native{};
  native.file = program.c_str();
  native.args = argv.data();
  native.env = options.env ? envp.data() : nullptr;
  native.cwd = options.cwd ? options.cwd->c_str() : nullptr;
  native.stdio_count = 3;
  native.stdio = stdio;

  auto state = std::make_shared<detail::ProcessState>(loop);
  detail::ProcessState::spawn(state, program, native, options.cwd ? " in '" + *options.cwd + "'" : std::string());
  pipes.spawned = true;
  pipes.close_child_end();
  // The handles first: should start() throw, dropping them closes the pipes.
  Process process(std::move(state), StreamWriter(pipes.pipes[0]), StreamReader(pipes.pipes[1]),
                  StreamReader(pipes.pipes[2]));
  for (auto& pipe : pipes.pipes) {
    if (pipe) pipe->start();
  }
  return process;
}

}  // namespace

Process::Process(std::shared_ptr<detail::ProcessState> state, StreamWriter stdin_pipe, StreamReader stdout_pipe,
                 StreamReader stderr_pipe) noexcept
    : state_(std::move(state)),
      stdin_(std::move(stdin_pipe)),
      stdout_(std::move(stdout_pipe)),
      stderr_(std::move(stderr_pipe)) {}

detail::ProcessState& Process::state() const {
  if (state_ == nullptr) throw RuntimeError("Process: empty handle (default-constructed or moved from)");
  return *state_;
}

int Process::pid() const { return state().pid_; }

std::optional<int> Process::returncode() const { return state().returncode_; }

namespace {

Async<int> wait_for_exit(std::shared_ptr<detail::ProcessState> state) {
  if (!state->returncode_) {
    Future<int> waiter = state->add_exit_waiter();
    co_await waiter;
  }
  co_return *state->returncode_;
}

}  // namespace

Async<int> Process::wait() const {
  state();
  return wait_for_exit(state_);
}

namespace {

Async<std::string> read_to_eof(StreamReader reader) {
  if (!reader) co_return std::string();
  co_return co_await reader.read();
}

// asyncio's Process._feed_stdin: a child that exits (or closes its stdin)
// without reading everything is not an error of communicate().
Async<void> feed_stdin(StreamWriter writer, std::string input) {
  if (!writer) co_return;
  try {
    if (!input.empty()) {
      writer.write(input);
      input = std::string();
      co_await writer.drain();
    }
  } catch (const BrokenPipeError&) {
  } catch (const ConnectionResetError&) {
  }
  writer.close();
}

Async<std::pair<std::string, std::string>> communicate_with(std::shared_ptr<detail::ProcessState> state,
                                                            StreamWriter in, StreamReader out, StreamReader err,
                                                            std::string input) {
  auto feeding = feed_stdin(std::move(in), std::move(input));
  auto reading_out = read_to_eof(std::move(out));
  auto reading_err = read_to_eof(std::move(err));
  auto results = co_await gather(std::move(feeding), std::move(reading_out), std::move(reading_err));
  co_await wait_for_exit(std::move(state));
  co_return std::pair<std::string, std::string>(std::move(std::get<1>(results)), std::move(std::get<2>(results)));
}

}  // namespace

Async<std::pair<std::string, std::string>> Process::communicate(std::string input) const {
  state();
  if (!stdin_ && !input.empty()) throw ValueError("communicate: input given but stdin is not Stdio::pipe");
  return communicate_with(state_, stdin_, stdout_, stderr_, std::move(input));
}

StreamWriter Process::stdin_stream() const {
  state();
  return stdin_;
}
StreamReader Process::stdout_stream() const {
  state();
  return stdout_;
}
StreamReader Process::stderr_stream() const {
  state();
  return stderr_;
}

void Process::send_signal(int signal) const { state().send_signal(signal); }
void Process::terminate() const { send_signal(SIGTERM); }
void Process::kill() const { send_signal(SIGKILL); }

Async<Process> create_subprocess_exec(std::string program, std::vector<std::string> args, ProcessOptions options) {
  co_return spawn(program, args, options);
}

}  // namespace uvaio
