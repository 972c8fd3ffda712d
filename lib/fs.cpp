#include "uvaio/fs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <utility>

#include "io.hpp"

// Ownership, in one place:
// - A request is an FsOp (io.hpp's RequestOp): libuv holds it until on_*_done
//   ran, so the buffer a read fills or a write sends lives in the request
//   (FsRequest::buffer), not in the coroutine frame a cancellation destroys.
// - A descriptor is owned by a FileCore from the moment libuv's open callback
//   runs (the future's value owns it, so a result nobody takes closes itself).
//   Every request on a descriptor holds the FileCore, so close(2) happens after
//   the last of them ended: the kernel cannot hand the number to another open
//   while a read or write still uses it.
// - Closing without a task to report to (a File destroyed, a dropped result)
//   submits uv_fs_close with a callback that only frees the request; with no
//   running loop, or a closing one whose requests will not be polled again,
//   it calls close(2) on the spot.

namespace uvaio::fs {

namespace {

using uvaio::detail::LoopImpl;

// One read or write asks for at most this much (libuv's uv_buf_t length is an
// unsigned int; Linux moves at most 0x7ffff000 bytes per call anyway).
constexpr std::size_t max_chunk = std::size_t{64} << 20;
// read_file's reads once the size from fstat is used up (or was 0).
constexpr std::size_t read_file_chunk = std::size_t{256} << 10;

void on_detached_done(uv_fs_t* req) {
  uv_fs_req_cleanup(req);
  delete req;
}

// A request whose outcome nobody awaits: on the running loop if it still
// polls; otherwise at once, on this thread.
bool submit_detached(int (*submit)(uv_loop_t*, uv_fs_t*, LoopImpl*, const void*), const void* arg) noexcept {
  LoopImpl* loop = uvaio::detail::running_loop_impl();
  if (loop == nullptr || loop->closing()) return false;
  auto* req = new (std::nothrow) uv_fs_t{};
  if (req == nullptr) return false;
  if (submit(&loop->uv_, req, loop, arg) == 0) return true;
  uv_fs_req_cleanup(req);
  delete req;
  return false;
}

void close_detached(uv_file fd) noexcept {
  if (fd < 0) return;
  const bool queued = submit_detached(
      [](uv_loop_t* uv, uv_fs_t* req, LoopImpl*, const void* arg) {
        return uv_fs_close(uv, req, *static_cast<const uv_file*>(arg), on_detached_done);
      },
      &fd);
  if (!queued) ::close(fd);
}

void unlink_detached(const std::string& path) noexcept {
  if (path.empty()) return;
  const bool queued = submit_detached(
      [](uv_loop_t* uv, uv_fs_t* req, LoopImpl*, const void* arg) {
        return uv_fs_unlink(uv, req, static_cast<const std::string*>(arg)->c_str(), on_detached_done);
      },
      &path);
  if (!queued) ::unlink(path.c_str());
}

}  // namespace

namespace detail {

struct FileCore {
  FileCore(uv_file descriptor, std::string file_path, std::string remove) noexcept
      : fd(descriptor), path(std::move(file_path)), remove_on_drop(std::move(remove)) {}
  FileCore(const FileCore&) = delete;
  FileCore& operator=(const FileCore&) = delete;
  ~FileCore() {
    close_detached(fd);
    unlink_detached(remove_on_drop);
  }

  static FileCore* of(const File& file) noexcept { return file.core_.get(); }
  static File make(std::shared_ptr<FileCore> core) noexcept { return File(std::move(core)); }

  uv_file fd;
  std::string path;
  // A temporary file (write_file with atomic) whose open result may be
  // dropped: it is removed with the descriptor, until its user takes over.
  std::string remove_on_drop;
};

}  // namespace detail

namespace {

using detail::FileCore;

// The request and what must outlive it (see the top of the file). uv_fs_t
// first, so that RequestOp's uv_cancel() sees a uv_req_t.
struct FsRequest : uv_fs_t {
  FsRequest() noexcept : uv_fs_t{} {}
  FsRequest(const FsRequest&) = delete;
  FsRequest& operator=(const FsRequest&) = delete;
  // Frees what libuv allocated for the request (path copies, scandir's
  // entries); safe on one that was never submitted (all zero).
  ~FsRequest() { uv_fs_req_cleanup(this); }

