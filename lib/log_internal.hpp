#pragma once

#include <string>
#include <thread>

namespace uvaio::detail {

// Logging for the library's own code. These never throw.
void log_error(const std::string& message) noexcept;
void log_warn(const std::string& message) noexcept;
void log_debug(const std::string& message) noexcept;
std::string thread_id_string(std::thread::id id);

}  // namespace uvaio::detail
