#pragma once

// TCP streams: asyncio's open_connection, start_server, StreamReader,
// StreamWriter and Server.

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "uvaio/async.hpp"
#include "uvaio/export.hpp"
#include "uvaio/net.hpp"

namespace uvaio {

namespace detail {
class StreamState;
class ServerState;

// The handle count behind StreamReader, StreamWriter and Server: the state's
// shared_ptr, plus a count of the user-facing handles (add_user/remove_user),
// so that the last handle gone closes the connection or the listeners even
// while a coroutine in the middle of a read still holds the state.
UVAIO_API void add_user(StreamState& state) noexcept;
UVAIO_API void remove_user(StreamState& state) noexcept;
UVAIO_API void add_user(ServerState& state) noexcept;
UVAIO_API void remove_user(ServerState& state) noexcept;

template <class State>
class UserRef {
 public:
  UserRef() noexcept = default;
  explicit UserRef(std::shared_ptr<State> state) noexcept : state_(std::move(state)) {
    if (state_) add_user(*state_);
  }
  UserRef(const UserRef& other) noexcept : state_(other.state_) {
    if (state_) add_user(*state_);
  }
  UserRef(UserRef&& other) noexcept = default;
  UserRef& operator=(const UserRef& other) noexcept {
    UserRef copy(other);
    std::swap(state_, copy.state_);
    return *this;
  }
  UserRef& operator=(UserRef&& other) noexcept {
    UserRef moved(std::move(other));
    std::swap(state_, moved.state_);
    return *this;
  }
  ~UserRef() {
    if (state_) remove_user(*state_);
  }

  operator const std::shared_ptr<State>&() const noexcept { return state_; }  // NOLINT(google-explicit-constructor)
  State* operator->() const noexcept { return state_.get(); }
  State& operator*() const noexcept { return *state_; }
  explicit operator bool() const noexcept { return static_cast<bool>(state_); }
  friend bool operator==(const UserRef& ref, std::nullptr_t) noexcept { return ref.state_ == nullptr; }

 private:
  std::shared_ptr<State> state_;
};
}  // namespace detail

// The reader's buffer limit and the writer's flow-control marks; asyncio's
// defaults (limit=2**16, transport high water 64 KiB, low water 16 KiB).
struct StreamLimits {
  // readline/readuntil give up past this many bytes without a separator, and
  // the connection stops reading (uv_read_stop) while more than twice this is
  // buffered and unread.
  std::size_t limit = 64 * 1024;
  // drain() waits while libuv's write queue holds more than write_high_water
  // bytes, until it is back to write_low_water or less.
  std::size_t write_high_water = 64 * 1024;
  std::size_t write_low_water = 16 * 1024;
};

struct ConnectOptions {
  StreamLimits limits{};
  // AF_UNSPEC: every address the host resolves to, in getaddrinfo's order.
  int family = AF_UNSPEC;
  // TCP_NODELAY, which asyncio sets on every TCP transport.
  bool no_delay = true;
};

struct ServerOptions {
  StreamLimits limits{};
  // AF_UNSPEC: every address the host resolves to ("" = all interfaces).
  int family = AF_UNSPEC;
  int backlog = 100;
  bool no_delay = true;
};

// asyncio.StreamReader: the receiving half of a connection. A copyable handle
// (copies share one buffer); use it on its loop's thread only. The connection
// is read as data arrives, up to 2 x limit bytes buffered (then reading pauses
// until a read takes it below the limit). One coroutine at a time may wait for
// data: a second gets RuntimeError. A failed connection's error (e.g.
// ConnectionResetError) is raised by every read once it happened. The
// connection closes when the last StreamReader and StreamWriter handle of it
// are gone; a pending read keeps the buffer, not the connection, alive.
class UVAIO_API StreamReader {
 public:
  StreamReader() noexcept = default;
  // Wraps a stream whose handle is (or is about to be) connected.
  explicit StreamReader(std::shared_ptr<detail::StreamState> state) noexcept : state_(std::move(state)) {}

  // n < 0: everything until EOF; n == 0: ""; otherwise up to n bytes, at least
  // one unless at EOF (then "").
  [[nodiscard]] Async<std::string> read(std::ptrdiff_t n = -1) const;
  // Exactly n bytes; IncompleteReadError (partial() = what came, consumed) at EOF.
  [[nodiscard]] Async<std::string> readexactly(std::size_t n) const;
  // Through the next "\n", or the last partial line at EOF. Past the limit:
  // ValueError, and the long line is discarded (asyncio's readline).
  [[nodiscard]] Async<std::string> readline() const;
  // Through the next separator (kept in the result). IncompleteReadError at
  // EOF (the buffer consumed); LimitOverrunError when the limit passes without
  // one (the buffer kept; consumed() says how far it was searched). ValueError
  // for an empty separator.
  [[nodiscard]] Async<std::string> readuntil(std::string separator = "\n") const;
  // EOF was received and the buffer is empty.
  bool at_eof() const;
  // The connection's error, or null.
  std::exception_ptr exception() const;
  std::size_t limit() const;

