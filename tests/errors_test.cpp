#include <doctest/doctest.h>

#include <exception>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include <uv.h>

#include "support.hpp"

TEST_SUITE_BEGIN("errors");

namespace {

static_assert(!std::is_base_of_v<std::exception, uvaio::CancelledError>,
              "CancelledError must not be caught by catch (const std::exception&)");

template <class E>
constexpr bool is_uvaio_error_v = std::is_base_of_v<uvaio::Error, E> && std::is_base_of_v<std::runtime_error, E>;

static_assert(std::is_base_of_v<std::runtime_error, uvaio::Error>);
static_assert(is_uvaio_error_v<uvaio::RuntimeError>);
static_assert(is_uvaio_error_v<uvaio::InvalidStateError>);
static_assert(is_uvaio_error_v<uvaio::TimeoutError>);
static_assert(is_uvaio_error_v<uvaio::ValueError>);
static_assert(is_uvaio_error_v<uvaio::ExceptionGroup>);
static_assert(is_uvaio_error_v<uvaio::UvError>);
static_assert(is_uvaio_error_v<uvaio::QueueEmpty>);
static_assert(is_uvaio_error_v<uvaio::QueueFull>);
static_assert(is_uvaio_error_v<uvaio::QueueShutDown>);

TEST_CASE("catch (const std::exception&) does not catch a CancelledError") {
  bool caught_as_std_exception = false;
  bool caught_as_cancelled = false;
  try {
    try {
      throw uvaio::CancelledError("stop");
    } catch (const std::exception&) {
      caught_as_std_exception = true;
    }
  } catch (const uvaio::CancelledError& e) {
    caught_as_cancelled = true;
    CHECK(e.message() == "stop");
  }
  CHECK_FALSE(caught_as_std_exception);
  CHECK(caught_as_cancelled);
}

TEST_CASE("CancelledError's message() and what() give the message, empty by default") {
  const uvaio::CancelledError with_message("shutting down");
  CHECK(with_message.message() == "shutting down");
  CHECK(std::string(with_message.what()) == "shutting down");
  const uvaio::CancelledError plain;
  CHECK(plain.message().empty());
  CHECK(std::string(plain.what()).empty());
}

TEST_CASE("the other errors are caught as uvaio::Error and as std::runtime_error with their message") {
  auto message_as_error = [](auto&& thrower) -> std::string {
    try {
      thrower();
    } catch (const uvaio::Error& e) {
      return e.what();
    }
    return "not thrown";
  };
  CHECK(message_as_error([] { throw uvaio::RuntimeError("runtime"); }) == "runtime");
  CHECK(message_as_error([] { throw uvaio::InvalidStateError("state"); }) == "state");
  CHECK(message_as_error([] { throw uvaio::TimeoutError(); }) == "timed out");
  CHECK(message_as_error([] { throw uvaio::ValueError("value"); }) == "value");
  CHECK(message_as_error([] { throw uvaio::QueueEmpty(); }) == "queue is empty");
  CHECK(message_as_error([] { throw uvaio::QueueFull(); }) == "queue is full");
  CHECK(message_as_error([] { throw uvaio::QueueShutDown(); }) == "queue is shut down");
  CHECK_THROWS_WITH_AS(throw uvaio::RuntimeError("as std"), "as std", std::runtime_error);
}

TEST_CASE("UvError keeps libuv's code and names the call and the error in what()") {
  const uvaio::UvError error(UV_EINVAL, "uv_queue_work");
  CHECK(error.code() == UV_EINVAL);
  const std::string what = error.what();
  CHECK(what.find("uv_queue_work") != std::string::npos);
  CHECK(what.find("EINVAL") != std::string::npos);
}

int int_in(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (int value) {
    return value;
  } catch (...) {
    return -1;
  }
}

std::string runtime_message_in(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::runtime_error& e) {
    return e.what();
  } catch (...) {
    return "?";
  }
}

TEST_CASE("ExceptionGroup keeps its exceptions in order, nested groups included") {
  const uvaio::ExceptionGroup inner("inner", {std::make_exception_ptr(3)});
  const uvaio::ExceptionGroup group(
      "several failures", {std::make_exception_ptr(std::runtime_error("first")), std::make_exception_ptr(2),
                           std::make_exception_ptr(uvaio::CancelledError("third")), std::make_exception_ptr(inner)});
  const std::vector<std::exception_ptr>& errors = group.exceptions();
  REQUIRE(errors.size() == 4);
  CHECK(runtime_message_in(errors[0]) == "first");
  CHECK(int_in(errors[1]) == 2);
  std::string cancelled_message = "?";
  try {
    std::rethrow_exception(errors[2]);
  } catch (const uvaio::CancelledError& e) {
    cancelled_message = e.message();
  }
  CHECK(cancelled_message == "third");
  std::vector<std::exception_ptr> nested;
  try {
    std::rethrow_exception(errors[3]);
  } catch (const uvaio::ExceptionGroup& e) {
    nested = e.exceptions();
  }
  REQUIRE(nested.size() == 1);
  CHECK(int_in(nested[0]) == 3);
  CHECK(std::string(group.what()).find("several failures") != std::string::npos);
}

// Exceptions thrown inside the shared library (built with hidden visibility)
// must be caught by their exact type here.

TEST_CASE("a RuntimeError thrown inside the library is caught by its exact type") {
  uvaio::Loop loop;
  loop.close();
  bool caught = false;
  try {
    loop.call_soon([] {});
  } catch (const uvaio::RuntimeError& e) {
    caught = true;
    CHECK(typeid(e) == typeid(uvaio::RuntimeError));
    CHECK(std::string(e.what()) == "Event loop is closed");
  }
  CHECK(caught);
  CHECK_THROWS_WITH_AS(uvaio::get_running_loop(), "no running event loop", uvaio::RuntimeError);
}

TEST_CASE("InvalidStateError, ValueError and CancelledError thrown inside the library are caught by type") {
  uvaio::Loop loop;
  uvaio::Future<int> pending = loop.create_future<int>();
  CHECK_THROWS_WITH_AS(pending.result(), "Result is not set.", uvaio::InvalidStateError);
  CHECK_THROWS_WITH_AS(loop.set_default_executor(nullptr), "set_default_executor() needs an executor",
                       uvaio::ValueError);
  pending.cancel("gone");
  bool caught = false;
  try {
    pending.result();
  } catch (const uvaio::CancelledError& e) {
    caught = true;
    CHECK(typeid(e) == typeid(uvaio::CancelledError));
    CHECK(e.message() == "gone");
  }
  CHECK(caught);
}

}  // namespace

TEST_SUITE_END();
