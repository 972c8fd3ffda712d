// start_server and Server (include/uvaio/streams.hpp).
//
// A ServerState owns the listening handles (one Listener per bound address,
// each an IoResource freed in its close callback) and counts the handler
// tasks. It is held by the Server handles (counted apart in users_: the last
// one closes the listeners) and by each handler task, so the handler
// (a std::function kept here) outlives every call of it.

#include <algorithm>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "log_internal.hpp"
#include "stream.hpp"
#include "uvaio/loop.hpp"
#include "uvaio/streams.hpp"
#include "uvaio/task.hpp"

namespace uvaio::detail {

class Listener;

class ServerState final : public std::enable_shared_from_this<ServerState> {
 public:
  ServerState(LoopImpl& loop, ClientHandler handler, ServerOptions options)
      : loop_(&loop), handler_(std::move(handler)), options_(options) {}
  ServerState(const ServerState&) = delete;
  ServerState& operator=(const ServerState&) = delete;
  ~ServerState() { close(); }

  // Binds every address on one port (the first one's, when port is 0).
  void listen(const std::vector<SocketAddress>& addresses);
  void close() noexcept;
  void close_for_loop() noexcept {
    close();
    loop_ = nullptr;
  }
  void accept(Listener& listener) noexcept;
  void close_clients(bool reset) noexcept;
  void handler_finished() noexcept {
    --active_;
    maybe_wake_closed();
  }
  bool fully_closed() const noexcept { return closed_ && active_ == 0; }
  Future<void> add_closed_waiter();
  void maybe_wake_closed() noexcept;

  void add_user() noexcept { ++users_; }
  void remove_user() noexcept {
    if (--users_ == 0) close();
  }

  LoopImpl* loop_;
  ClientHandler handler_;
  ServerOptions options_;
  std::vector<Listener*> listeners_;
  std::vector<SocketAddress> addresses_;
  std::vector<std::weak_ptr<StreamState>> clients_;
  std::vector<Future<void>> closed_waiters_;
  Future<void> serving_forever_;
  std::size_t active_ = 0;
  std::size_t users_ = 0;
  bool closed_ = false;

 private:
  void close_listeners() noexcept;
};

class Listener final : public IoResource {
 public:
  Listener(LoopImpl& loop, ServerState* server) : loop_(loop), server_(server) { tcp_.data = this; }

  // Throws UvError; the caller close()s the listener either way.
  void init() {
    const int rc = uv_tcp_init(&loop_.uv_, &tcp_);
    if (rc < 0) throw_uv_error(rc, "uv_tcp_init");
    open_ = true;
    loop_.register_io(*this);
    registered_ = true;
  }

  void close() noexcept {
    server_ = nullptr;
    if (registered_) {
      registered_ = false;
      loop_.unregister_io(*this);
    }
    if (open_) {
      open_ = false;
      uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &on_close);
    } else {
      delete this;
    }
  }
  void close_for_loop() noexcept override {
    if (server_ != nullptr) {
      server_->close_for_loop();  // closes this listener too
    } else {
      close();
    }
  }

  uv_tcp_t tcp_{};
  LoopImpl& loop_;
  ServerState* server_;

  static void on_connection(uv_stream_t* stream, int status) {
    auto* self = static_cast<Listener*>(stream->data);
    if (self->server_ == nullptr) return;
    if (status < 0) {
      // asyncio logs accept errors and goes on (EMFILE and the like).
      log_error(std::string("accept: ") + uv_err_name(status) + " (" + uv_strerror(status) + ")");
      return;
    }
    self->server_->accept(*self);
  }

 private:
  ~Listener() override = default;
  static void on_close(uv_handle_t* handle) { delete static_cast<Listener*>(handle->data); }

  bool open_ = false;
  bool registered_ = false;
};

namespace {

// Counts one handler task while its frame exists: a parameter of the
// coroutine, so it goes when the frame does, even when the loop destroys a
// task that never started.
class ActiveClient {
 public:
  explicit ActiveClient(std::shared_ptr<ServerState> server) noexcept : server_(std::move(server)) {
    ++server_->active_;
  }
  ActiveClient(ActiveClient&& other) noexcept = default;
  ActiveClient& operator=(ActiveClient&&) = delete;
  ~ActiveClient() {
    if (server_) server_->handler_finished();
  }
  ServerState& server() const noexcept { return *server_; }

