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

}  // namespace uvaio
