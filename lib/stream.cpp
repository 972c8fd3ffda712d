#include "stream.hpp"

#include <csignal>
#include <cstring>
#include <mutex>
#include <new>
#include <utility>

#include "log_internal.hpp"

namespace uvaio::detail {

namespace {

// libuv reads up to this much per read callback (it loops while the socket
// has more), and our buffer grows by what arrived.
constexpr std::size_t kReadChunk = 64 * 1024;

// libuv writes with write()/writev(), which raise SIGPIPE on a socket or
// pipe whose peer is gone, and SIGPIPE's default action kills the process.
// Python ignores SIGPIPE at start-up for the same reason; uvaio does it when
// the first stream is made, unless the application installed its own
// disposition. Children started by uv_spawn get default dispositions back.
void ignore_sigpipe() noexcept {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction current {};
    if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
      struct sigaction ignore {};
      ignore.sa_handler = SIG_IGN;
      sigemptyset(&ignore.sa_mask);
      sigaction(SIGPIPE, &ignore, nullptr);
    }
  });
}

}  // namespace

// A request lives from its submission until its callback; req.data points
// back at the request, which knows its stream (alive until on_close, which
// libuv runs after every request callback of the handle).
struct StreamState::WriteReq {
  uv_write_t req{};
  StreamState* owner = nullptr;
  std::string data;
};

struct StreamState::ShutdownReq {
  uv_shutdown_t req{};
  StreamState* owner = nullptr;
};

StreamState::StreamState(LoopImpl& loop, Kind kind, StreamLimits limits)
    : loop_(&loop), kind_(kind), limits_(limits) {
  handle_.handle.data = this;
}

StreamState::~StreamState() = default;

std::shared_ptr<StreamState> make_tcp_stream(LoopImpl& loop, StreamLimits limits) {
  ignore_sigpipe();
  auto state = std::make_shared<StreamState>(loop, StreamState::Kind::tcp, limits);
  const int rc = uv_tcp_init(&loop.uv_, state->tcp());
  if (rc < 0) throw_uv_error(rc, "uv_tcp_init");
  state->handle_open_ = true;
  state->self_ = state;
  loop.register_io(*state);
  state->registered_ = true;
  return state;
}

std::shared_ptr<StreamState> make_pipe_stream(LoopImpl& loop, StreamLimits limits) {
  ignore_sigpipe();
  auto state = std::make_shared<StreamState>(loop, StreamState::Kind::pipe, limits);
  const int rc = uv_pipe_init(&loop.uv_, state->pipe(), 0);
  if (rc < 0) throw_uv_error(rc, "uv_pipe_init");
  state->handle_open_ = true;
  state->peer_ = "pipe";
  state->self_ = state;
  loop.register_io(*state);
  state->registered_ = true;
  return state;
}

// --- lifetime -------------------------------------------------------------------

void StreamState::start() {
  if (started_ || !handle_open_ || closing_) return;
  started_ = true;
  if (kind_ == Kind::tcp) {
    // Kept: peername()/sockname() still answer once the handle is closed.
    peer_address_ = query_address(uv_tcp_getpeername);
    local_address_ = query_address(uv_tcp_getsockname);
    if (!peer_address_.empty()) peer_ = peer_address_.to_string();
  }
  // A pipe that only the child reads (its stdin) is not readable here: it
  // would only ever report EOF, so say so at once.
  if (uv_is_readable(stream()) == 0) {
    eof_ = true;
    return;
  }
  start_reading();
}

void StreamState::start_reading() noexcept {
  if (reading_ || !handle_open_ || closing_ || eof_ || error_) return;
  const int rc = uv_read_start(stream(), &on_alloc, &on_read);
  if (rc < 0) {
    fatal(rc, "read from");
    return;
  }
  reading_ = true;
  read_paused_ = false;
}

void StreamState::stop_reading() noexcept {
  if (!reading_) return;
  uv_read_stop(stream());
  reading_ = false;
}

void StreamState::unregister() noexcept {
  if (registered_) {
    registered_ = false;
    loop_->unregister_io(*this);
  }
}

void StreamState::close_handle(bool reset) noexcept {
  if (!handle_open_) return;
  handle_open_ = false;
  reading_ = false;
  unregister();
  // uv_close cancels the pending writes, shutdown and connect (their callbacks
  // get UV_ECANCELED, before on_close).
  if (reset && kind_ == Kind::tcp && uv_tcp_close_reset(tcp(), &on_close) == 0) return;
  uv_close(&handle_.handle, &on_close);
}

void StreamState::close() noexcept {
  if (closing_) return;
  closing_ = true;
  stop_reading();
  // asyncio's connection_lost(None) feeds EOF to the reader.
  eof_ = true;
  wake_reader();
  wake_all(drain_waiters_);
  // As asyncio's transport.close(): queued data is flushed first.
  if (pending_requests_ > 0 && handle_open_) {
    close_after_writes_ = true;
  } else {
    close_handle(false);
  }
}