 private:
  std::shared_ptr<ServerState> server_;
};

Async<void> run_client(ActiveClient client, StreamReader reader, StreamWriter writer) {
  std::exception_ptr error;
  try {
    Async<void> handler = client.server().handler_(reader, writer);
    co_await std::move(handler);
  } catch (const CancelledError&) {
    throw;
  } catch (...) {
    error = std::current_exception();
  }
  if (error) {
    // As asyncio's StreamReaderProtocol: report, and close the connection.
    writer.close();
    get_running_loop().call_exception_handler(
        ExceptionContext{"Unhandled exception in client_connected_cb", error, current_task().name(), {}});
  }
}

}  // namespace

void ServerState::accept(Listener& listener) noexcept {
  std::shared_ptr<StreamState> state;
  try {
    state = make_tcp_stream(*loop_, options_.limits);
  } catch (...) {
    log_error("accept: " + describe_exception(std::current_exception()));
    return;
  }
  const int rc = uv_accept(reinterpret_cast<uv_stream_t*>(&listener.tcp_), state->stream());
  if (rc < 0) {
    state->close();
    log_error(std::string("accept: ") + uv_err_name(rc) + " (" + uv_strerror(rc) + ")");
    return;
  }
  if (options_.no_delay) uv_tcp_nodelay(state->tcp(), 1);
  try {
    state->start();
    // Forget the connections that are gone, so the list stays as long as the
    // connections alive, not as all there ever were.
    if (clients_.size() >= 16 && clients_.size() == clients_.capacity()) {
      std::erase_if(clients_, [](const std::weak_ptr<StreamState>& c) {
        auto alive = c.lock();
        return !alive || alive->is_closing();
      });
    }
    clients_.push_back(state);
    Async<void> body = run_client(ActiveClient(shared_from_this()), StreamReader(state), StreamWriter(state));
    (void)make_task(*loop_, std::move(body), {}, SourceLocation{});
  } catch (...) {
    state->close();
    log_error("accept: " + describe_exception(std::current_exception()));
  }
}

void ServerState::close_listeners() noexcept {
  std::vector<Listener*> listeners;
  listeners.swap(listeners_);
  for (Listener* listener : listeners) listener->close();
}

void ServerState::close() noexcept {
  close_listeners();
  if (closed_) return;
  closed_ = true;
  addresses_.clear();
  // serve_forever() ends (asyncio's Server.close cancels its future).
  if (serving_forever_ && !serving_forever_.done()) serving_forever_.cancel();
  maybe_wake_closed();
}

void ServerState::close_clients(bool reset) noexcept {
  std::vector<std::weak_ptr<StreamState>> clients;
  clients.swap(clients_);
  for (auto& weak : clients) {
    if (auto client = weak.lock()) {
      if (reset) {
        client->abort();
      } else {
        client->close();
      }
    }
  }
}

Future<void> ServerState::add_closed_waiter() {
  if (loop_ == nullptr) throw RuntimeError("Event loop is closed");
  Future<void> waiter(adopt, new FutureState<void>(loop_));
  closed_waiters_.push_back(waiter);
  return waiter;
}

void ServerState::maybe_wake_closed() noexcept {
  if (!fully_closed()) return;
  std::vector<Future<void>> waiters;
  waiters.swap(closed_waiters_);
  for (auto& waiter : waiters) {
    if (!waiter.done()) waiter.set_result();
  }
}

void ServerState::listen(const std::vector<SocketAddress>& addresses) {
  std::uint16_t port = 0;
  for (SocketAddress address : addresses) {
    auto* listener = new Listener(*loop_, this);
    listeners_.push_back(listener);  // close() frees it from here on
    listener->init();
    if (port != 0) {
      // Every listener on the port the first one got.
      address = SocketAddress::parse(address.host(), port);
    }
    const unsigned flags = address.family() == AF_INET6 ? UV_TCP_IPV6ONLY : 0;
    // libuv reports EADDRINUSE from uv_listen rather than uv_tcp_bind.
    int rc = uv_tcp_bind(&listener->tcp_, address.native(), flags);
    if (rc < 0) throw_uv_error(rc, "bind " + address.to_string());
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener->tcp_), options_.backlog, &Listener::on_connection);
    if (rc < 0) throw_uv_error(rc, "listen " + address.to_string());
    sockaddr_storage bound{};
    int size = sizeof bound;
    rc = uv_tcp_getsockname(&listener->tcp_, reinterpret_cast<sockaddr*>(&bound), &size);
    if (rc < 0) throw_uv_error(rc, "getsockname " + address.to_string());
    addresses_.push_back(SocketAddress::from_native(reinterpret_cast<const sockaddr*>(&bound)));
    port = addresses_.back().port();
  }
}