  std::string buffer;
  std::shared_ptr<FileCore> file;
  // For open: the path the File keeps, and a temporary to remove if dropped.
  std::string path;
  std::string remove_on_drop;
};

using FsOp = uvaio::detail::RequestOp<std::int64_t, FsRequest>;
using OpenOp = uvaio::detail::RequestOp<std::shared_ptr<FileCore>, FsRequest>;

void on_fs_done(uv_fs_t* raw) {
  auto* request = static_cast<FsRequest*>(raw);
  FsOp* op = FsOp::from(request);
  const auto result = static_cast<std::int64_t>(raw->result);
  if (op->deliverable()) {
    if (result < 0) {
      op->fail(static_cast<int>(result), op->what);
    } else {
      op->set_value(result);
    }
  } else if (raw->fs_type == UV_FS_CLOSE && result == UV_ECANCELED) {
    // The awaiting task was cancelled before the close ran: the descriptor
    // is still open and nobody else will close it.
    close_detached(raw->file);
  }
  op->finished();
}

void on_open_done(uv_fs_t* raw) {
  auto* request = static_cast<FsRequest*>(raw);
  OpenOp* op = OpenOp::from(request);
  const auto result = static_cast<std::int64_t>(raw->result);
  if (result >= 0) {
    // Owned from here: if nobody takes it (the task was cancelled, the loop
    // is closing), the FileCore's destructor closes it.
    std::shared_ptr<FileCore> core;
    try {
      core = std::make_shared<FileCore>(static_cast<uv_file>(result), std::move(request->path),
                                        std::move(request->remove_on_drop));
    } catch (...) {
      close_detached(static_cast<uv_file>(result));
      unlink_detached(request->remove_on_drop);
      op->fail(std::current_exception());
    }
    if (core && op->deliverable()) op->set_value(std::move(core));
  } else if (op->deliverable()) {
    op->fail(static_cast<int>(result), op->what);
  }
  op->finished();
}

// One request and the caller's reference to its future. The request stays
// readable (statbuf, scandir entries, buffer) while this lives.
template <class Op>
class Call {
 public:
  using value_type = typename Op::value_type;
  Call(LoopImpl& loop, std::string what) : op_(new Op(loop)), future_(uvaio::detail::adopt, op_) {
    op_->what = std::move(what);
  }
  FsRequest& req() noexcept { return op_->req; }
  void start(int rc) noexcept { op_->start(rc); }
  Future<value_type>& future() noexcept { return future_; }

 private:
  Op* op_;
  Future<value_type> future_;
};
using FsCall = Call<FsOp>;

std::string quoted(const std::string& path) { return "'" + path + "'"; }

void check_path(const char* operation, const std::string& path) {
  if (path.find('\0') != std::string::npos) {
    throw ValueError(std::string(operation) + ": embedded null byte in path");
  }
}

void check_mode(const char* operation, const std::string& path, int mode) {
  if (mode < 0 || mode > 07777) {
    throw ValueError(std::string(operation) + " " + quoted(path) + ": mode " + std::to_string(mode) +
                     " is outside 0..07777");
  }
}

std::chrono::system_clock::time_point to_time_point(const uv_timespec_t& t) {
  return std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
      std::chrono::seconds(t.tv_sec) + std::chrono::nanoseconds(t.tv_nsec)));
}

Stat to_stat(const uv_stat_t& s) {
  Stat out;
  out.size = s.st_size;
  out.mode = static_cast<std::uint32_t>(s.st_mode);
  out.inode = s.st_ino;
  out.nlink = s.st_nlink;
  out.mtime = to_time_point(s.st_mtim);
  out.atime = to_time_point(s.st_atim);
  out.ctime = to_time_point(s.st_ctim);
  return out;
}

EntryType to_entry_type(uv_dirent_type_t type) {
  switch (type) {
    case UV_DIRENT_FILE: return EntryType::file;
    case UV_DIRENT_DIR: return EntryType::directory;
    case UV_DIRENT_LINK: return EntryType::link;
    case UV_DIRENT_FIFO: return EntryType::fifo;
    case UV_DIRENT_SOCKET: return EntryType::socket;
    case UV_DIRENT_CHAR: return EntryType::char_device;
    case UV_DIRENT_BLOCK: return EntryType::block_device;
    case UV_DIRENT_UNKNOWN: break;
  }
  return EntryType::unknown;
}

