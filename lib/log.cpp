#include "uvaio/log.hpp"

#include <cstdlib>
#include <mutex>
#include <sstream>
#include <utility>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "log_internal.hpp"

namespace uvaio {

namespace {

std::mutex& logger_mutex() {
  static std::mutex mutex;
  return mutex;
}

std::shared_ptr<spdlog::logger>& logger_slot() {
  static std::shared_ptr<spdlog::logger> slot;
  return slot;
}

std::shared_ptr<spdlog::logger> make_default_logger() {
  std::shared_ptr<spdlog::logger> made = spdlog::get("uvaio");
  if (!made) {
    made = std::make_shared<spdlog::logger>("uvaio", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    try {
      spdlog::register_logger(made);
    } catch (const spdlog::spdlog_ex&) {
      // Registered by another thread meanwhile: use that one.
      if (auto existing = spdlog::get("uvaio")) made = existing;
    }
  }
  if (const char* level = std::getenv("UVAIO_LOG_LEVEL"); level != nullptr && *level != '\0') {
    made->set_level(spdlog::level::from_str(level));
  }
  return made;
}

}  // namespace

std::shared_ptr<spdlog::logger> logger() {
  std::lock_guard<std::mutex> lock(logger_mutex());
  auto& slot = logger_slot();
  if (!slot) slot = make_default_logger();
  return slot;
}

void set_logger(std::shared_ptr<spdlog::logger> replacement) {
  std::lock_guard<std::mutex> lock(logger_mutex());
  logger_slot() = std::move(replacement);
}

namespace detail {

void log_error(const std::string& message) noexcept {
  try {
    logger()->error(message);
  } catch (...) {
  }
}

void log_warn(const std::string& message) noexcept {
  try {
    logger()->warn(message);
  } catch (...) {
  }
}

void log_debug(const std::string& message) noexcept {
  try {
    logger()->debug(message);
  } catch (...) {
  }
}

std::string thread_id_string(std::thread::id id) {
  std::ostringstream out;
  out << id;
  return out.str();
}

}  // namespace detail
}  // namespace uvaio
