// Name resolution on libuv's threadpool: uvaio::getaddrinfo, and a numeric
// address parsed without any lookup.

#include <cstdio>
#include <string>

#include <uvaio/uvaio.hpp>

// [snippet:lookup]
uvaio::Async<void> show_addresses() {
  // localhost comes from /etc/hosts: no network needed.
  auto answers = co_await uvaio::getaddrinfo("localhost", "8080", {.family = AF_INET, .socktype = SOCK_STREAM});
  for (const uvaio::AddrInfo& answer : answers) std::printf("localhost -> %s\n", answer.address.to_string().c_str());
  try {
    co_await uvaio::getaddrinfo("no-such-host.invalid", "80", {.flags = AI_NUMERICHOST});
  } catch (const uvaio::GaiError& e) {
    std::printf("%s\n", e.what());
  }
  const auto v6 = uvaio::SocketAddress::parse("::1", 8080);
  std::printf("parsed: %s\n", v6.to_string().c_str());
}
// [end]

int main() { uvaio::run(show_addresses()); }
