#include "uvaio/errors.hpp"

#include <string>
#include <utility>

#include <uv.h>

namespace uvaio {

// The destructors are the key functions: defined here, the vtables and type_info
// of the exception types are emitted once, exported from the library.
CancelledError::CancelledError(std::string message) : message_(std::move(message)) {}
CancelledError::~CancelledError() = default;
Error::~Error() = default;
RuntimeError::~RuntimeError() = default;
InvalidStateError::~InvalidStateError() = default;
TimeoutError::~TimeoutError() = default;
ValueError::~ValueError() = default;
QueueEmpty::~QueueEmpty() = default;
QueueFull::~QueueFull() = default;
QueueShutDown::~QueueShutDown() = default;

ExceptionGroup::ExceptionGroup(const std::string& message, std::vector<std::exception_ptr> exceptions)
    : Error(message + " (" + std::to_string(exceptions.size()) + " sub-exception" +
            (exceptions.size() == 1 ? "" : "s") + ")"),
      exceptions_(std::move(exceptions)) {}
ExceptionGroup::~ExceptionGroup() = default;

UvError::UvError(int code, const std::string& operation)
    : Error(operation + ": " + uv_err_name(code) + " (" + uv_strerror(code) + ")"), code_(code) {}
UvError::~UvError() = default;
ConnectionError::~ConnectionError() = default;
ConnectionResetError::~ConnectionResetError() = default;
ConnectionRefusedError::~ConnectionRefusedError() = default;
ConnectionAbortedError::~ConnectionAbortedError() = default;
BrokenPipeError::~BrokenPipeError() = default;
FileNotFoundError::~FileNotFoundError() = default;
FileExistsError::~FileExistsError() = default;
PermissionError::~PermissionError() = default;
IsADirectoryError::~IsADirectoryError() = default;
NotADirectoryError::~NotADirectoryError() = default;
GaiError::~GaiError() = default;
KeyboardInterrupt::~KeyboardInterrupt() = default;

IncompleteReadError::IncompleteReadError(std::string partial, std::optional<std::size_t> expected)
    : Error(std::to_string(partial.size()) + " bytes read on a total of " +
            (expected ? std::to_string(*expected) : std::string("undefined")) + " expected bytes"),
      partial_(std::move(partial)),
      expected_(expected) {}
IncompleteReadError::~IncompleteReadError() = default;

LimitOverrunError::LimitOverrunError(const std::string& message, std::size_t consumed)
    : Error(message), consumed_(consumed) {}
LimitOverrunError::~LimitOverrunError() = default;

std::exception_ptr make_uv_error(int code, const std::string& operation) {
  switch (code) {
    case UV_ECONNRESET:
      return std::make_exception_ptr(ConnectionResetError(code, operation));
    case UV_ECONNREFUSED:
      return std::make_exception_ptr(ConnectionRefusedError(code, operation));
    case UV_ECONNABORTED:
      return std::make_exception_ptr(ConnectionAbortedError(code, operation));
    case UV_EPIPE:
    case UV_ESHUTDOWN:
      return std::make_exception_ptr(BrokenPipeError(code, operation));
    case UV_ENOTCONN:
      return std::make_exception_ptr(ConnectionError(code, operation));
    case UV_ENOENT:
      return std::make_exception_ptr(FileNotFoundError(code, operation));
    case UV_EEXIST:
      return std::make_exception_ptr(FileExistsError(code, operation));
    case UV_EACCES:
    case UV_EPERM:
      return std::make_exception_ptr(PermissionError(code, operation));
    case UV_EISDIR:
      return std::make_exception_ptr(IsADirectoryError(code, operation));
    case UV_ENOTDIR:
      return std::make_exception_ptr(NotADirectoryError(code, operation));
    default:
      // libuv's getaddrinfo codes run from UV_EAI_ADDRFAMILY (-3000) down to UV_EAI_PROTOCOL (-3014).
      if (code <= UV_EAI_ADDRFAMILY && code >= UV_EAI_PROTOCOL) {
        return std::make_exception_ptr(GaiError(code, operation));
      }
      return std::make_exception_ptr(UvError(code, operation));
  }
}

void throw_uv_error(int code, const std::string& operation) { std::rethrow_exception(make_uv_error(code, operation)); }

}  // namespace uvaio