int to_uv_flags(const std::string& path, OpenFlags flags) {
  const auto fail = [&](const std::string& why) { throw ValueError("open " + quoted(path) + ": " + why); };
  constexpr unsigned known = static_cast<unsigned>(OpenFlags::read_write | OpenFlags::create | OpenFlags::truncate |
                                                   OpenFlags::append | OpenFlags::exclusive);
  if ((static_cast<unsigned>(flags) & ~known) != 0) fail("unknown OpenFlags bits");
  const bool read = has(flags, OpenFlags::read);
  const bool write = has(flags, OpenFlags::write) || has(flags, OpenFlags::append);
  if (!read && !write) fail("flags include neither read, write nor append");
  if (has(flags, OpenFlags::truncate) && !write) fail("truncate needs write access");
  if (has(flags, OpenFlags::truncate) && has(flags, OpenFlags::append)) fail("truncate and append contradict each other");
  if (has(flags, OpenFlags::exclusive) && !has(flags, OpenFlags::create)) fail("exclusive needs create");
  int out = read && write ? UV_FS_O_RDWR : write ? UV_FS_O_WRONLY : UV_FS_O_RDONLY;
  if (has(flags, OpenFlags::create)) out |= UV_FS_O_CREAT;
  if (has(flags, OpenFlags::truncate)) out |= UV_FS_O_TRUNC;
  if (has(flags, OpenFlags::append)) out |= UV_FS_O_APPEND;
  if (has(flags, OpenFlags::exclusive)) out |= UV_FS_O_EXCL;
  return out;
}

// --- the coroutines (arguments are checked by the public functions) ----------

Async<File> open_impl(std::string path, int uv_flags, int mode, std::string what, bool remove_if_dropped) {
  LoopImpl& loop = uvaio::detail::io_loop("open");
  Call<OpenOp> call(loop, std::move(what));
  FsRequest& req = call.req();
  req.path = path;
  if (remove_if_dropped) req.remove_on_drop = path;
  call.start(uv_fs_open(&loop.uv_, &req, path.c_str(), uv_flags, mode, on_open_done));
  std::shared_ptr<FileCore> core = co_await std::move(call.future());
  co_return FileCore::make(std::move(core));
}

Async<std::string> read_impl(std::shared_ptr<FileCore> core, std::size_t max_bytes, std::int64_t offset) {
  if (max_bytes == 0) co_return std::string();
  LoopImpl& loop = uvaio::detail::io_loop("File.read");
  FsCall call(loop, "read " + quoted(core->path));
  FsRequest& req = call.req();
  req.buffer.resize(std::min(max_bytes, max_chunk));
  req.file = core;
  // libuv copies the uv_buf_t array into the request; the bytes stay in req.buffer.
  uv_buf_t buf = uv_buf_init(req.buffer.data(), static_cast<unsigned>(req.buffer.size()));
  call.start(uv_fs_read(&loop.uv_, &req, core->fd, &buf, 1, offset, on_fs_done));
  const std::int64_t count = co_await call.future();
  std::string data = std::move(req.buffer);
  data.resize(static_cast<std::size_t>(count));
  co_return data;
}

Async<std::size_t> write_impl(std::shared_ptr<FileCore> core, std::string data, std::int64_t offset) {
  LoopImpl& loop = uvaio::detail::io_loop("File.write");
  const std::size_t total = data.size();
  std::size_t written = 0;
  while (written < total) {
    FsCall call(loop, "write " + quoted(core->path));
    FsRequest& req = call.req();
    // The request owns the bytes until its callback, whatever happens to us.
    req.buffer = std::move(data);
    req.file = core;
    const std::size_t chunk = std::min(total - written, max_chunk);
    uv_buf_t buf = uv_buf_init(req.buffer.data() + written, static_cast<unsigned>(chunk));
    const std::int64_t at = offset < 0 ? -1 : offset + static_cast<std::int64_t>(written);
    call.start(uv_fs_write(&loop.uv_, &req, core->fd, &buf, 1, at, on_fs_done));
    const std::int64_t count = co_await call.future();
    data = std::move(req.buffer);
    // write(2) returns 0 for a non-empty buffer only on odd devices; looping
    // would never end.
    if (count == 0) throw_uv_error(UV_EIO, "write " + quoted(core->path) + " (wrote nothing)");
    written += static_cast<std::size_t>(count);
  }
  co_return total;
}

Async<void> sync_impl(std::shared_ptr<FileCore> core) {
  LoopImpl& loop = uvaio::detail::io_loop("File.sync");
  FsCall call(loop, "fsync " + quoted(core->path));
  call.req().file = core;
  call.start(uv_fs_fsync(&loop.uv_, &call.req(), core->fd, on_fs_done));
  const std::int64_t result = co_await call.future();
  (void)result;
}

