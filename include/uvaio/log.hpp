#pragma once

// The only public header that includes spdlog.

#include <memory>

#include <spdlog/logger.h>

#include "uvaio/export.hpp"

namespace uvaio {

// The logger uvaio writes to: the spdlog logger named "uvaio" (taken from
// spdlog's registry if the application registered one, else created on first
// use, writing to stderr). Its level comes from UVAIO_LOG_LEVEL (trace, debug,
// info, warn, error, critical, off) when that is set. Thread-safe.
UVAIO_API std::shared_ptr<spdlog::logger> logger();

// Replaces the logger (thread-safe); nullptr goes back to the default.
UVAIO_API void set_logger(std::shared_ptr<spdlog::logger> logger);

}  // namespace uvaio