  explicit operator bool() const noexcept { return static_cast<bool>(state_); }
  const std::shared_ptr<detail::StreamState>& state() const noexcept { return state_; }

 private:
  detail::UserRef<detail::StreamState> state_;
};

// asyncio.StreamWriter: the sending half of a connection. A copyable handle;
// loop thread only. write() never blocks: what the socket does not take at
// once is queued in libuv (one uv_write with its own copy of the bytes), and
// drain() is the back-pressure point. After close() or write_eof(), write()
// throws RuntimeError; after the connection failed, it throws the failure
// (BrokenPipeError, ConnectionResetError, ...). close() lets queued bytes go
// out first. SIGPIPE is ignored process-wide once a stream exists (as Python
// does at start-up), so a write to a vanished peer is an error, not a kill.
class UVAIO_API StreamWriter {
 public:
  StreamWriter() noexcept = default;
  explicit StreamWriter(std::shared_ptr<detail::StreamState> state) noexcept : state_(std::move(state)) {}

  void write(std::string_view data) const;
  // Returns once libuv's write queue is at or below the low-water mark (at
  // once if it never went above the high-water mark); raises the connection's
  // error, or ConnectionResetError once the writer is closed.
  [[nodiscard]] Async<void> drain() const;
  // Half-close after the queued bytes (uv_shutdown); reading goes on.
  void write_eof() const;
  bool can_write_eof() const noexcept;
  void close() const noexcept;
  // Returns once the handle is closed (queued bytes sent or dropped).
  [[nodiscard]] Async<void> wait_closed() const;
  bool is_closing() const noexcept;
  // Bytes in libuv's write queue (transport.get_write_buffer_size()).
  std::size_t write_buffer_size() const noexcept;
  // ValueError unless high >= low.
  void set_write_buffer_limits(std::size_t high, std::size_t low) const;
  // The peer's and the local address; empty for pipes.
  SocketAddress peername() const;
  SocketAddress sockname() const;

  explicit operator bool() const noexcept { return static_cast<bool>(state_); }
  const std::shared_ptr<detail::StreamState>& state() const noexcept { return state_; }

 private:
  detail::UserRef<detail::StreamState> state_;
};

// Connects to host:port over TCP on the running loop: resolves host
// (getaddrinfo, SOCK_STREAM), then tries each address in order until one
// connects. Throws the last address's failure (ConnectionRefusedError
// "connect 127.0.0.1:1: ECONNREFUSED (connection refused)"), or GaiError.
// Cancelling the awaiting task closes the socket being connected.
UVAIO_API Async<std::pair<StreamReader, StreamWriter>> open_connection(std::string host, std::uint16_t port,
                                                                       ConnectOptions options = {});

// What start_server runs for each accepted connection, in its own task.
using ClientHandler = std::function<Async<void>(StreamReader, StreamWriter)>;

// asyncio.Server: the listening sockets of start_server and the tasks running
// its handler. A copyable handle; loop thread only. Destroying the last handle
// while serving closes the listeners (connections go on). An exception that
// escapes a handler goes to the loop's exception handler ("Unhandled exception
// in client_connected_cb") and that connection is closed.
class UVAIO_API Server {
 public:
  Server() noexcept = default;
  explicit Server(std::shared_ptr<detail::ServerState> state) noexcept : state_(std::move(state)) {}

  // Stops listening (idempotent). Accepted connections go on (asyncio 3.12).
  void close() const;
  // close() each accepted connection that is still open (queued bytes are sent).
  void close_clients() const;
  // Closes each accepted connection at once with a TCP reset; queued bytes are dropped.
  void abort_clients() const;
  // Returns once close() was called and every handler task has finished.
  [[nodiscard]] Async<void> wait_closed() const;
  // Serves until cancelled (or close()); then closes the server, waits for
  // wait_closed() and raises CancelledError. RuntimeError if already serving
  // forever or closed.
  [[nodiscard]] Async<void> serve_forever() const;
  bool is_serving() const noexcept;
  // The bound addresses (real ports, also for port 0); empty once closed.
  std::vector<SocketAddress> sockets() const;
  // The bound port (every listener shares it); 0 once closed.
  std::uint16_t port() const;

  explicit operator bool() const noexcept { return static_cast<bool>(state_); }

 private:
  detail::ServerState& checked() const;
  detail::UserRef<detail::ServerState> state_;
};

// Listens on host:port on the running loop and runs handler(reader, writer)
// for each connection. host "" listens on all interfaces; a name with several
// addresses (localhost: 127.0.0.1 and ::1) listens on each, all on one port;
// port 0 picks a free one (see Server::port()). Throws the bind/listen
// failure (e.g. UvError "bind 127.0.0.1:80: EACCES ...") or GaiError.
UVAIO_API Async<Server> start_server(ClientHandler handler, std::string host, std::uint16_t port,
                                     ServerOptions options = {});

}  // namespace uvaio