void add_user(ServerState& state) noexcept { state.add_user(); }
void remove_user(ServerState& state) noexcept { state.remove_user(); }

}  // namespace uvaio::detail

namespace uvaio {

using detail::ServerState;


detail::ServerState& Server::checked() const {
  if (!state_) detail::throw_empty_handle("Server");
  return *state_;
}

void Server::close() const { checked().close(); }
void Server::close_clients() const { checked().close_clients(false); }
void Server::abort_clients() const { checked().close_clients(true); }
bool Server::is_serving() const noexcept { return state_ && !state_->closed_; }
std::vector<SocketAddress> Server::sockets() const { return checked().addresses_; }
std::uint16_t Server::port() const {
  const auto& addresses = checked().addresses_;
  return addresses.empty() ? 0 : addresses.front().port();
}

namespace {

Async<void> server_wait_closed(std::shared_ptr<ServerState> state) {
  while (!state->fully_closed()) {
    Future<void> waiter = state->add_closed_waiter();
    co_await waiter;
  }
}

Async<void> server_serve_forever(std::shared_ptr<ServerState> state) {
  if (state->serving_forever_ && !state->serving_forever_.done()) {
    throw RuntimeError("server is already being awaited on serve_forever()");
  }
  if (state->closed_) throw RuntimeError("server is closed");
  if (state->loop_ == nullptr) throw RuntimeError("Event loop is closed");
  state->serving_forever_ = Future<void>(detail::adopt, new detail::FutureState<void>(state->loop_));
  Future<void> serving = state->serving_forever_;
  std::exception_ptr cancelled;
  try {
    co_await serving;
  } catch (...) {
    cancelled = std::current_exception();
  }
  // asyncio: on cancellation, close the server and wait until it is closed,
  // then let the cancellation through.
  state->close();
  Async<void> closing = server_wait_closed(state);
  co_await std::move(closing);
  state->serving_forever_ = Future<void>();
  if (cancelled) std::rethrow_exception(cancelled);
}

}  // namespace

Async<void> Server::wait_closed() const {
  checked();
  return server_wait_closed(state_);
}

Async<void> Server::serve_forever() const {
  checked();
  return server_serve_forever(state_);
}

Async<Server> start_server(ClientHandler handler, std::string host, std::uint16_t port, ServerOptions options) {
  detail::LoopImpl& loop = detail::io_loop("start_server");
  if (!handler) throw ValueError("start_server: the handler is empty");
  Future<std::vector<AddrInfo>> lookup =
      getaddrinfo(host, std::to_string(port),
                  AddrInfoHints{.family = options.family, .socktype = SOCK_STREAM, .flags = AI_PASSIVE});
  const std::vector<AddrInfo> answers = co_await std::move(lookup);
  std::vector<SocketAddress> addresses;
  for (const AddrInfo& answer : answers) {
    if (std::find(addresses.begin(), addresses.end(), answer.address) == addresses.end()) {
      addresses.push_back(answer.address);
    }
  }
  // With port 0 and several addresses, the port the first one got may be
  // taken on another address: start again with a fresh port, a few times.
  const int attempts = port == 0 && addresses.size() > 1 ? 8 : 1;
  for (int attempt = 1;; ++attempt) {
    auto state = std::make_shared<ServerState>(loop, handler, options);
    try {
      state->listen(addresses);
      co_return Server(std::move(state));
    } catch (const UvError& e) {
      state->close();
      if (attempt >= attempts || e.code() != UV_EADDRINUSE) throw;
    }
  }
}

}  // namespace uvaio
