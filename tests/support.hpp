#pragma once

// Helpers shared by the test files. Keep them small and obvious.

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <filesystem>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <uvaio/log.hpp>
#include <uvaio/uvaio.hpp>

namespace test_support {

// stop() before run_forever(): the loop runs exactly one iteration, without
// blocking in the poll.
inline void run_one_iteration(uvaio::Loop& loop) {
  loop.stop();
  loop.run_forever();
}

inline void run_iterations(uvaio::Loop& loop, int count) {
  for (int i = 0; i < count; ++i) run_one_iteration(loop);
}

// The message of the CancelledError that fn() throws, or what happened instead.
template <class F>
std::string cancelled_message(F&& fn) {
  try {
    fn();
  } catch (const uvaio::CancelledError& e) {
    return e.message();
  } catch (...) {
    return "<another exception>";
  }
  return "<no exception>";
}

// What an exception_ptr holds, for CHECKs: "CancelledError: <message>", what(),
// "<null>" or "<not a std::exception>".
inline std::string what_of(const std::exception_ptr& error) {
  if (!error) return "<null>";
  try {
    std::rethrow_exception(error);
  } catch (const uvaio::CancelledError& e) {
    return "CancelledError: " + e.message();
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "<not a std::exception>";
  }
}

inline bool starts_with(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

// Gives the loop `yields` iterations (sleep(0s) each), then returns `value`.
inline uvaio::Async<void> yield_times(int yields) {
  for (int i = 0; i < yields; ++i) co_await uvaio::sleep(std::chrono::seconds(0));
}

inline uvaio::Async<int> value_after(int yields, int value) {
  co_await yield_times(yields);
  co_return value;
}

// Lets the loop run until `task` is done, at most `iterations` times: a lost
// wake-up makes the CHECK that follows fail instead of hanging.
template <class T>
uvaio::Async<void> settle(uvaio::Task<T> task, int iterations = 10) {
  for (int i = 0; i < iterations && !task.done(); ++i) co_await uvaio::sleep(std::chrono::seconds(0));
}

// Captures what uvaio logs while it lives (installs itself with
// uvaio::set_logger, restores the previous logger when destroyed).
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<Sink>()), previous_(uvaio::logger()) {
    auto logger = std::make_shared<spdlog::logger>("uvaio-test", sink_);
    logger->set_level(spdlog::level::trace);
    uvaio::set_logger(logger);
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  ~LogCapture() { uvaio::set_logger(previous_); }

  std::vector<std::string> lines() const { return sink_->lines(); }
  // How many captured lines contain `text`.
  std::size_t count(const std::string& text) const {
    auto all = lines();
    return static_cast<std::size_t>(
        std::count_if(all.begin(), all.end(), [&](const std::string& l) { return l.find(text) != std::string::npos; }));
  }
  bool contains(const std::string& text) const { return count(text) > 0; }

 private:
  class Sink final : public spdlog::sinks::base_sink<std::mutex> {
   public:
    std::vector<std::string> lines() {
      std::lock_guard<std::mutex> lock(this->mutex_);
      return lines_;
    }

   protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
      lines_.emplace_back(msg.payload.data(), msg.payload.size());
    }
    void flush_() override {}

   private:
    std::vector<std::string> lines_;
  };

  std::shared_ptr<Sink> sink_;
  std::shared_ptr<spdlog::logger> previous_;
};

// Records every context the loop's exception handler receives.
struct HandlerCapture {
  explicit HandlerCapture(uvaio::Loop& loop) {
    loop.set_exception_handler([this](uvaio::Loop&, const uvaio::ExceptionContext& context) {
      contexts.push_back(context);
    });
  }
  std::vector<uvaio::ExceptionContext> contexts;
};

// Counts constructions and destructions of instances, to check lifetimes.
struct Counted {
  static inline std::atomic<int> constructed{0};
  static inline std::atomic<int> destroyed{0};
  static void reset() {
    constructed = 0;
    destroyed = 0;
  }
  static int alive() { return constructed - destroyed; }

  int value = 0;
  explicit Counted(int v = 0) : value(v) { ++constructed; }
  Counted(const Counted& other) : value(other.value) { ++constructed; }
  Counted(Counted&& other) noexcept : value(other.value) { ++constructed; }
  Counted& operator=(const Counted&) = default;
  Counted& operator=(Counted&&) noexcept = default;
  ~Counted() { ++destroyed; }
};


// A fresh directory under /tmp, removed with everything in it at the end.
class TempDir {
 public:
  TempDir() {
    char name[] = "/tmp/uvaio-test-XXXXXX";
    if (::mkdtemp(name) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = name;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }
  // The names in the directory, sorted (read without uvaio).
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& entry : std::filesystem::directory_iterator(path_)) out.push_back(entry.path().filename());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  std::string path_;
};

}  // namespace test_support