Async<Stat> fstat_impl(std::shared_ptr<FileCore> core) {
  LoopImpl& loop = uvaio::detail::io_loop("File.stat");
  FsCall call(loop, "fstat " + quoted(core->path));
  call.req().file = core;
  call.start(uv_fs_fstat(&loop.uv_, &call.req(), core->fd, on_fs_done));
  const std::int64_t result = co_await call.future();
  (void)result;
  co_return to_stat(call.req().statbuf);
}

Async<void> close_impl(std::shared_ptr<FileCore> core) {
  // Requests still in flight hold the descriptor; the last one closes it.
  if (core.use_count() > 1) co_return;
  LoopImpl& loop = uvaio::detail::io_loop("File.close");
  FsCall call(loop, "close " + quoted(core->path));
  const uv_file fd = std::exchange(core->fd, -1);
  core.reset();
  call.start(uv_fs_close(&loop.uv_, &call.req(), fd, on_fs_done));
  const std::int64_t result = co_await call.future();
  (void)result;
}

Async<Stat> stat_impl(std::string path, bool follow) {
  LoopImpl& loop = uvaio::detail::io_loop(follow ? "stat" : "lstat");
  FsCall call(loop, (follow ? "stat " : "lstat ") + quoted(path));
  call.start(follow ? uv_fs_stat(&loop.uv_, &call.req(), path.c_str(), on_fs_done)
                    : uv_fs_lstat(&loop.uv_, &call.req(), path.c_str(), on_fs_done));
  const std::int64_t result = co_await call.future();
  (void)result;
  co_return to_stat(call.req().statbuf);
}

