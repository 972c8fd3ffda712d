// Files with uvaio::fs: an atomic settings file, a log appended to through a
// File, a directory listing, and the errors a missing file gives. Works in a
// fresh directory under /tmp, which it removes again.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <uvaio/uvaio.hpp>

namespace fs = uvaio::fs;

// [snippet:atomic]
// Readers of settings.json see the old or the new content, never half of it:
// the bytes go to a temporary file that is fsynced and renamed over the target.
uvaio::Async<void> save_settings(std::string dir, std::string json) {
  co_await fs::write_file(dir + "/settings.json", std::move(json), {.atomic = true});
}
// [end]

// [snippet:file]
// A File is an owned descriptor; each write goes to the pool and writes all
// of its bytes. Dropping the File would close it too, without blocking the loop.
uvaio::Async<void> append_log(std::string path, std::vector<std::string> lines) {
  fs::File log = co_await fs::open(path, fs::OpenFlags::append | fs::OpenFlags::create);
  for (auto& line : lines) {
    const std::size_t written = co_await log.write(line + "\n");
    (void)written;
  }
  co_await log.close();
}
// [end]

// The message with the temporary directory's name left out, so that the
// output is the same on every run.
std::string without(std::string text, const std::string& dir) {
  for (std::size_t at; (at = text.find(dir)) != std::string::npos;) text.replace(at, dir.size(), "<dir>");
  return text;
}

uvaio::Async<int> main_coroutine(std::string dir) {
  co_await fs::mkdir(dir + "/logs");
  co_await save_settings(dir, std::string(R"({"level": 1})"));
  co_await save_settings(dir, std::string(R"({"level": 2})"));
  std::vector<std::string> first_lines{"started", "settings saved"};
  co_await append_log(dir + "/logs/app.log", std::move(first_lines));
  std::vector<std::string> last_lines{"stopped"};
  co_await append_log(dir + "/logs/app.log", std::move(last_lines));

  // [snippet:read]
  std::string settings = co_await fs::read_file(dir + "/settings.json");
  std::printf("settings.json: %s\n", settings.c_str());

  // Entries come sorted by name, without "." and "..".
  const std::vector<fs::DirEntry> entries = co_await fs::scandir(dir);
  for (const fs::DirEntry& entry : entries) {
    const fs::Stat info = co_await fs::stat(dir + "/" + entry.name);
    std::printf("%-14s %s, %llu bytes\n", entry.name.c_str(), info.is_directory() ? "directory" : "file",
                info.is_directory() ? 0ULL : static_cast<unsigned long long>(info.size));
  }
  // [end]

  const std::string log = co_await fs::read_file(dir + "/logs/app.log");
  std::printf("app.log:\n%s", log.c_str());

  // [snippet:errors]
  // Failures are UvError subclasses, as Python's OSError ones; what() names the
  // operation and the path.
  try {
    const std::string missing = co_await fs::read_file(dir + "/missing.txt");
  } catch (const uvaio::FileNotFoundError& e) {
    std::printf("FileNotFoundError: %s\n", without(e.what(), dir).c_str());
  }
  // [end]

  co_await fs::remove(dir + "/logs/app.log");
  co_await fs::remove(dir + "/logs");
  co_await fs::remove(dir + "/settings.json");
  co_await fs::remove(dir);
  co_return 0;
}

int main() {
  char name[] = "/tmp/uvaio-files-XXXXXX";
  if (::mkdtemp(name) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  return uvaio::run(main_coroutine(name));
}
