// A child for tests/subprocess_test.cpp that a synchronous parent would
// deadlock with: it first writes N bytes to stderr and N bytes to stdout,
// interleaved in 64 KiB chunks (blocking whenever a pipe is full), and only
// then reads its stdin to EOF. Last it appends "stdin <bytes> <fnv1a>\n" to
// stdout, so the parent can check every byte it sent arrived.
//
//   subprocess_child flood N
//
// Plain POSIX, no uvaio: the process under test is the parent.

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// Byte i of the stream on fd 1 is 'A' + i % 26, on fd 2 'a' + i % 26
// (tests/subprocess_test.cpp builds the same).
std::string pattern(char first, std::size_t offset, std::size_t size) {
  std::string out(size, '\0');
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<char>(first + (offset + i) % 26);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || std::strcmp(argv[1], "flood") != 0) {
    std::fprintf(stderr, "usage: %s flood N\n", argv[0]);
    return 2;
  }
  const std::size_t total = std::strtoull(argv[2], nullptr, 10);
  constexpr std::size_t chunk = 64 * 1024;
  for (std::size_t done = 0; done < total; done += chunk) {
    const std::size_t n = total - done < chunk ? total - done : chunk;
    if (!write_all(2, pattern('a', done, n).data(), n)) return 3;
    if (!write_all(1, pattern('A', done, n).data(), n)) return 4;
  }
  std::uint64_t hash = 14695981039346656037ull;  // FNV-1a, 64 bits
  std::uint64_t bytes = 0;
  char buffer[chunk];
  for (;;) {
    const ssize_t n = ::read(0, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return 5;
    if (n == 0) break;
    for (ssize_t i = 0; i < n; ++i) {
      hash ^= static_cast<unsigned char>(buffer[i]);
      hash *= 1099511628211ull;
    }
    bytes += static_cast<std::uint64_t>(n);
  }
  const std::string summary = "stdin " + std::to_string(bytes) + " " + std::to_string(hash) + "\n";
  return write_all(1, summary.data(), summary.size()) ? 0 : 6;
}