Async<std::vector<DirEntry>> scandir_impl(std::string path) {
  LoopImpl& loop = uvaio::detail::io_loop("scandir");
  FsCall call(loop, "scandir " + quoted(path));
  call.start(uv_fs_scandir(&loop.uv_, &call.req(), path.c_str(), 0, on_fs_done));
  const std::int64_t count = co_await call.future();
  std::vector<DirEntry> entries;
  entries.reserve(static_cast<std::size_t>(count));
  uv_dirent_t entry;
  while (uv_fs_scandir_next(&call.req(), &entry) != UV_EOF) {
    entries.push_back(DirEntry{entry.name, to_entry_type(entry.type)});
  }
  std::sort(entries.begin(), entries.end(), [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
  co_return entries;
}

Async<void> mkdir_impl(std::string path, int mode) {
  LoopImpl& loop = uvaio::detail::io_loop("mkdir");
  FsCall call(loop, "mkdir " + quoted(path));
  call.start(uv_fs_mkdir(&loop.uv_, &call.req(), path.c_str(), mode, on_fs_done));
  const std::int64_t result = co_await call.future();
  (void)result;
}

Async<void> unlink_impl(std::string path, std::string what) {
  LoopImpl& loop = uvaio::detail::io_loop("remove");
  FsCall call(loop, std::move(what));
  call.start(uv_fs_unlink(&loop.uv_, &call.req(), path.c_str(), on_fs_done));
  const std::int64_t result = co_await call.future();
  (void)result;
}

Async<void> rmdir_impl(std::string path, std::string what) {
  LoopImpl& loop = uvaio::detail::io_loop("remove");
  FsCall call(loop, std::move(what));
  call.start(uv_fs_rmdir(&loop.uv_, &call.req(), path.c_str(), on_fs_done));
  const std::int64_t result = co_await call.future();
  (void)result;
}

Async<void> remove_impl(std::string path) {
  const std::string what = "remove " + quoted(path);
  int code = 0;
  try {
    co_await unlink_impl(path, what);
  } catch (const UvError& e) {
    code = e.code();
    // unlink(2) refuses directories with EISDIR on Linux, EPERM elsewhere
    // (as glibc's remove() knows); anything else is the answer.
    if (code != UV_EISDIR && code != UV_EPERM) throw;
  }
  if (code != 0) co_await rmdir_impl(path, what);
}

Async<void> rename_impl(std::string from, std::string to, std::string what) {
  LoopImpl& loop = uvaio::detail::io_loop("rename");
  FsCall call(loop, std::move(what));
  call.start(uv_fs_rename(&loop.uv_, &call.req(), from.c_str(), to.c_str(), on_fs_done));
  const std::int64_t result = co_await call.future();
  (void)result;
}

Async<std::string> read_file_impl(std::string path) {
  File file = co_await open_impl(path, UV_FS_O_RDONLY, 0, "open " + quoted(path), false);
  const Stat info = co_await file.stat();
  // One read of size + 1 finds the end of an unchanged file at once; the
  // size is only a hint (it changes under us, /proc files report 0).
  std::size_t want = info.size > 0 ? static_cast<std::size_t>(std::min<std::uint64_t>(info.size + 1, max_chunk))
                                   : read_file_chunk;
  std::string content;
  for (;;) {
    std::string chunk = co_await file.read(want);
    if (chunk.empty()) break;
    if (content.empty()) {
      content = std::move(chunk);
    } else {
      content += chunk;
    }
    want = std::max(want, read_file_chunk);
  }
  co_await file.close();
  co_return content;
}

// A name no other writer picks: the process id, a per-process counter and 64
// random bits, so that two processes (or loops) never collide either.
std::string unique_suffix() {
  static std::atomic<std::uint64_t> counter{0};
  thread_local std::mt19937_64 random{std::random_device{}()};
  char text[64];
  std::snprintf(text, sizeof text, "%ld-%llu-%016llx", static_cast<long>(::getpid()),
                static_cast<unsigned long long>(counter.fetch_add(1)), static_cast<unsigned long long>(random()));
  return text;
}

// Removes the temporary file of an atomic write_file unless disarmed: the path
// taken when the frame is destroyed (the loop closed under the task) or the
// awaited cleanup itself failed.
struct TemporaryFile {
  std::string path;
  TemporaryFile() = default;
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;
  ~TemporaryFile() { unlink_detached(path); }
};

std::exception_ptr with_target(std::exception_ptr error, const std::string& target, const char* step) {
  try {
    std::rethrow_exception(error);
  } catch (const UvError& e) {
    return make_uv_error(e.code(), "write_file " + quoted(target) + " (atomic, " + step + ")");
  } catch (...) {
    return error;
  }
}

Async<void> write_plain(std::string path, std::string data, int mode) {
  File file = co_await open_impl(path, UV_FS_O_WRONLY | UV_FS_O_CREAT | UV_FS_O_TRUNC, mode, "open " + quoted(path),
                                 false);
  const std::size_t written = co_await file.write(std::move(data));
  (void)written;
  co_await file.close();
}

Async<void> write_atomic(std::string path, std::string data, int mode) {
  const std::size_t slash = path.rfind('/');
  const std::string directory = slash == std::string::npos ? std::string() : path.substr(0, slash + 1);
  const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  TemporaryFile temporary;
  File file;
  const char* step = "create";
  std::exception_ptr failure;
  try {
    // O_EXCL: never write into a file someone else made; retry on a clash.
    for (int attempt = 1;; ++attempt) {
      const std::string candidate = directory + "." + name + ".tmp-" + unique_suffix();
      std::exception_ptr clash;
      try {
        File opened = co_await open_impl(candidate, UV_FS_O_WRONLY | UV_FS_O_CREAT | UV_FS_O_EXCL, mode,
                                         "open " + quoted(candidate), true);
        // From here the guard (and the cleanup below) removes it.
        FileCore::of(opened)->remove_on_drop.clear();
        temporary.path = candidate;
        file = std::move(opened);
      } catch (const FileExistsError&) {
        if (attempt == 8) throw;
        clash = std::current_exception();
      }
      if (!clash) break;
    }
    step = "write";
    const std::size_t written = co_await file.write(std::move(data));
    (void)written;
    step = "fsync";
    co_await file.sync();
    step = "close";
    co_await file.close();
    step = "rename";
    co_await rename_impl(temporary.path, path, "rename " + quoted(temporary.path) + " to " + quoted(path));
    temporary.path.clear();
    co_return;
  } catch (...) {
    failure = std::current_exception();
  }
  // Failed or cancelled: remove the temporary before the caller hears of it,
  // so that it finds the directory as it was. ENOENT means the rename ran
  // after all (its result was dropped): then the target is complete and new.
  if (!temporary.path.empty()) {
    try {
      co_await unlink_impl(temporary.path, "unlink " + quoted(temporary.path));
      temporary.path.clear();
    } catch (const FileNotFoundError&) {
      temporary.path.clear();
    } catch (...) {
      // Cancelled again, or unlink failed: the guard tries once more.
    }
  }
  std::rethrow_exception(with_target(failure, path, step));
}


Async<void> already_closed() { co_return; }

}  // namespace

// --- Stat ------------------------------------------------------------------------

bool Stat::is_file() const noexcept { return type() == EntryType::file; }
bool Stat::is_directory() const noexcept { return type() == EntryType::directory; }
bool Stat::is_symlink() const noexcept { return type() == EntryType::link; }

EntryType Stat::type() const noexcept {
  switch (mode & S_IFMT) {
    case S_IFREG: return EntryType::file;
    case S_IFDIR: return EntryType::directory;
    case S_IFLNK: return EntryType::link;
    case S_IFIFO: return EntryType::fifo;
    case S_IFSOCK: return EntryType::socket;
    case S_IFCHR: return EntryType::char_device;
    case S_IFBLK: return EntryType::block_device;
    default: return EntryType::unknown;
  }
}

// --- File ------------------------------------------------------------------------

File::File() noexcept = default;
File::File(std::shared_ptr<detail::FileCore> core) noexcept : core_(std::move(core)), path_(core_->path) {}
File::File(File&& other) noexcept : core_(std::move(other.core_)), path_(std::move(other.path_)) {}
File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    core_ = std::move(other.core_);
    path_ = std::move(other.path_);
  }
  return *this;
}
File::~File() = default;

