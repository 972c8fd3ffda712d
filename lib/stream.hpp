#pragma once

// The core of StreamReader/StreamWriter, generic over uv_stream_t (a TCP
// connection or a pipe, e.g. a child's stdin/stdout).
//
// Ownership. A StreamState is held by std::shared_ptr: the user's readers and
// writers, coroutines in the middle of a read or drain, and -- while the
// handle is open -- the state itself (self_), released in the close callback,
// so the memory libuv writes into outlives every callback. The readers and
// writers are also counted apart (users_): when the last of them goes, the
// connection is closed, even if a read still holds the state.
//
// Waiting. A reader or drainer waits on a Future<void> the libuv callbacks
// settle (a wake-up, never an exception: the waiting coroutine looks at the
// state again when it resumes). Callbacks only settle those futures.

#include <cstddef>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <uv.h>

#include "io.hpp"
#include "uvaio/future.hpp"
#include "uvaio/net.hpp"
#include "uvaio/streams.hpp"

namespace uvaio::detail {

class StreamState;

// A TCP handle (uv_tcp_init done), not connected yet. UvError if init fails.
std::shared_ptr<StreamState> make_tcp_stream(LoopImpl& loop, StreamLimits limits = {});
// A pipe handle (uv_pipe_init, ipc=0), not connected yet: put pipe() into a
// uv_stdio_container_t with UV_CREATE_PIPE, then start() once uv_spawn
// succeeded (or close() if it failed).
std::shared_ptr<StreamState> make_pipe_stream(LoopImpl& loop, StreamLimits limits = {});

class StreamState final : public IoResource, public std::enable_shared_from_this<StreamState> {
 public:
  enum class Kind : unsigned char { tcp, pipe };

  // Use make_tcp_stream / make_pipe_stream: the handle must be initialised and
  // self_ set before anyone sees the state.
  StreamState(LoopImpl& loop, Kind kind, StreamLimits limits);
  ~StreamState() override;

  Kind kind() const noexcept { return kind_; }
  uv_stream_t* stream() noexcept { return &handle_.stream; }
  uv_tcp_t* tcp() noexcept { return &handle_.tcp; }
  uv_pipe_t* pipe() noexcept { return &handle_.pipe; }

  // The handle is connected: start reading (if it is readable at all), with
  // back-pressure. Names the peer in error messages ("127.0.0.1:80", "pipe").
  void start();
  // Stops reading, lets queued writes go out, then closes the handle. Readers
  // see EOF. Idempotent; safe after the loop closed.
  void close() noexcept;
  // Closes at once, dropping queued writes; a TCP connection is reset (RST).
  void abort() noexcept;
  void close_for_loop() noexcept override;

  // Connects a TCP stream; the future fails with the connect error.
  Future<void> connect(const SocketAddress& address);

  // --- the user handles (StreamReader / StreamWriter) ------------------------
  void add_user() noexcept { ++users_; }
  void remove_user() noexcept {
    if (--users_ == 0) close();
  }

  // --- reading ---------------------------------------------------------------
  // Throws the connection's error, if any.
  void check_error() const {
    if (error_) std::rethrow_exception(error_);
  }
  std::exception_ptr error() const noexcept { return error_; }
  bool eof() const noexcept { return eof_; }
  std::size_t buffered() const noexcept { return buffer_.size() - head_; }
  std::string_view buffer() const noexcept { return std::string_view(buffer_).substr(head_); }
  std::size_t limit() const noexcept { return limits_.limit; }
  // Removes n buffered bytes (returned by take) and resumes reading if the
  // buffer drained below the limit.
  std::string take(std::size_t n);
  void consume(std::size_t n) noexcept;
  // The one waiter for data; RuntimeError("<function>() called while another
  // coroutine is already waiting for incoming data").
  Future<void> begin_wait(const char* function);
  void end_wait() noexcept { waiter_ = Future<void>(); }

  // --- writing ---------------------------------------------------------------
  void write(std::string_view data);
  void write_eof();
  bool can_write_eof() const noexcept { return !closing_ && !eof_written_; }
  // Throws what drain() must: the error, or ConnectionResetError once closing.
  void check_drainable() const;
  bool writing_paused() const noexcept { return writing_paused_; }
  Future<void> add_drain_waiter();
  std::size_t write_queue_size() const noexcept;
  void set_write_limits(std::size_t high, std::size_t low);
  bool is_closing() const noexcept { return closing_; }
  bool is_closed() const noexcept { return closed_; }
  // Null once closed.
  Future<void> add_closed_waiter();

  SocketAddress peername() const noexcept { return peer_address_; }
  SocketAddress sockname() const noexcept { return local_address_; }

 private:
  friend std::shared_ptr<StreamState> make_tcp_stream(LoopImpl& loop, StreamLimits limits);
  friend std::shared_ptr<StreamState> make_pipe_stream(LoopImpl& loop, StreamLimits limits);

  struct WriteReq;
  struct ShutdownReq;

  static void on_alloc(uv_handle_t* handle, std::size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_shutdown(uv_shutdown_t* req, int status);
  static void on_close(uv_handle_t* handle);

  Future<void> new_future();
  void start_reading() noexcept;
  void stop_reading() noexcept;
  void wake_reader() noexcept;
  static void wake_all(std::vector<Future<void>>& waiters) noexcept;
  // A read/write/shutdown failed: remember the first error, wake everyone and
  // close at once (asyncio's _fatal_error).
  void fatal(int code, const char* operation) noexcept;
  void request_done() noexcept;
  void close_handle(bool reset) noexcept;
  void unregister() noexcept;
  void update_write_pause() noexcept;
  SocketAddress query_address(int (*query)(const uv_tcp_t*, sockaddr*, int*)) const noexcept;

  union Handle {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  };

  Handle handle_{};
  LoopImpl* loop_;
  Kind kind_;
  StreamLimits limits_;
  std::shared_ptr<StreamState> self_;
  std::size_t users_ = 0;
  bool registered_ = false;
  bool handle_open_ = false;  // initialised and not yet uv_close()d
  bool closing_ = false;      // close() / abort() / fatal() was called
  bool close_after_writes_ = false;
  bool closed_ = false;  // the close callback ran
  bool reading_ = false;
  bool read_paused_ = false;
  bool started_ = false;
  bool eof_ = false;
  bool eof_written_ = false;
  bool writing_paused_ = false;
  std::size_t pending_requests_ = 0;  // writes and shutdowns libuv holds
  std::exception_ptr error_;
  std::string peer_ = "stream";
  SocketAddress peer_address_;
  SocketAddress local_address_;

  std::string buffer_;
  std::size_t head_ = 0;
  std::unique_ptr<char[]> read_chunk_;

  Future<void> waiter_;
  std::vector<Future<void>> drain_waiters_;
  std::vector<Future<void>> closed_waiters_;
};

}  // namespace uvaio::detail
