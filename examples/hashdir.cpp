// hashdir DIR [--jobs N]
//
// Prints the SHA-256 of every regular file under DIR (symbolic links are not
// followed), sorted by path, in sha256sum's format: `cd DIR && sha256sum -c`
// accepts the output. Progress and the summary go to stderr.
//
// What it shows: the loop thread only schedules and prints. Listing the tree
// and hashing each file run on libuv's threadpool through uvaio::to_thread; a
// few worker tasks pull files from one shared list, so at most N are in flight;
// a ticker task wakes every 100 ms and measures how late it woke, which stays
// small because nothing blocks the loop (what is left is the OS scheduler's
// delay in giving the loop thread a core). A file that cannot be read is
// reported (the exception thrown on the worker thread arrives at co_await) and
// the rest goes on.
//
// Exit status: 0 if every file was hashed, 1 if any failed, 2 on bad usage.

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <uvaio/uvaio.hpp>

#include "sha256.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr uvaio::Duration tick_period = 100ms;

struct Options {
  fs::path root;
  std::size_t jobs = 0;
};

// --- blocking work: runs on a libuv worker thread ---------------------------

struct FoundFile {
  std::string relative;  // '/'-separated, relative to DIR: the sort key and what is printed
  fs::path path;
};

struct Failure {
  std::string relative;
  std::string message;
};

struct Listing {
  std::vector<FoundFile> files;   // sorted by relative path
  std::vector<Failure> failures;  // directories that could not be read
};

// Lists DIR depth-first without following symbolic links.
Listing list_tree(const fs::path& root) {
  Listing listing;
  std::vector<std::string> directories{""};
  while (!directories.empty()) {
    const std::string directory = std::move(directories.back());
    directories.pop_back();
    const std::string shown = directory.empty() ? "." : directory;
    std::error_code error;
    fs::directory_iterator it(root / directory, error);
    const fs::directory_iterator end;
    while (!error && it != end) {
      std::string relative = directory;
      if (!relative.empty()) relative += '/';
      relative += it->path().filename().string();
      std::error_code status_error;
      const fs::file_status status = it->symlink_status(status_error);
      if (status_error) {
        listing.failures.push_back({relative, status_error.message()});
      } else if (fs::is_directory(status)) {
        directories.push_back(std::move(relative));
      } else if (fs::is_regular_file(status)) {
        listing.files.push_back({std::move(relative), it->path()});
      }
      it.increment(error);
    }
    if (error) listing.failures.push_back({shown, error.message()});
  }
  std::sort(listing.files.begin(), listing.files.end(),
            [](const FoundFile& a, const FoundFile& b) { return a.relative < b.relative; });
  return listing;
}

struct FileDigest {
  std::string hex;
  std::uint64_t bytes = 0;
};

// Reads and hashes one file. Throws std::system_error ("open: Permission
// denied"); uvaio hands the exception to the coroutine awaiting the result.
// `hashed` is shared with the loop thread, hence atomic and held by shared_ptr:
// it must outlive this call even if the awaiting task is gone.
FileDigest hash_file(const fs::path& path,
                     const std::shared_ptr<std::atomic<std::uint64_t>>& hashed) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "open");
  struct CloseOnExit {
    int fd;
    ~CloseOnExit() { ::close(fd); }
  } close_on_exit{fd};

  thread_local std::vector<unsigned char> buffer(std::size_t{256} * 1024);
  hashdir::Sha256 hash;
  FileDigest digest;
  for (;;) {
    const ssize_t got = ::read(fd, buffer.data(), buffer.size());
    if (got == 0) break;
    if (got < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "read");
    }
    hash.update(buffer.data(), static_cast<std::size_t>(got));
    digest.bytes += static_cast<std::uint64_t>(got);
    hashed->fetch_add(static_cast<std::uint64_t>(got), std::memory_order_relaxed);
  }
  digest.hex = hashdir::to_hex(hash.finish());
  return digest;
}

// --- the loop thread ----------------------------------------------------------

struct Outcome {
  std::string hex;    // empty when the file failed
  std::string error;  // the failure's message
};

