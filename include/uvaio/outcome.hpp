#pragma once

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "uvaio/errors.hpp"

namespace uvaio {

// A value or an exception: what gather_settled() gives for each input. A plain
// value type (no loop, no thread affinity). value() rethrows the stored
// exception (a CancelledError for a cancelled input); exception() is null when
// there is a value.
template <class T>
class Outcome {
 public:
  using value_type = T;

  explicit Outcome(T value) : value_(std::move(value)) {}
  explicit Outcome(std::exception_ptr error) : error_(std::move(error)) {}

  bool has_value() const noexcept { return value_.has_value(); }
  std::exception_ptr exception() const noexcept { return error_; }
  // True when the input ended cancelled (its exception is a CancelledError).
  bool cancelled() const noexcept { return is_cancelled(error_); }

  T& value() & {
    if (!value_) std::rethrow_exception(error_);
    return *value_;
  }
  const T& value() const& {
    if (!value_) std::rethrow_exception(error_);
    return *value_;
  }
  T&& value() && {
    if (!value_) std::rethrow_exception(error_);
    return std::move(*value_);
  }

  static bool is_cancelled(const std::exception_ptr& error) noexcept {
    if (!error) return false;
    try {
      std::rethrow_exception(error);
    } catch (const CancelledError&) {
      return true;
    } catch (...) {
      return false;
    }
  }

 private:
  std::optional<T> value_;
  std::exception_ptr error_;
};

template <>
class Outcome<void> {
 public:
  using value_type = void;

  Outcome() noexcept = default;
  explicit Outcome(std::exception_ptr error) : error_(std::move(error)) {}

  bool has_value() const noexcept { return !error_; }
  std::exception_ptr exception() const noexcept { return error_; }
  bool cancelled() const noexcept { return Outcome<int>::is_cancelled(error_); }
  void value() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::exception_ptr error_;
};

}  // namespace uvaio
