#include <doctest/doctest.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>

#include <spdlog/sinks/ostream_sink.h>

#include "support.hpp"

using namespace std::chrono_literals;

TEST_SUITE_BEGIN("log");

namespace {

// Puts back the logger that was installed when it was created.
class RestoreLogger {
 public:
  RestoreLogger() : previous_(uvaio::logger()), previous_level_(previous_->level()) {}
  RestoreLogger(const RestoreLogger&) = delete;
  RestoreLogger& operator=(const RestoreLogger&) = delete;
  ~RestoreLogger() {
    previous_->set_level(previous_level_);
    uvaio::set_logger(previous_);
  }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  spdlog::level::level_enum previous_level_;
};

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) previous_ = old;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  ~ScopedEnv() {
    if (previous_) {
      ::setenv(name_.c_str(), previous_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::optional<std::string> previous_;
};

// A logger writing bare messages, one per line, into a string stream.
struct StreamLogger {
  std::ostringstream out;
  std::shared_ptr<spdlog::logger> logger;

  explicit StreamLogger(const std::string& name)
      : logger(std::make_shared<spdlog::logger>(name, std::make_shared<spdlog::sinks::ostream_sink_st>(out))) {
    logger->set_pattern("%v");
    logger->set_level(spdlog::level::trace);
  }
};

TEST_CASE("logger() is the spdlog logger named uvaio") {
  RestoreLogger restore;
  uvaio::set_logger(nullptr);
  std::shared_ptr<spdlog::logger> logger = uvaio::logger();
  REQUIRE(logger != nullptr);
  CHECK(logger->name() == "uvaio");
  CHECK(uvaio::logger() == logger);
}

TEST_CASE("set_logger makes logger() return the given logger") {
  RestoreLogger restore;
  StreamLogger mine("mine");
  uvaio::set_logger(mine.logger);
  CHECK(uvaio::logger() == mine.logger);
}

uvaio::Async<void> fail() {
  co_await uvaio::sleep(0s);
  throw std::runtime_error("nobody asked");
}

uvaio::Async<void> let_a_task_fail_unobserved() {
  uvaio::Task<> task = uvaio::create_task(fail(), "unobserved");
  while (!task.done()) co_await uvaio::sleep(0s);
  // The last handle goes here, with the exception never retrieved.
}

TEST_CASE("uvaio logs to the logger given to set_logger") {
  RestoreLogger restore;
  StreamLogger mine("mine");
  uvaio::set_logger(mine.logger);
  uvaio::run(let_a_task_fail_unobserved());
  const std::string logged = mine.out.str();
  CHECK(logged.find("Task exception was never retrieved") != std::string::npos);
  CHECK(logged.find("unobserved") != std::string::npos);
  CHECK(logged.find("nobody asked") != std::string::npos);
}

TEST_CASE("set_logger(nullptr) goes back to a default logger named uvaio") {
  RestoreLogger restore;
  StreamLogger mine("mine");
  uvaio::set_logger(mine.logger);
  uvaio::set_logger(nullptr);
  std::shared_ptr<spdlog::logger> logger = uvaio::logger();
  REQUIRE(logger != nullptr);
  CHECK(logger != mine.logger);
  CHECK(logger->name() == "uvaio");
}

TEST_CASE("UVAIO_LOG_LEVEL sets the level of the default logger") {
  RestoreLogger restore;
  ScopedEnv env("UVAIO_LOG_LEVEL", "warn");
  uvaio::set_logger(nullptr);
  std::shared_ptr<spdlog::logger> logger = uvaio::logger();
  REQUIRE(logger != nullptr);
  CHECK(logger->name() == "uvaio");
  CHECK(logger->level() == spdlog::level::warn);
}

}  // namespace

TEST_SUITE_END();
