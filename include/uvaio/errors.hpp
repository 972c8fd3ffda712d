#pragma once

#include <exception>
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
