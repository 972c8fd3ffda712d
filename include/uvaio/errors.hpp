#pragma once

#include <cstddef>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "uvaio/export.hpp"

namespace uvaio {

// Thrown at the suspension point of a cancelled task, and by result()/exception()
// of a cancelled future or task. It deliberately does NOT derive from
// std::exception, so `catch (const std::exception&)` never swallows a
// cancellation (asyncio made the same choice with BaseException). Catch it by
// name, or with `catch (...)` and rethrow.
class UVAIO_API CancelledError {
 public:
  CancelledError() = default;
  explicit CancelledError(std::string message);
  CancelledError(const CancelledError&) = default;
  CancelledError(CancelledError&&) noexcept = default;
  CancelledError& operator=(const CancelledError&) = default;
  CancelledError& operator=(CancelledError&&) noexcept = default;
  virtual ~CancelledError();

  // The message given to cancel(msg); empty when none was given.
  const std::string& message() const noexcept { return message_; }
  const char* what() const noexcept { return message_.c_str(); }

 private:
  std::string message_;
};

// Base of every other uvaio error.
class UVAIO_API Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  ~Error() override;
};

// Misuse of the loop or of an object in the wrong state ("Event loop is closed",
// "This event loop is already running", "no running event loop", ...).
class UVAIO_API RuntimeError : public Error {
 public:
  using Error::Error;
  ~RuntimeError() override;
};

// A future or task asked for something its state does not allow
// ("Result is not set.", setting a result twice, ...).
class UVAIO_API InvalidStateError : public Error {
 public:
  using Error::Error;
  ~InvalidStateError() override;
};

// A deadline passed (wait_for, timeout).
class UVAIO_API TimeoutError : public Error {
 public:
  TimeoutError() : Error("timed out") {}
  using Error::Error;
  ~TimeoutError() override;
};

// An argument had the right type but a wrong value.
class UVAIO_API ValueError : public Error {
 public:
  using Error::Error;
  ~ValueError() override;
};

// Several failures at once (TaskGroup). Groups nest: an element may itself be
// an ExceptionGroup.
class UVAIO_API ExceptionGroup : public Error {
 public:
  ExceptionGroup(const std::string& message, std::vector<std::exception_ptr> exceptions);
  ~ExceptionGroup() override;
  const std::vector<std::exception_ptr>& exceptions() const noexcept { return exceptions_; }

 private:
  std::vector<std::exception_ptr> exceptions_;
};

// A libuv call failed. code() is libuv's (negative) error code; what() names the
// call and libuv's error name, e.g. "uv_queue_work: EINVAL (invalid argument)".
class UVAIO_API UvError : public Error {
 public:
  UvError(int code, const std::string& operation);
  ~UvError() override;
  int code() const noexcept { return code_; }

 private:
  int code_;
};

// The subclasses of UvError that name a kind of failure, as Python's OSError
// subclasses do; make_uv_error() picks the one for a libuv code, so that a
// caller can catch what it means ("the peer went away") without comparing
// codes. Each keeps code() and the same what().
#define UVAIO_UV_ERROR_SUBCLASS(Name, Base) \
  class UVAIO_API Name : public Base {      \
   public:                                  \
    using Base::Base;                       \
    ~Name() override;                       \
  };
// ECONNRESET, ECONNREFUSED, ECONNABORTED, EPIPE, ENOTCONN, ESHUTDOWN.
UVAIO_UV_ERROR_SUBCLASS(ConnectionError, UvError)
UVAIO_UV_ERROR_SUBCLASS(ConnectionResetError, ConnectionError)     // ECONNRESET
UVAIO_UV_ERROR_SUBCLASS(ConnectionRefusedError, ConnectionError)   // ECONNREFUSED
UVAIO_UV_ERROR_SUBCLASS(ConnectionAbortedError, ConnectionError)   // ECONNABORTED
UVAIO_UV_ERROR_SUBCLASS(BrokenPipeError, ConnectionError)          // EPIPE, ESHUTDOWN
UVAIO_UV_ERROR_SUBCLASS(FileNotFoundError, UvError)                // ENOENT
UVAIO_UV_ERROR_SUBCLASS(FileExistsError, UvError)                  // EEXIST
UVAIO_UV_ERROR_SUBCLASS(PermissionError, UvError)                  // EACCES, EPERM
UVAIO_UV_ERROR_SUBCLASS(IsADirectoryError, UvError)                // EISDIR
UVAIO_UV_ERROR_SUBCLASS(NotADirectoryError, UvError)               // ENOTDIR
UVAIO_UV_ERROR_SUBCLASS(GaiError, UvError)                         // UV_EAI_* (name lookup)
#undef UVAIO_UV_ERROR_SUBCLASS

// The UvError, or the subclass above that names `code`, as an exception_ptr;
// what() is "<operation>: <NAME> (<libuv's description>)".
UVAIO_API std::exception_ptr make_uv_error(int code, const std::string& operation);
[[noreturn]] UVAIO_API void throw_uv_error(int code, const std::string& operation);

// asyncio.IncompleteReadError: the stream ended before `expected` bytes (or the
// separator) arrived. partial() holds what did arrive; it is consumed.
class UVAIO_API IncompleteReadError : public Error {
 public:
  // expected: the byte count asked for; std::nullopt for readuntil/readline.
  IncompleteReadError(std::string partial, std::optional<std::size_t> expected);
  ~IncompleteReadError() override;
  const std::string& partial() const noexcept { return partial_; }
  std::optional<std::size_t> expected() const noexcept { return expected_; }

 private:
  std::string partial_;
  std::optional<std::size_t> expected_;
};

// asyncio.LimitOverrunError: the separator was not found within the stream's
// buffer limit. consumed() bytes are still in the buffer (not consumed).
class UVAIO_API LimitOverrunError : public Error {
 public:
  LimitOverrunError(const std::string& message, std::size_t consumed);
  ~LimitOverrunError() override;
  std::size_t consumed() const noexcept { return consumed_; }

 private:
  std::size_t consumed_;
};

// What uvaio::run() throws when SIGINT (Ctrl-C) cancelled the main task, as
// asyncio.run raises KeyboardInterrupt. Like CancelledError it does not derive
// from std::exception: `catch (const std::exception&)` does not swallow it.
class UVAIO_API KeyboardInterrupt {
 public:
  KeyboardInterrupt() = default;
  KeyboardInterrupt(const KeyboardInterrupt&) = default;
  KeyboardInterrupt& operator=(const KeyboardInterrupt&) = default;
  virtual ~KeyboardInterrupt();
  const char* what() const noexcept { return "KeyboardInterrupt"; }
};

class UVAIO_API QueueEmpty : public Error {
 public:
  QueueEmpty() : Error("queue is empty") {}
  using Error::Error;
  ~QueueEmpty() override;
};

class UVAIO_API QueueFull : public Error {
 public:
  QueueFull() : Error("queue is full") {}
  using Error::Error;
  ~QueueFull() override;
};

class UVAIO_API QueueShutDown : public Error {
 public:
  QueueShutDown() : Error("queue is shut down") {}
  using Error::Error;
  ~QueueShutDown() override;
};

}  // namespace uvaio