void StreamState::abort() noexcept {
  closing_ = true;
  stop_reading();
  eof_ = true;
  wake_reader();
  wake_all(drain_waiters_);
  close_handle(true);
}

void StreamState::close_for_loop() noexcept {
  closing_ = true;
  eof_ = true;
  close_handle(false);
}

void StreamState::on_close(uv_handle_t* handle) {
  auto* state = static_cast<StreamState*>(handle->data);
  // Released last: this may be the state's final reference.
  std::shared_ptr<StreamState> self = std::move(state->self_);
  state->closed_ = true;
  state->closing_ = true;
  state->eof_ = true;
  state->wake_reader();
  wake_all(state->drain_waiters_);
  wake_all(state->closed_waiters_);
  // Nothing may touch the loop after this: it may be destroyed next.
  state->loop_ = nullptr;
}

// --- waking ---------------------------------------------------------------------

void StreamState::wake_reader() noexcept {
  if (waiter_ && !waiter_.done()) waiter_.set_result();
}

void StreamState::wake_all(std::vector<Future<void>>& waiters) noexcept {
  std::vector<Future<void>> taken;
  taken.swap(waiters);
  for (auto& waiter : taken) {
    if (!waiter.done()) waiter.set_result();
  }
}

Future<void> StreamState::new_future() {
  if (loop_ == nullptr) throw RuntimeError("Event loop is closed");
  return Future<void>(adopt, new FutureState<void>(loop_));
}

void StreamState::fatal(int code, const char* operation) noexcept {
  if (!error_) {
    try {
      error_ = make_uv_error(code, std::string(operation) + " " + peer_);
    } catch (...) {
      error_ = std::current_exception();
    }
  }
  closing_ = true;
  stop_reading();
  wake_reader();
  wake_all(drain_waiters_);
  close_handle(false);
}

// --- reading --------------------------------------------------------------------

void StreamState::on_alloc(uv_handle_t* handle, std::size_t /*suggested*/, uv_buf_t* buf) {
  auto* state = static_cast<StreamState*>(handle->data);
  if (!state->read_chunk_) state->read_chunk_.reset(new (std::nothrow) char[kReadChunk]);
  // A null buffer makes libuv report UV_ENOBUFS to on_read.
  *buf = state->read_chunk_ ? uv_buf_init(state->read_chunk_.get(), kReadChunk) : uv_buf_init(nullptr, 0);
}

void StreamState::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* state = static_cast<StreamState*>(stream->data);
  if (nread > 0) {
    try {
      state->buffer_.append(buf->base, static_cast<std::size_t>(nread));
    } catch (...) {
      state->fatal(UV_ENOMEM, "read from");
      return;
    }
    state->wake_reader();
    // asyncio's StreamReader.feed_data: pause past twice the limit.
    if (state->buffered() > 2 * state->limits_.limit) {
      state->stop_reading();
      state->read_paused_ = true;
    }
  } else if (nread == UV_EOF) {
    state->eof_ = true;
    state->stop_reading();
    state->wake_reader();
  } else if (nread < 0) {
    state->fatal(static_cast<int>(nread), "read from");
  }
}

void StreamState::consume(std::size_t n) noexcept {
  head_ += n;
  if (head_ >= buffer_.size()) {
    buffer_.clear();
    head_ = 0;
  } else if (head_ >= kReadChunk && head_ * 2 >= buffer_.size()) {
    buffer_.erase(0, head_);
    head_ = 0;
  }
  // asyncio's _maybe_resume_transport.
  if (read_paused_ && buffered() <= limits_.limit) start_reading();
}

std::string StreamState::take(std::size_t n) {
  if (n > buffered()) n = buffered();
  std::string out(buffer_, head_, n);
  consume(n);
  return out;
}

Future<void> StreamState::begin_wait(const char* function) {
  if (waiter_) {
    throw RuntimeError(std::string(function) +
                       "() called while another coroutine is already waiting for incoming data");
  }
  // A reader wants data: take up reading again even if over the limit (asyncio).
  if (read_paused_) start_reading();
  waiter_ = new_future();
  return waiter_;
}

// --- writing --------------------------------------------------------------------

std::size_t StreamState::write_queue_size() const noexcept {
  return handle_open_ ? uv_stream_get_write_queue_size(&handle_.stream) : 0;
}

void StreamState::update_write_pause() noexcept {
  const std::size_t queued = write_queue_size();
  if (!writing_paused_ && queued > limits_.write_high_water) {
    writing_paused_ = true;
  } else if (writing_paused_ && queued <= limits_.write_low_water) {
    writing_paused_ = false;
    wake_all(drain_waiters_);
  }
}

void StreamState::set_write_limits(std::size_t high, std::size_t low) {
  if (high < low) {
    throw ValueError("high (" + std::to_string(high) + ") must be >= low (" + std::to_string(low) + ")");
  }
  limits_.write_high_water = high;
  limits_.write_low_water = low;
  update_write_pause();
}