int File::fd() const noexcept { return core_ ? core_->fd : -1; }
const std::string& File::path() const noexcept { return path_; }

namespace {
const std::shared_ptr<FileCore>& open_core(const std::shared_ptr<FileCore>& core) {
  if (!core) throw ValueError("I/O operation on closed file");
  return core;
}
}  // namespace

Async<std::string> File::read(std::size_t max_bytes) { return read_impl(open_core(core_), max_bytes, -1); }

Async<std::string> File::read_at(std::size_t max_bytes, std::int64_t offset) {
  const auto& core = open_core(core_);
  if (offset < 0) throw ValueError("read_at " + quoted(path_) + ": negative offset " + std::to_string(offset));
  return read_impl(core, max_bytes, offset);
}

Async<std::size_t> File::write(std::string data) {
  return write_impl(open_core(core_), std::move(data), -1);
}

Async<void> File::write_at(std::string data, std::int64_t offset) {
  const auto& core = open_core(core_);
  if (offset < 0) throw ValueError("write_at " + quoted(path_) + ": negative offset " + std::to_string(offset));
  auto body = [](std::shared_ptr<FileCore> c, std::string d, std::int64_t at) -> Async<void> {
    const std::size_t written = co_await write_impl(std::move(c), std::move(d), at);
    (void)written;
  };
  return body(core, std::move(data), offset);
}

Async<void> File::sync() { return sync_impl(open_core(core_)); }
Async<Stat> File::stat() { return fstat_impl(open_core(core_)); }

Async<void> File::close() {
  if (!core_) return already_closed();
  return close_impl(std::move(core_));
}

// --- the free functions ------------------------------------------------------------

Async<File> open(std::string path, OpenFlags flags, int mode) {
  check_path("open", path);
  const int uv_flags = to_uv_flags(path, flags);
  check_mode("open", path, mode);
  std::string what = "open " + quoted(path);
  return open_impl(std::move(path), uv_flags, mode, std::move(what), false);
}

Async<std::string> read_file(std::string path) {
  check_path("read_file", path);
  return read_file_impl(std::move(path));
}

Async<void> write_file(std::string path, std::string data, WriteOptions options) {
  check_path("write_file", path);
  check_mode("write_file", path, options.mode);
  if (options.atomic) {
    if (path.empty() || path.back() == '/') {
      throw ValueError("write_file " + quoted(path) + ": an atomic write needs a file name");
    }
    return write_atomic(std::move(path), std::move(data), options.mode);
  }
  return write_plain(std::move(path), std::move(data), options.mode);
}

Async<Stat> stat(std::string path) {
  check_path("stat", path);
  return stat_impl(std::move(path), true);
}

Async<Stat> lstat(std::string path) {
  check_path("lstat", path);
  return stat_impl(std::move(path), false);
}

Async<std::vector<DirEntry>> scandir(std::string path) {
  check_path("scandir", path);
  return scandir_impl(std::move(path));
}

Async<void> mkdir(std::string path, int mode) {
  check_path("mkdir", path);
  check_mode("mkdir", path, mode);
  return mkdir_impl(std::move(path), mode);
}

Async<void> remove(std::string path) {
  check_path("remove", path);
  return remove_impl(std::move(path));
}

Async<void> rename(std::string from, std::string to) {
  check_path("rename", from);
  check_path("rename", to);
  std::string what = "rename " + quoted(from) + " to " + quoted(to);
  return rename_impl(std::move(from), std::move(to), std::move(what));
}

}  // namespace uvaio::fs
