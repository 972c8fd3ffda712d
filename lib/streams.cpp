#include "uvaio/streams.hpp"

#include <algorithm>
#include <exception>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "stream.hpp"
#include "uvaio/task.hpp"

// The reads and drain are coroutines taking the state by shared_ptr, not
// member coroutines: a reader handle may be moved or dropped while one of
// its reads is suspended, and the read must not depend on it.

namespace uvaio {

namespace {

using detail::StreamState;
using StatePtr = std::shared_ptr<StreamState>;

// Clears the state's waiter however the wait ends (woken, cancelled, frame
// destroyed by the loop closing).
class WaitScope {
 public:
  explicit WaitScope(StreamState& state) noexcept : state_(state) {}
  WaitScope(const WaitScope&) = delete;
  WaitScope& operator=(const WaitScope&) = delete;
  ~WaitScope() { state_.end_wait(); }

 private:
  StreamState& state_;
};

StreamState& checked(const StatePtr& state, const char* type) {
  if (!state) detail::throw_empty_handle(type);
  return *state;
}

Async<std::string> read_impl(StatePtr state, std::ptrdiff_t n) {
  state->check_error();
  if (n == 0) co_return std::string();
  if (n < 0) {
    // asyncio reads limit-sized blocks until EOF.
    std::string all;
    for (;;) {
      state->check_error();
      if (state->buffered() > 0) {
        all += state->take(state->buffered());
        continue;
      }
      if (state->eof()) break;
      {
        Future<void> waiter = state->begin_wait("read");
        WaitScope scope(*state);
        co_await waiter;
      }
    }
    co_return all;
  }
  if (state->buffered() == 0 && !state->eof()) {
    Future<void> waiter = state->begin_wait("read");
    WaitScope scope(*state);
    co_await waiter;
  }
  state->check_error();
  co_return state->take(static_cast<std::size_t>(n));
}

Async<std::string> readexactly_impl(StatePtr state, std::size_t n) {
  state->check_error();
  if (n == 0) co_return std::string();
  while (state->buffered() < n) {
    if (state->eof()) {
      std::string partial = state->take(state->buffered());
      throw IncompleteReadError(std::move(partial), n);
    }
    {
      Future<void> waiter = state->begin_wait("readexactly");
      WaitScope scope(*state);
      co_await waiter;
    }
    state->check_error();
  }
  co_return state->take(n);
}

// asyncio's StreamReader.readuntil, step for step (the messages too).
Async<std::string> readuntil_impl(StatePtr state, std::string separator) {
  const std::size_t seplen = separator.size();
  if (seplen == 0) throw ValueError("Separator should be at least one-byte string");
  state->check_error();
  std::size_t offset = 0;
  std::size_t found = std::string_view::npos;
  for (;;) {
    const std::string_view buffered = state->buffer();
    if (buffered.size() >= offset + seplen) {
      found = buffered.find(separator, offset);
      if (found != std::string_view::npos) break;
      // Where the next search starts: the separator may straddle old and new data.
      offset = buffered.size() + 1 - seplen;
      if (offset > state->limit()) {
        throw LimitOverrunError("Separator is not found, and chunk exceed the limit", offset);
      }
    }
    if (state->eof()) {
      std::string partial = state->take(state->buffered());
      throw IncompleteReadError(std::move(partial), std::nullopt);
    }
    {
      Future<void> waiter = state->begin_wait("readuntil");
      WaitScope scope(*state);
      co_await waiter;
    }
    state->check_error();
  }
  if (found > state->limit()) throw LimitOverrunError("Separator is found, but chunk is longer than limit", found);
  co_return state->take(found + seplen);
}

// asyncio's readline: the partial last line at EOF; past the limit the line
// (through its separator, if it came) is dropped and ValueError raised.
Async<std::string> readline_impl(StatePtr state) {
  std::string line;
  std::optional<std::string> partial;
  try {
    Async<std::string> until = readuntil_impl(state, "\n");
    std::string got = co_await std::move(until);
    line = std::move(got);
  } catch (const IncompleteReadError& e) {
    partial = e.partial();
  } catch (const LimitOverrunError& e) {
    const std::string_view buffered = state->buffer();
    if (buffered.substr(e.consumed(), 1) == "\n") {
      state->consume(e.consumed() + 1);
    } else {
      state->consume(buffered.size());
    }
    throw ValueError(e.what());
  }
  if (partial) co_return std::move(*partial);
  co_return line;
}

Async<void> drain_impl(StatePtr state) {
  state->check_drainable();
  while (state->writing_paused()) {
    {
      Future<void> waiter = state->add_drain_waiter();
      co_await waiter;
    }
    state->check_drainable();
  }
}

Async<void> wait_closed_impl(StatePtr state) {
  while (!state->is_closed()) {
    Future<void> waiter = state->add_closed_waiter();
    if (!waiter) break;
    co_await waiter;
  }
}

}  // namespace

// --- StreamReader -----------------------------------------------------------------


Async<std::string> StreamReader::read(std::ptrdiff_t n) const {
  checked(state_, "StreamReader");
  return read_impl(state_, n);
}
Async<std::string> StreamReader::readexactly(std::size_t n) const {
  checked(state_, "StreamReader");
  return readexactly_impl(state_, n);
}
Async<std::string> StreamReader::readline() const {
  checked(state_, "StreamReader");
  return readline_impl(state_);
}
Async<std::string> StreamReader::readuntil(std::string separator) const {
  checked(state_, "StreamReader");
  return readuntil_impl(state_, std::move(separator));
}
bool StreamReader::at_eof() const {
  const StreamState& state = checked(state_, "StreamReader");
  return state.eof() && state.buffered() == 0;
}
std::exception_ptr StreamReader::exception() const { return checked(state_, "StreamReader").error(); }
std::size_t StreamReader::limit() const { return checked(state_, "StreamReader").limit(); }

// --- StreamWriter -----------------------------------------------------------------


void StreamWriter::write(std::string_view data) const { checked(state_, "StreamWriter").write(data); }
Async<void> StreamWriter::drain() const {
  checked(state_, "StreamWriter");
  return drain_impl(state_);
}
void StreamWriter::write_eof() const { checked(state_, "StreamWriter").write_eof(); }
bool StreamWriter::can_write_eof() const noexcept { return state_ && state_->can_write_eof(); }
void StreamWriter::close() const noexcept {
  if (state_) state_->close();
}
Async<void> StreamWriter::wait_closed() const {
  checked(state_, "StreamWriter");
  return wait_closed_impl(state_);
}
bool StreamWriter::is_closing() const noexcept { return !state_ || state_->is_closing(); }
std::size_t StreamWriter::write_buffer_size() const noexcept { return state_ ? state_->write_queue_size() : 0; }
void StreamWriter::set_write_buffer_limits(std::size_t high, std::size_t low) const {
  checked(state_, "StreamWriter").set_write_limits(high, low);
}
SocketAddress StreamWriter::peername() const { return checked(state_, "StreamWriter").peername(); }
SocketAddress StreamWriter::sockname() const { return checked(state_, "StreamWriter").sockname(); }

// --- open_connection --------------------------------------------------------------

namespace {

// Closes a stream that did not become a connection (failed, or the task was
// cancelled or destroyed while connecting).
class CloseUnlessKept {
 public:
  explicit CloseUnlessKept(StatePtr state) noexcept : state_(std::move(state)) {}
  CloseUnlessKept(const CloseUnlessKept&) = delete;
  CloseUnlessKept& operator=(const CloseUnlessKept&) = delete;
  ~CloseUnlessKept() {
    if (state_) state_->close();
  }
  void keep() noexcept { state_.reset(); }

