#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

using namespace std::chrono_literals;
namespace fs = uvaio::fs;
using test_support::TempDir;

TEST_SUITE_BEGIN("fs");

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void put(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

std::size_t open_fd_count() {
  std::size_t count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++count;
  return count;
}

// Deterministic bytes that are not all alike, so that a misplaced chunk shows.
std::string pattern(std::size_t size) {
  std::string out(size, '\0');
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  return out;
}

uvaio::Async<std::string> write_then_read(std::string path, std::string data, fs::WriteOptions options) {
  co_await fs::write_file(path, std::move(data), options);
  co_return co_await fs::read_file(path);
}

// What making and running make()'s Async throws, as "<type>: <what>" for the
// types fs throws (argument errors are thrown by the call, the rest when run).
template <class F>
std::string failure_of(F make) {
  try {
    (void)uvaio::run(make());
  } catch (const uvaio::FileNotFoundError& e) {
    return std::string("FileNotFoundError: ") + e.what();
  } catch (const uvaio::FileExistsError& e) {
    return std::string("FileExistsError: ") + e.what();
  } catch (const uvaio::IsADirectoryError& e) {
    return std::string("IsADirectoryError: ") + e.what();
  } catch (const uvaio::NotADirectoryError& e) {
    return std::string("NotADirectoryError: ") + e.what();
  } catch (const uvaio::UvError& e) {
    return std::string("UvError: ") + e.what();
  } catch (const uvaio::ValueError& e) {
    return std::string("ValueError: ") + e.what();
  } catch (const uvaio::RuntimeError& e) {
    return std::string("RuntimeError: ") + e.what();
  } catch (const uvaio::CancelledError& e) {
    return std::string("CancelledError: ") + e.message();
  }
  return "<no exception>";
}

TEST_CASE("write_file and read_file round-trip empty, small and 5 MiB files, plain and atomic") {
  TempDir dir;
  for (const bool atomic : {false, true}) {
    CAPTURE(atomic);
    for (const std::size_t size : {std::size_t{0}, std::size_t{13}, std::size_t{5} << 20}) {
      CAPTURE(size);
      const std::string data = pattern(size);
      const std::string path = dir / "data.bin";
      CHECK(uvaio::run(write_then_read(path, data, {.atomic = atomic})) == data);
      CHECK(slurp(path) == data);
      CHECK(dir.names() == std::vector<std::string>{"data.bin"});
    }
  }
}

TEST_CASE("write_file truncates a longer file and creates it with the mode asked for") {
  TempDir dir;
  const std::string path = dir / "f";
  put(path, "a much longer previous content");
  CHECK(uvaio::run(write_then_read(path, "short", {})) == "short");
  const mode_t old_mask = ::umask(0);
  uvaio::run(fs::write_file(dir / "g", "x", {.mode = 0600}));
  uvaio::run(fs::write_file(dir / "h", "x", {.atomic = true, .mode = 0640}));
  ::umask(old_mask);
  CHECK((std::filesystem::status(dir / "g").permissions() == std::filesystem::perms(0600)));
  CHECK((std::filesystem::status(dir / "h").permissions() == std::filesystem::perms(0640)));
}

TEST_CASE("read_file reads all of a file whose stat size is 0, such as /proc/self/status") {
  const std::string status = uvaio::run(fs::read_file("/proc/self/status"));
  CHECK(status.find("Pid:\t" + std::to_string(::getpid()) + "\n") != std::string::npos);
  // The last field the kernel prints: the whole file was read, not one chunk.
  CHECK(status.find("nonvoluntary_ctxt_switches:") != std::string::npos);
  CHECK(status.back() == '\n');
}

TEST_CASE("read_file and open name the path and the libuv error in typed exceptions") {
  TempDir dir;
  put(dir / "file", "x");
  CHECK(failure_of([&] { return fs::read_file(dir / "missing"); }) ==
        "FileNotFoundError: open '" + (dir / "missing") + "': ENOENT (no such file or directory)");
  CHECK(failure_of([&] { return fs::read_file(dir.path()); }) ==
        "IsADirectoryError: read '" + dir.path() + "': EISDIR (illegal operation on a directory)");
  CHECK(failure_of([&] { return fs::stat(dir / "file/below"); }) ==
        "NotADirectoryError: stat '" + (dir / "file/below") + "': ENOTDIR (not a directory)");
  CHECK(failure_of([&] { return fs::open(dir / "file", fs::OpenFlags::write | fs::OpenFlags::create | fs::OpenFlags::exclusive); }) ==
        "FileExistsError: open '" + (dir / "file") + "': EEXIST (file already exists)");
  // PermissionError is not tested: the CI runs as root, which file modes do not stop.
}

TEST_CASE("open refuses meaningless flag combinations and modes with ValueError") {
  using F = fs::OpenFlags;
  TempDir dir;
  const std::string p = dir / "f";
  const auto refused = [&](F flags, int mode = 0644) { return failure_of([&] { return fs::open(p, flags, mode); }); };
  CHECK(refused(F::create) == "ValueError: open '" + p + "': flags include neither read, write nor append");
  CHECK(refused(F::read | F::truncate) == "ValueError: open '" + p + "': truncate needs write access");
  CHECK(refused(F::write | F::truncate | F::append) ==
        "ValueError: open '" + p + "': truncate and append contradict each other");
  CHECK(refused(F::write | F::exclusive) == "ValueError: open '" + p + "': exclusive needs create");
  CHECK(refused(static_cast<F>(1u << 9) | F::read) == "ValueError: open '" + p + "': unknown OpenFlags bits");
  CHECK(refused(F::write | F::create, 010000) == "ValueError: open '" + p + "': mode 4096 is outside 0..07777");
  CHECK(failure_of([&] { return fs::stat(std::string("a\0b", 3)); }) == "ValueError: stat: embedded null byte in path");
  CHECK(failure_of([&] { return fs::write_file(dir.path() + "/", "x", {.atomic = true}); }) ==
        "ValueError: write_file '" + dir.path() + "/': an atomic write needs a file name");
  CHECK(dir.names().empty());
}

TEST_CASE("fs calls do nothing until awaited, so they can be made before the loop runs") {
  TempDir dir;
  auto make = fs::mkdir(dir / "made");
  {
    auto dropped = fs::write_file(dir / "never", "x");
    (void)dropped;
  }
  CHECK(dir.names().empty());
  uvaio::run(std::move(make));
  CHECK(dir.names() == std::vector<std::string>{"made"});
}

TEST_CASE("a File reads and writes at its position and at offsets, and stat sees its size") {
  TempDir dir;
  const std::string path = dir / "f";
  auto body = [](std::string path) -> uvaio::Async<std::vector<std::string>> {
    using F = fs::OpenFlags;
    std::vector<std::string> seen;
    fs::File file = co_await fs::open(path, F::read_write | F::create | F::truncate, 0600);
    seen.push_back(file.is_open() && file.fd() >= 0 ? "open" : "closed");
    seen.push_back(file.path() == path ? "path" : "wrong path");
    const std::size_t written = co_await file.write("hello world");
    seen.push_back(std::to_string(written));
    // The position is at the end now.
    const std::string at_end = co_await file.read(100);
    seen.push_back("[" + at_end + "]");
    const std::string world = co_await file.read_at(5, 6);
    seen.push_back(world);
    co_await file.write_at("W", 6);
    const std::string all = co_await file.read_at(100, 0);
    seen.push_back(all);
    const fs::Stat info = co_await file.stat();
    seen.push_back(std::to_string(info.size) + (info.is_file() ? " file" : " not a file"));
    co_await file.sync();
    co_await file.close();
    seen.push_back(file.is_open() ? "open" : "closed");

    fs::File again = co_await fs::open(path);
    const std::string first = co_await again.read(5);
    const std::string rest = co_await again.read(100);
    const std::string end = co_await again.read(100);
    seen.push_back(first + "|" + rest + "|" + end + "|");
    co_await again.close();

    fs::File appender = co_await fs::open(path, F::append);
    const std::size_t appended = co_await appender.write("!");
    (void)appended;
    co_await appender.close();
    co_return seen;
  };
  CHECK(uvaio::run(body(path)) == std::vector<std::string>{"open", "path", "11", "[]", "world", "hello World",
                                                           "11 file", "closed", "hello| World||"});
  CHECK(slurp(path) == "hello World!");
}

TEST_CASE("closing a File twice is fine, and any other use of a closed File is a ValueError") {
  TempDir dir;
  put(dir / "f", "x");
  auto body = [](std::string path) -> uvaio::Async<std::vector<std::string>> {
    std::vector<std::string> seen;
    fs::File file = co_await fs::open(path);
    co_await file.close();
    co_await file.close();
    seen.push_back(std::to_string(file.fd()));
    seen.push_back(file.path() == path ? "path kept" : "path lost");
    for (int use = 0; use < 5; ++use) {
      try {
        if (use == 0) (void)file.read(1);
        if (use == 1) (void)file.read_at(1, 0);
        if (use == 2) (void)file.write("x");
        if (use == 3) (void)file.stat();
        if (use == 4) (void)file.sync();
        seen.push_back("no error");
      } catch (const uvaio::ValueError& e) {
        seen.push_back(e.what());
      }
    }
    fs::File moved_from = co_await fs::open(path);
    fs::File taker = std::move(moved_from);
    try {
      (void)moved_from.read(1);
    } catch (const uvaio::ValueError& e) {
      seen.push_back(std::string("moved-from: ") + e.what());
    }
    try {
      (void)taker.read_at(1, -1);
    } catch (const uvaio::ValueError& e) {
      seen.push_back(e.what());
    }
    co_return seen;
  };
  const std::string closed = "I/O operation on closed file";
  CHECK(uvaio::run(body(dir / "f")) ==
        std::vector<std::string>{"-1", "path kept", closed, closed, closed, closed, closed, "moved-from: " + closed,
                                 "read_at '" + (dir / "f") + "': negative offset -1"});
}

TEST_CASE("closing a File while another task reads from it lets the read finish and closes the descriptor after it") {
  TempDir dir;
  put(dir / "f", "contents");
  const std::size_t before = open_fd_count();
  auto body = [](std::string path) -> uvaio::Async<std::string> {
    fs::File file = co_await fs::open(path);
    auto reader = uvaio::create_task(file.read(100));
    co_await uvaio::sleep(0s);
    co_await file.close();
    const std::string state = file.is_open() ? "open" : "closed";
    const std::string got = co_await reader;
    co_return state + ", read '" + got + "'";
  };
  CHECK(uvaio::run(body(dir / "f")) == "closed, read 'contents'");
  CHECK(open_fd_count() == before);
}

TEST_CASE("descriptors are closed when a File is dropped, outlives its loop, or its task is cancelled at any await") {
  TempDir dir;
  put(dir / "f", pattern(1 << 20));
  const std::size_t before = open_fd_count();

  // Dropped open, on the loop: closed without blocking (the loop's close waits for it).
  auto drop = [](std::string path) -> uvaio::Async<void> {
    for (int i = 0; i < 10; ++i) {
      fs::File file = co_await fs::open(path);
      (void)file;
    }
  };
  uvaio::run(drop(dir / "f"));
  CHECK(open_fd_count() == before);

  // Kept past the loop: closed synchronously when destroyed.
  auto keep = [](std::string path) -> uvaio::Async<fs::File> { co_return co_await fs::open(path); };
  {
    fs::File kept = uvaio::run(keep(dir / "f"));
    CHECK(kept.is_open());
    CHECK(open_fd_count() == before + 1);
    // Another loop can use it.
    CHECK(uvaio::run(kept.read(3)) == pattern(3));
  }
  CHECK(open_fd_count() == before);

  // Cancelled after 0..11 loop iterations: in open, fstat, a read or close.
  auto cancel_after = [](std::string path, int yields) -> uvaio::Async<std::string> {
    auto task = uvaio::create_task(fs::read_file(path));
    co_await test_support::yield_times(yields);
    task.cancel("stop");
    try {
      const std::string content = co_await task;
      co_return "read " + std::to_string(content.size());
    } catch (const uvaio::CancelledError& e) {
      co_return std::string("cancelled: ") + e.message();
    }
  };
  int cancelled = 0;
  for (int yields = 0; yields < 12; ++yields) {
    CAPTURE(yields);
    const std::string outcome = uvaio::run(cancel_after(dir / "f", yields));
    if (outcome == "cancelled: stop") ++cancelled;
    CHECK((outcome == "cancelled: stop" || outcome == "read 1048576"));
    CHECK(open_fd_count() == before);
  }
  CHECK(cancelled > 0);
}

TEST_CASE("an atomic write_file replaces the content and leaves no temporary file, even when it fails") {
  TempDir dir;
  put(dir / "target", "old");
  uvaio::run(fs::write_file(dir / "target", "new", {.atomic = true}));
  CHECK(slurp(dir / "target") == "new");
  CHECK(dir.names() == std::vector<std::string>{"target"});

  CHECK(failure_of([&] { return fs::write_file(dir / "missing/target", "x", {.atomic = true}); }) ==
        "FileNotFoundError: write_file '" + (dir / "missing/target") +
            "' (atomic, create): ENOENT (no such file or directory)");
  // The rename fails (a directory is in the way): the temporary is removed.
  REQUIRE(std::filesystem::create_directory(dir / "blocked"));
  put(dir / "blocked/inside", "x");
  CHECK(failure_of([&] { return fs::write_file(dir / "blocked", "x", {.atomic = true}); }) ==
        "IsADirectoryError: write_file '" + (dir / "blocked") +
            "' (atomic, rename): EISDIR (illegal operation on a directory)");
  CHECK(dir.names() == std::vector<std::string>{"blocked", "target"});
}

TEST_CASE("a cancelled atomic write_file leaves the old or the whole new content and no temporary file") {
  TempDir dir;
  const std::string target = dir / "target";
  const std::string big = pattern(std::size_t{16} << 20);
  const std::size_t fds_before = open_fd_count();
  auto cancel_after = [](std::string path, std::string data, int yields) -> uvaio::Async<std::string> {
    auto task = uvaio::create_task(fs::write_file(path, std::move(data), {.atomic = true}));
    co_await test_support::yield_times(yields);
    task.cancel("stop");
    try {
      co_await task;
      co_return "written";
    } catch (const uvaio::CancelledError& e) {
      co_return std::string("cancelled: ") + e.message();
    }
  };
  int cancelled = 0;
  for (int yields = 0; yields < 16; ++yields) {
    CAPTURE(yields);
    put(target, "old");
    const std::string outcome = uvaio::run(cancel_after(target, big, yields));
    if (outcome == "cancelled: stop") ++cancelled;
    CHECK((outcome == "cancelled: stop" || outcome == "written"));
    const std::string now = slurp(target);
    CHECK((now == "old" || now == big));
    if (outcome == "written") CHECK(now == big);
    CHECK(dir.names() == std::vector<std::string>{"target"});
    CHECK(open_fd_count() == fds_before);
  }
  CHECK(cancelled > 0);
}

TEST_CASE("scandir lists names and types sorted by name, without . and ..") {
  TempDir dir;
  put(dir / "b.txt", "x");
  put(dir / "a.txt", "x");
  REQUIRE(std::filesystem::create_directory(dir / "sub"));
  std::filesystem::create_symlink("a.txt", dir / "link");
  const auto entries = uvaio::run(fs::scandir(dir.path()));
  CHECK(entries == std::vector<fs::DirEntry>{{"a.txt", fs::EntryType::file},
                                             {"b.txt", fs::EntryType::file},
                                             {"link", fs::EntryType::link},
                                             {"sub", fs::EntryType::directory}});
  CHECK(uvaio::run(fs::scandir(dir / "sub")).empty());
  CHECK(failure_of([&] { return fs::scandir(dir / "none"); }) ==
        "FileNotFoundError: scandir '" + (dir / "none") + "': ENOENT (no such file or directory)");
}

TEST_CASE("stat and lstat report sizes, types and times") {
  TempDir dir;
  put(dir / "f", "12345");
  std::filesystem::create_symlink("f", dir / "link");
  const auto start = std::chrono::system_clock::now() - 5s;
  const fs::Stat file = uvaio::run(fs::stat(dir / "f"));
  CHECK(file.size == 5);
  CHECK(file.is_file());
  CHECK_FALSE(file.is_directory());
  CHECK(file.nlink == 1);
  CHECK(file.inode != 0);
  CHECK(file.mtime >= start);
  CHECK(file.mtime <= std::chrono::system_clock::now() + 5s);
  const fs::Stat followed = uvaio::run(fs::stat(dir / "link"));
  CHECK(followed.is_file());
  CHECK(followed.inode == file.inode);
  const fs::Stat link = uvaio::run(fs::lstat(dir / "link"));
  CHECK(link.is_symlink());
  CHECK(link.type() == fs::EntryType::link);
  const fs::Stat directory = uvaio::run(fs::stat(dir.path()));
  CHECK(directory.is_directory());
  CHECK(failure_of([&] { return fs::lstat(dir / "none"); }) ==
        "FileNotFoundError: lstat '" + (dir / "none") + "': ENOENT (no such file or directory)");
}

TEST_CASE("mkdir, remove and rename do what their POSIX namesakes do and name both paths on failure") {
  TempDir dir;
  auto body = [](std::string base) -> uvaio::Async<void> {
    co_await fs::mkdir(base + "/d");
    co_await fs::write_file(base + "/d/f", "x");
    co_await fs::rename(base + "/d/f", base + "/g");
    co_await fs::remove(base + "/d");
    co_await fs::mkdir(base + "/e");
  };
  uvaio::run(body(dir.path()));
  CHECK(dir.names() == std::vector<std::string>{"e", "g"});
  CHECK(slurp(dir / "g") == "x");
  put(dir / "e/inside", "x");
  CHECK(failure_of([&] { return fs::mkdir(dir / "e"); }) ==
        "FileExistsError: mkdir '" + (dir / "e") + "': EEXIST (file already exists)");
  CHECK(failure_of([&] { return fs::remove(dir / "e"); }) ==
        "UvError: remove '" + (dir / "e") + "': ENOTEMPTY (directory not empty)");
  CHECK(failure_of([&] { return fs::remove(dir / "none"); }) ==
        "FileNotFoundError: remove '" + (dir / "none") + "': ENOENT (no such file or directory)");
  CHECK(failure_of([&] { return fs::rename(dir / "none", dir / "other"); }) == "FileNotFoundError: rename '" + (dir / "none") +
                                                                   "' to '" + (dir / "other") +
                                                                   "': ENOENT (no such file or directory)");
  uvaio::run(fs::remove(dir / "g"));
  CHECK(dir.names() == std::vector<std::string>{"e"});
}

TEST_CASE("a task cancelled while its fs request is queued behind a saturated pool gets CancelledError and the request never runs") {
  TempDir dir;
  // Every pool thread is held by a job queued before the mkdir, so the mkdir
  // is still queued when the task is cancelled: uv_cancel takes it back.
  auto body = [](std::string path) -> uvaio::Async<std::string> {
    std::atomic<bool> release{false};
    std::vector<uvaio::Future<void>> blockers;
    for (unsigned i = 0; i < uvaio::libuv_threadpool_size(); ++i) {
      blockers.push_back(uvaio::to_thread([&release] {
        while (!release.load()) std::this_thread::sleep_for(1ms);
      }));
    }
    auto task = uvaio::create_task(fs::mkdir(path));
    co_await uvaio::sleep(0s);
    task.cancel("enough");
    std::string outcome;
    try {
      co_await task;
      outcome = "made";
    } catch (const uvaio::CancelledError& e) {
      outcome = std::string("cancelled: ") + e.what();
    }
    release = true;
    for (auto& b : blockers) co_await b;
    // Anything uv_cancel missed would have run by now: the pool is free and
    // this stat queues behind it.
    try {
      const fs::Stat info = co_await fs::stat(path);
      (void)info;
      outcome += ", directory exists";
    } catch (const uvaio::FileNotFoundError&) {
      outcome += ", no directory";
    }
    co_return outcome;
  };
  CHECK(uvaio::run(body(dir / "never")) == "cancelled: enough, no directory");
}

TEST_CASE("closing the loop with fs requests in flight frees them, closes every descriptor and removes temporaries") {
  TempDir dir;
  put(dir / "target", "old");
  put(dir / "source", pattern(std::size_t{4} << 20));
  const std::size_t fds_before = open_fd_count();
  const std::string big = pattern(std::size_t{8} << 20);
  test_support::LogCapture log;
  for (int yields = 0; yields < 8; ++yields) {
    CAPTURE(yields);
    const std::size_t reported_before = log.count("Task was destroyed but it is pending!");
    uvaio::Loop loop;
    std::vector<uvaio::Task<std::string>> readers;
    std::vector<uvaio::Task<void>> writers;
    auto start = [](const TempDir& d, const std::string& data, int n, std::vector<uvaio::Task<std::string>>& r,
                    std::vector<uvaio::Task<void>>& w) -> uvaio::Async<void> {
      r.push_back(uvaio::create_task(fs::read_file(d / "source")));
      w.push_back(uvaio::create_task(fs::write_file(d / "target", data, {.atomic = true})));
      w.push_back(uvaio::create_task(fs::write_file(d / "plain", data)));
      co_await test_support::yield_times(n);
    };
    loop.run_until_complete(start(dir, big, yields, readers, writers));
    loop.close();
    // Each task the close destroyed is reported once, as pending.
    CHECK(log.count("Task was destroyed but it is pending!") - reported_before ==
          static_cast<std::size_t>(std::count_if(readers.begin(), readers.end(), [](auto& t) { return t.cancelled(); }) +
                                   std::count_if(writers.begin(), writers.end(), [](auto& t) { return t.cancelled(); })));
    for (auto& t : readers) CHECK(t.done());
    for (auto& t : writers) CHECK(t.done());
    CHECK(open_fd_count() == fds_before);
    const auto names = dir.names();
    CHECK(std::all_of(names.begin(), names.end(), [](const std::string& n) { return n.find(".tmp-") == std::string::npos; }));
    const std::string now = slurp(dir / "target");
    CHECK((now == "old" || now == big));
  }
}

}  // namespace

TEST_SUITE_END();