// What the tasks share. Everything but `hashed` is touched on the loop thread
// only, so it needs no lock; the tasks hold it by shared_ptr, so it lives as
// long as the last of them.
struct Job {
  bool listed = false;
  std::vector<FoundFile> files;
  std::vector<Outcome> outcomes;  // outcomes[i] belongs to files[i]
  std::vector<Failure> failures;  // directories the listing could not read
  std::size_t next = 0;           // the next file a worker takes
  std::size_t done = 0;
  std::uint64_t bytes = 0;
  std::shared_ptr<std::atomic<std::uint64_t>> hashed =
      std::make_shared<std::atomic<std::uint64_t>>(0);
  uvaio::Duration worst_lateness{};
  int ticks = 0;
  bool overwrite_progress = false;
};

// [snippet:worker]
// One of N workers: takes the next file from the shared list until none is
// left, so at most N files are in flight. The hashing runs on the threadpool;
// this task waits without blocking the loop.
uvaio::Async<void> worker(std::shared_ptr<Job> job) {
  while (job->next < job->files.size()) {
    const std::size_t index = job->next++;
    try {
      FileDigest digest = co_await uvaio::to_thread(hash_file, job->files[index].path, job->hashed);
      job->outcomes[index].hex = std::move(digest.hex);
      job->bytes += digest.bytes;
    } catch (const std::exception& error) {  // thrown on the worker thread
      job->outcomes[index].error = error.what();
    }
    ++job->done;
  }
}
// [end]

void print_progress(const Job& job) {
  const double mib =
      static_cast<double>(job.hashed->load(std::memory_order_relaxed)) / (1024.0 * 1024.0);
  const char* start = job.overwrite_progress ? "\r\033[K" : "";
  const char* end = job.overwrite_progress ? "" : "\n";
  if (job.listed) {
    std::fprintf(stderr, "%shashdir: %zu/%zu files, %.1f MiB%s", start, job.done, job.files.size(),
                 mib, end);
  } else {
    std::fprintf(stderr, "%shashdir: listing the tree...%s", start, end);
  }
  std::fflush(stderr);
}

// [snippet:ticker]
// Wakes every 100 ms and records how late it woke. Lateness is what a blocked
// loop would show first: every callback and task step runs on this one thread.
uvaio::Async<void> ticker(std::shared_ptr<Job> job) {
  uvaio::Loop& loop = uvaio::get_running_loop();
  uvaio::TimePoint deadline = loop.time();
  for (;;) {
    deadline += tick_period;
    co_await uvaio::sleep(deadline - loop.time());
    job->worst_lateness = std::max(job->worst_lateness, loop.time() - deadline);
    ++job->ticks;
    print_progress(*job);
  }
}
// [end]

