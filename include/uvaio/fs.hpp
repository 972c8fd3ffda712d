#pragma once

// Files and directories on libuv's threadpool (uv_fs_* with a callback), the
// way aiofiles / anyio.Path give them to asyncio.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "uvaio/async.hpp"
#include "uvaio/export.hpp"

namespace uvaio::fs {

// Every function below checks its arguments at the call (ValueError) and
// returns a lazy Async: nothing happens until a task on a running loop awaits
// it (so `uvaio::run(fs::read_file(p))` works; a dropped Async did nothing).
// Awaited, it submits one or more uv_fs_* requests to libuv's threadpool (with
// a callback: never the synchronous form on the loop thread), which it shares
// with to_thread() and getaddrinfo() (UV_THREADPOOL_SIZE threads, 4 by
// default). The awaiting task resumes on the loop thread. Cancelling the task
// withdraws a request still queued (uv_cancel: it never runs) and drops the
// result of one already running; whatever it opened is closed and whatever
// temporary file it made is removed. Failures are UvError subclasses from
// make_uv_error() naming the operation and the path(s), e.g.
// "open '/tmp/x/missing': ENOENT (no such file or directory)" is a
// FileNotFoundError; a path with an embedded NUL byte is a ValueError.

enum class EntryType { unknown, file, directory, link, fifo, socket, char_device, block_device };

// os.stat_result's useful part (libuv's uv_stat_t). Times are the file
// system's, to the nanosecond where it keeps them.
struct UVAIO_API Stat {
  std::uint64_t size = 0;
  std::uint32_t mode = 0;  // type and permission bits, as st_mode
  std::uint64_t inode = 0;
  std::uint64_t nlink = 0;
  std::chrono::system_clock::time_point mtime, atime, ctime;
  bool is_file() const noexcept;
  bool is_directory() const noexcept;
  bool is_symlink() const noexcept;  // only ever true from lstat()
  EntryType type() const noexcept;
};

// One name in a directory; `type` is what the directory entry says, which some
// file systems leave unknown (then stat the path).
struct DirEntry {
  std::string name;
  EntryType type = EntryType::unknown;
  friend bool operator==(const DirEntry&, const DirEntry&) = default;
};

// A bitmask (combine with |), mapped to UV_FS_O_*. read, write or both
// (read_write == read | write); append implies write. ValueError for
// combinations POSIX leaves undefined or that contradict each other: no access
// at all, truncate without write access, truncate with append, exclusive
// without create.
enum class OpenFlags : unsigned {
  read = 1u << 0,
  write = 1u << 1,
  read_write = read | write,
  create = 1u << 2,
  truncate = 1u << 3,
  append = 1u << 4,
  exclusive = 1u << 5,
};
constexpr OpenFlags operator|(OpenFlags a, OpenFlags b) noexcept {
  return static_cast<OpenFlags>(static_cast<unsigned>(a) | static_cast<unsigned>(b));
}
constexpr OpenFlags operator&(OpenFlags a, OpenFlags b) noexcept {
  return static_cast<OpenFlags>(static_cast<unsigned>(a) & static_cast<unsigned>(b));
}
constexpr bool has(OpenFlags set, OpenFlags flag) noexcept {
  return (static_cast<unsigned>(set) & static_cast<unsigned>(flag)) == static_cast<unsigned>(flag);
}

namespace detail {
struct FileCore;
}

// An open file descriptor (Python's file object, minus buffering). Move-only;
// use it from the loop thread. Each read/write is one request on the pool, so
// two tasks using one File at the same position race as two threads would.
// The descriptor stays open while a request on it is in flight, even when the
// File was closed or destroyed meanwhile (so a number reused by the kernel is
// never read or written by mistake); it is closed as soon as the last one
// ends. close() is idempotent; any other method on a closed (or moved-from)
// File throws ValueError("I/O operation on closed file") at the call. A File
// is not tied to the loop that opened it: any running loop on the thread can
// use it. Destroying an open File closes it without blocking the loop (an
// async uv_fs_close); with no running loop (or a closing one) it closes
// synchronously.
class UVAIO_API File {
 public:
  File() noexcept;
  File(File&& other) noexcept;
  File& operator=(File&& other) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();

  // At most max_bytes (and at most 64 MiB per call) from the current position;
  // "" at end of file. Several calls may be needed for a whole file.
  Async<std::string> read(std::size_t max_bytes);
  // At most max_bytes at `offset`; the position does not move.
  Async<std::string> read_at(std::size_t max_bytes, std::int64_t offset);
  // Writes all of `data` at the current position (at the end with append),
  // looping on short writes; returns data.size().
  Async<std::size_t> write(std::string data);
  // Writes all of `data` at `offset`; the position does not move.
  Async<void> write_at(std::string data, std::int64_t offset);
  // fsync(2): the data and metadata reach the device.
  Async<void> sync();
  Async<Stat> stat();
  // Closes the descriptor and reports close(2)'s error; a no-op when closed.
  // With another request still in flight on this File, the descriptor is
  // closed when that one ends and close() returns at once.
  Async<void> close();

  bool is_open() const noexcept { return core_ != nullptr; }
  // -1 once closed.
  int fd() const noexcept;
  // The path it was opened with ("" for a default-constructed File).
  const std::string& path() const noexcept;

 private:
  friend struct detail::FileCore;
  explicit File(std::shared_ptr<detail::FileCore> core) noexcept;
  std::shared_ptr<detail::FileCore> core_;
  std::string path_;
};

// open(2). mode applies when the file is created (minus the umask); ValueError
// for a meaningless flag combination or a mode outside 0..07777.
UVAIO_API Async<File> open(std::string path, OpenFlags flags = OpenFlags::read, int mode = 0644);

// The whole file: open, fstat, read until end of file (the size from fstat is
// only a hint: files grow and shrink, and /proc files say 0), close. The
// descriptor is closed on every path, cancellation included.
UVAIO_API Async<std::string> read_file(std::string path);

struct WriteOptions {
  // Write to a new temporary file beside the target (".<name>.tmp-<unique>"),
  // fsync it and rename(2) it over the target: readers see the old content or
  // the new one, never a mix. The temporary is removed when anything fails or
  // the task is cancelled. The new file gets `mode` (minus the umask), not
  // the old file's permissions; the directory itself is not fsynced.
  bool atomic = false;
  int mode = 0644;
};
// Creates or truncates `path` and writes all of `data`.
UVAIO_API Async<void> write_file(std::string path, std::string data, WriteOptions options = {});

UVAIO_API Async<Stat> stat(std::string path);
// As stat, but a symbolic link is described itself, not followed.
UVAIO_API Async<Stat> lstat(std::string path);
// The directory's entries without "." and "..", sorted by name (byte order;
// libuv promises no order).
UVAIO_API Async<std::vector<DirEntry>> scandir(std::string path);
// mode is masked by the umask, as mkdir(2) does.
UVAIO_API Async<void> mkdir(std::string path, int mode = 0777);
// A file, a link or an empty directory, like C's remove().
UVAIO_API Async<void> remove(std::string path);
// rename(2): replaces `to` if it exists (and is not a non-empty directory).
UVAIO_API Async<void> rename(std::string from, std::string to);

}  // namespace uvaio::fs
