// Runs the fuzz target once on every file named on the command line, and on
// every regular file (sorted by name) in every directory named there: the seed
// corpus and the regression inputs replay in builds without libFuzzer (g++,
// TSan). A violated invariant aborts inside LLVMFuzzerTestOneInput; reaching
// the end means every input passed.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

bool replay(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "fuzz_replay: cannot read %s\n", file.c_str());
    return false;
  }
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::fprintf(stderr, "fuzz_replay: %s (%zu bytes)\n", file.c_str(), bytes.size());
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int inputs = 0;
  bool ok = true;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path arg(argv[i]);
    std::error_code ec;
    if (std::filesystem::is_directory(arg, ec)) {
      std::vector<std::filesystem::path> files;
      for (const auto& entry : std::filesystem::directory_iterator(arg)) {
        // README.md and other notes live beside the inputs.
        if (entry.is_regular_file() && entry.path().extension() != ".md") files.push_back(entry.path());
      }
      std::sort(files.begin(), files.end());
      for (const auto& file : files) {
        ok = replay(file) && ok;
        ++inputs;
      }
    } else {
      ok = replay(arg) && ok;
      ++inputs;
    }
  }
  std::printf("fuzz_replay: %d inputs replayed, %s\n", inputs, ok ? "all passed" : "some could not be read");
  return ok ? 0 : 1;
}