 private:
  StatePtr state_;
};

}  // namespace

Async<std::pair<StreamReader, StreamWriter>> open_connection(std::string host, std::uint16_t port,
                                                             ConnectOptions options) {
  detail::LoopImpl& loop = detail::io_loop("open_connection");
  Future<std::vector<AddrInfo>> lookup =
      getaddrinfo(host, std::to_string(port), AddrInfoHints{.family = options.family, .socktype = SOCK_STREAM});
  const std::vector<AddrInfo> answers = co_await std::move(lookup);
  std::exception_ptr last_error;
  for (const AddrInfo& answer : answers) {
    StatePtr state = detail::make_tcp_stream(loop, options.limits);
    CloseUnlessKept guard(state);
    Future<void> connecting = state->connect(answer.address);
    std::exception_ptr error;
    try {
      co_await connecting;
    } catch (const CancelledError&) {
      throw;
    } catch (...) {
      error = std::current_exception();
    }
    if (error) {
      last_error = error;
      continue;
    }
    if (options.no_delay) uv_tcp_nodelay(state->tcp(), 1);
    state->start();
    guard.keep();
    co_return std::pair<StreamReader, StreamWriter>(StreamReader(state), StreamWriter(state));
  }
  if (!last_error) {
    last_error = make_uv_error(UV_EAI_NONAME, "getaddrinfo '" + host + "' port '" + std::to_string(port) +
                                                  "' returned no address");
  }
  std::rethrow_exception(last_error);
}

}  // namespace uvaio
