#include <doctest/doctest.h>

#include <csignal>
#include <string>
#include <utility>
#include <vector>

#include "support.hpp"

using namespace std::chrono_literals;
using uvaio::Async;
using uvaio::StreamReader;
using uvaio::StreamWriter;

TEST_SUITE_BEGIN("streams");

namespace {

// Echoes every line back until EOF.
Async<void> echo_lines(StreamReader reader, StreamWriter writer) {
  for (;;) {
    std::string line = co_await reader.readline();
    if (line.empty()) break;
    writer.write(line);
    co_await writer.drain();
  }
  writer.close();
}

Async<std::string> echo_round_trip(std::string host) {
  uvaio::Server server = co_await uvaio::start_server(echo_lines, host, 0);
  auto [reader, writer] = co_await uvaio::open_connection(host, server.port());
  writer.write("hello\n");
  writer.write("world\n");
  co_await writer.drain();
  std::string first = co_await reader.readline();
  std::string second = co_await reader.readline();
  writer.write_eof();
  std::string rest = co_await reader.read();
  writer.close();
  co_await writer.wait_closed();
  server.close();
  co_await server.wait_closed();
  co_return first + second + "|" + rest + "|" + writer.peername().host();
}

TEST_CASE("an echo server round-trips lines over IPv4 loopback") {
  CHECK(uvaio::run(echo_round_trip("127.0.0.1")) == "hello\nworld\n||127.0.0.1");
}

TEST_CASE("an echo server round-trips lines over IPv6 loopback") {
  CHECK(uvaio::run(echo_round_trip("::1")) == "hello\nworld\n||::1");
}

}  // namespace

TEST_SUITE_END();