double to_ms(uvaio::Duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

struct Line {
  std::string relative;
  std::string text;
  bool failed;
};

// [snippet:hash_tree]
// Lists the tree on the threadpool, then hashes its files with `jobs` worker
// tasks while the ticker reports progress.
uvaio::Async<void> hash_tree(std::shared_ptr<Job> job, fs::path root, std::size_t jobs) {
  uvaio::Task<void> progress = uvaio::create_task(ticker(job), "ticker");

  Listing listing = co_await uvaio::to_thread(list_tree, std::move(root));
  job->files = std::move(listing.files);
  job->failures = std::move(listing.failures);
  job->outcomes.resize(job->files.size());
  job->listed = true;

  std::vector<uvaio::Task<void>> workers;
  for (std::size_t i = 0; i < std::min(jobs, job->files.size()); ++i) {
    workers.push_back(uvaio::create_task(worker(job), "worker-" + std::to_string(i)));
  }
  for (uvaio::Task<void>& w : workers) {
    co_await w;
  }

  progress.cancel();
  try {
    co_await progress;
  } catch (const uvaio::CancelledError&) {
    // The ticker's cancellation, unless this task is being cancelled itself.
    if (uvaio::current_task().cancelling() > 0) throw;
  }
}
// [end]

// Prints the listing sorted by path (failures on stderr) and the summary;
// returns the exit status.
int report(Job& job, uvaio::Duration elapsed, std::size_t jobs) {
  if (job.overwrite_progress) std::fputs("\r\033[K", stderr);
  std::vector<Line> lines;
  lines.reserve(job.files.size() + job.failures.size());
  for (const Failure& failure : job.failures) {
    lines.push_back({failure.relative, failure.message, true});
  }
  std::size_t hashed_files = 0;
  for (std::size_t i = 0; i < job.files.size(); ++i) {
    Outcome& outcome = job.outcomes[i];
    const bool ok = outcome.error.empty();
    if (ok) ++hashed_files;
    lines.push_back(
        {job.files[i].relative, ok ? std::move(outcome.hex) : std::move(outcome.error), !ok});
  }
  const std::size_t failed = lines.size() - hashed_files;
  std::stable_sort(lines.begin(), lines.end(),
                   [](const Line& a, const Line& b) { return a.relative < b.relative; });
  for (const Line& line : lines) {
    if (line.failed) {
      std::fflush(stdout);
      std::fprintf(stderr, "hashdir: %s: %s\n", line.relative.c_str(), line.text.c_str());
      std::fflush(stderr);
    } else {
      std::printf("%s  %s\n", line.text.c_str(), line.relative.c_str());
    }
  }
  std::fflush(stdout);

  const double mib = static_cast<double>(job.bytes) / (1024.0 * 1024.0);
  const double seconds = std::chrono::duration<double>(elapsed).count();
  std::fprintf(
      stderr,
      "hashdir: %zu files hashed, %zu failed, %.1f MiB in %.2f s (%.1f MiB/s) with --jobs %zu\n",
      hashed_files, failed, mib, seconds, seconds > 0 ? mib / seconds : 0.0, jobs);
  std::fprintf(stderr, "hashdir: worst ticker lateness %.1f ms over %d ticks of %.0f ms\n",
               to_ms(job.worst_lateness), job.ticks, to_ms(tick_period));
  return failed == 0 ? 0 : 1;
}

// [snippet:main]
uvaio::Async<int> main_coroutine(Options options) {
  uvaio::Loop& loop = uvaio::get_running_loop();
  auto job = std::make_shared<Job>();
  job->overwrite_progress = ::isatty(STDERR_FILENO) != 0;
  const uvaio::TimePoint start = loop.time();
  co_await hash_tree(job, options.root, options.jobs);
  co_return report(*job, loop.time() - start, options.jobs);
}
// [end]

// --- command line ---------------------------------------------------------------

// libuv reads UV_THREADPOOL_SIZE once, clamps it to 1..1024, and uses 4 without it.
std::size_t libuv_pool_size() {
  const char* value = std::getenv("UV_THREADPOOL_SIZE");
  if (value == nullptr) return 4;
  const long size = std::atol(value);
  return static_cast<std::size_t>(std::clamp(size, 1L, 1024L));
}

// Without a message: the help, on stdout. With one: bad usage, on stderr.
int usage(const char* message) {
  if (message != nullptr) std::fprintf(stderr, "hashdir: %s\n", message);
  std::fprintf(message != nullptr ? stderr : stdout,
               "usage: hashdir DIR [--jobs N]\n"
               "  SHA-256 of every regular file under DIR, sorted by path.\n"
               "  --jobs N   files hashed at once (default: 2 x libuv's pool size = %zu)\n",
               2 * libuv_pool_size());
  return 2;
}

bool parse_jobs(std::string_view text, std::size_t& jobs) {
  std::size_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value == 0 || value > 4096)
    return false;
  jobs = value;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  options.jobs = 2 * libuv_pool_size();
  bool have_root = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      usage(nullptr);
      return 0;
    }
    std::string_view jobs_text;
    if (arg == "--jobs" || arg == "-j") {
      if (i + 1 == argc) return usage("--jobs needs a number");
      jobs_text = argv[++i];
    } else if (arg.starts_with("--jobs=")) {
      jobs_text = arg.substr(7);
    } else if (arg.starts_with("-") && arg != "-") {
      return usage(("unknown option " + std::string(arg)).c_str());
    } else if (have_root) {
      return usage("only one DIR, please");
    } else {
      options.root = arg;
      have_root = true;
      continue;
    }
    if (!parse_jobs(jobs_text, options.jobs)) {
      return usage(
          ("--jobs needs a whole number from 1 to 4096, not '" + std::string(jobs_text) + "'")
              .c_str());
    }
  }
  if (!have_root) return usage("no DIR given");
  std::error_code error;
  if (!fs::is_directory(options.root, error)) {
    const std::string why = error ? error.message() : "not a directory";
    return usage((options.root.string() + ": " + why).c_str());
  }

  try {
    return uvaio::run(main_coroutine(std::move(options)));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hashdir: %s\n", e.what());
    return 1;
  }
}
