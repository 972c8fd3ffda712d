// Checks examples/sha256.hpp against the FIPS 180-4 test vectors, and that
// feeding the same bytes in pieces of any size gives the same digest.

#include <algorithm>
#include <cstdio>
#include <string>

#include "sha256.hpp"

namespace {

int failures = 0;

void expect(const std::string& what, const std::string& got, const std::string& want) {
  if (got == want) return;
  std::fprintf(stderr, "sha256_check: %s: got %s, want %s\n", what.c_str(), got.c_str(),
               want.c_str());
  ++failures;
}

}  // namespace

int main() {
  using hashdir::sha256_hex;
  expect("empty", sha256_hex(""),
         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  expect("abc", sha256_hex("abc"),
         "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  expect("448 bits", sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  expect("896 bits",
         sha256_hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmno"
                    "pqklmnopqrlmnopqrsmnopqrs"
                    "tnopqrstu"),
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  const std::string million(1'000'000, 'a');
  expect("a million a", sha256_hex(million),
         "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

  // Every split point of a 200-byte message crosses the 64-byte block edges.
  std::string message;
  for (int i = 0; i < 200; ++i) message.push_back(static_cast<char>('!' + i % 90));
  const std::string whole = sha256_hex(message);
  for (std::size_t piece = 1; piece <= message.size(); ++piece) {
    hashdir::Sha256 hash;
    for (std::size_t at = 0; at < message.size(); at += piece) {
      hash.update(message.data() + at, std::min(piece, message.size() - at));
    }
    expect("pieces of " + std::to_string(piece), hashdir::to_hex(hash.finish()), whole);
  }

  if (failures == 0) std::puts("sha256: all vectors match");
  return failures == 0 ? 0 : 1;
}