void StreamState::write(std::string_view data) {
  check_error();
  if (closing_ || !handle_open_) throw RuntimeError("Cannot call write() after the stream was closed");
  if (eof_written_) throw RuntimeError("Cannot call write() after write_eof()");
  if (data.empty()) return;
  // uv_try_write refuses (UV_EAGAIN) while earlier writes are queued, so the
  // order of the bytes is kept.
  uv_buf_t direct = uv_buf_init(const_cast<char*>(data.data()), static_cast<unsigned>(data.size()));
  const int sent = data.size() <= UINT32_MAX ? uv_try_write(stream(), &direct, 1) : UV_EAGAIN;
  if (sent < 0 && sent != UV_EAGAIN && sent != UV_ENOSYS) {
    fatal(sent, "write to");
    std::rethrow_exception(error_);
  }
  if (sent > 0) data.remove_prefix(static_cast<std::size_t>(sent));
  if (data.empty()) return;

  auto* req = new WriteReq;
  try {
    req->data.assign(data);
  } catch (...) {
    delete req;
    throw;
  }
  req->req.data = req;
  req->owner = this;
  uv_buf_t queued = uv_buf_init(req->data.data(), static_cast<unsigned>(req->data.size()));
  const int rc = uv_write(&req->req, stream(), &queued, 1, &on_write);
  if (rc < 0) {
    delete req;
    fatal(rc, "write to");
    std::rethrow_exception(error_);
  }
  ++pending_requests_;
  update_write_pause();
}

void StreamState::on_write(uv_write_t* req, int status) {
  auto* write = static_cast<WriteReq*>(req->data);
  StreamState* state = write->owner;
  delete write;
  if (status < 0 && status != UV_ECANCELED) state->fatal(status, "write to");
  state->update_write_pause();
  state->request_done();
}

void StreamState::request_done() noexcept {
  --pending_requests_;
  if (pending_requests_ == 0 && close_after_writes_) close_handle(false);
}

void StreamState::write_eof() {
  check_error();
  if (closing_ || !handle_open_) throw RuntimeError("Cannot call write_eof() after the stream was closed");
  if (eof_written_) return;
  eof_written_ = true;
  auto* req = new ShutdownReq;
  req->req.data = req;
  req->owner = this;
  const int rc = uv_shutdown(&req->req, stream(), &on_shutdown);
  if (rc < 0) {
    delete req;
    fatal(rc, "shutdown of");
    std::rethrow_exception(error_);
  }
  ++pending_requests_;
}

void StreamState::on_shutdown(uv_shutdown_t* req, int status) {
  auto* shutdown = static_cast<ShutdownReq*>(req->data);
  StreamState* state = shutdown->owner;
  delete shutdown;
  // A peer that already went away makes shutdown fail with ENOTCONN; the next
  // read or write reports what happened, so that one is not an error here.
  if (status < 0 && status != UV_ECANCELED && status != UV_ENOTCONN) state->fatal(status, "shutdown of");
  state->request_done();
}

void StreamState::check_drainable() const {
  check_error();
  if (closing_) throw ConnectionResetError(UV_ECONNRESET, "drain on " + peer_ + ": connection lost");
}

Future<void> StreamState::add_drain_waiter() {
  Future<void> waiter = new_future();
  drain_waiters_.push_back(waiter);
  return waiter;
}

Future<void> StreamState::add_closed_waiter() {
  if (closed_) return Future<void>();
  Future<void> waiter = new_future();
  closed_waiters_.push_back(waiter);
  return waiter;
}

// --- connecting and addresses ---------------------------------------------------

namespace {

using ConnectOp = RequestOp<void, uv_connect_t>;

void on_connect(uv_connect_t* req, int status) {
  ConnectOp* op = ConnectOp::from(req);
  if (op->deliverable()) {
    if (status < 0) {
      op->fail(status, op->what);
    } else {
      op->set_value();
    }
  }
  op->finished();
}

}  // namespace

Future<void> StreamState::connect(const SocketAddress& address) {
  if (loop_ == nullptr || !handle_open_) throw RuntimeError("connect: the stream is closed");
  auto* op = new ConnectOp(*loop_);
  Future<void> future(adopt, op);
  op->what = "connect " + address.to_string();
  op->start(uv_tcp_connect(&op->req, tcp(), address.native(), &on_connect));
  return future;
}

SocketAddress StreamState::query_address(int (*query)(const uv_tcp_t*, sockaddr*, int*)) const noexcept {
  if (kind_ != Kind::tcp || !handle_open_) return {};
  sockaddr_storage storage{};
  int size = sizeof storage;
  if (query(&handle_.tcp, reinterpret_cast<sockaddr*>(&storage), &size) != 0) return {};
  try {
    return SocketAddress::from_native(reinterpret_cast<const sockaddr*>(&storage));
  } catch (...) {
    return {};
  }
}

void add_user(StreamState& state) noexcept { state.add_user(); }
void remove_user(StreamState& state) noexcept { state.remove_user(); }

}  // namespace uvaio::detail
