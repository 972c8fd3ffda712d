#pragma once

// Where a task or future was created, for debug-mode reports ("Task was
// destroyed but it is pending!", "exception was never retrieved").
//
// std::source_location would do, but clang 14 with libstdc++ 12 lacks the
// builtin it needs (__builtin_source_location, clang 15), and uvaio's headers
// must give every compiler the same layout. The __builtin_FILE family works in
// g++ and clang alike and, used as default arguments, reads the caller's
// position. Trivially copyable; the strings are the compiler's literals, so a
// SourceLocation stays valid for the whole program.

namespace uvaio {

class SourceLocation {
 public:
  constexpr SourceLocation() noexcept = default;

  // The position of the call whose default argument this is.
  static constexpr SourceLocation current(const char* file = __builtin_FILE(),
                                          const char* function = __builtin_FUNCTION(),
                                          unsigned line = __builtin_LINE()) noexcept {
    SourceLocation where;
    where.file_ = file;
    where.function_ = function;
    where.line_ = line;
    return where;
  }

  // Empty strings and line 0 for a default-constructed (unknown) location.
  constexpr const char* file_name() const noexcept { return file_; }
  constexpr const char* function_name() const noexcept { return function_; }
  constexpr unsigned line() const noexcept { return line_; }
  constexpr bool known() const noexcept { return line_ != 0; }

 private:
  const char* file_ = "";
  const char* function_ = "";
  unsigned line_ = 0;
};

}  // namespace uvaio
