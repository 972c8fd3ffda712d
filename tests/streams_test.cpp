#include <doctest/doctest.h>

#include <algorithm>
#include <csignal>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <uv.h>

#include "support.hpp"

using namespace std::chrono_literals;
using test_support::starts_with;
using uvaio::Async;
using uvaio::Server;
using uvaio::StreamReader;
using uvaio::StreamWriter;

TEST_SUITE_BEGIN("streams");

namespace {

// What an awaited operation threw: "<what()>" when it was an E, a marker otherwise.
template <class E, class T>
Async<std::string> error_of(Async<T> operation) {
  std::string outcome = "<no exception>";
  try {
    co_await std::move(operation);
  } catch (const E& e) {
    outcome = e.what();
  } catch (const std::exception& e) {
    outcome = std::string("<other exception: ") + e.what() + ">";
  }
  co_return outcome;
}

// Handlers are plain lambdas forwarding to these coroutines (coroutine
// lambdas must not capture).

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

// Sends `text` as it is and closes.
Async<void> send_and_close(std::string text, StreamReader /*reader*/, StreamWriter writer) {
  writer.write(text);
  co_await writer.drain();
  writer.close();
}

uvaio::ClientHandler sender(std::string text) {
  return [text](StreamReader r, StreamWriter w) { return send_and_close(text, std::move(r), std::move(w)); };
}

Async<std::string> echo_round_trip(std::string host) {
  Server server = co_await uvaio::start_server(echo_lines, host, 0);
  auto [reader, writer] = co_await uvaio::open_connection(host, server.port());
  writer.write("hello\n");
  writer.write("world\n");
  co_await writer.drain();
  std::string first = co_await reader.readline();
  std::string second = co_await reader.readline();
  writer.write_eof();
  std::string rest = co_await reader.read();
  const bool eof = reader.at_eof();
  writer.close();
  co_await writer.wait_closed();
  server.close();
  co_await server.wait_closed();
  co_return first + second + "|" + rest + "|" + (eof ? "eof" : "more") + "|" + writer.peername().host() + "|" +
      writer.sockname().host() + "|" + (writer.peername().port() == server.sockets().size() ? "?" : "");
}

TEST_CASE("an echo server round-trips lines over IPv4 loopback") {
  CHECK(uvaio::run(echo_round_trip("127.0.0.1")) == "hello\nworld\n||eof|127.0.0.1|127.0.0.1|");
}

TEST_CASE("an echo server round-trips lines over IPv6 loopback") {
  CHECK(uvaio::run(echo_round_trip("::1")) == "hello\nworld\n||eof|::1|::1|");
}

TEST_CASE("open_connection's peer and local addresses are the server's and the client's") {
  auto body = []() -> Async<bool> {
    Server server = co_await uvaio::start_server(echo_lines, "127.0.0.1", 0);
    auto [reader, writer] = co_await uvaio::open_connection("127.0.0.1", server.port());
    const bool ok = writer.peername() == server.sockets().at(0) && writer.sockname().host() == "127.0.0.1" &&
                    writer.sockname().port() != server.port() && writer.sockname().port() != 0;
    co_return ok;
  };
  CHECK(uvaio::run(body()));
}

TEST_CASE("readexactly at EOF raises IncompleteReadError with the partial data, which is consumed") {
  auto body = []() -> Async<std::string> {
    Server server = co_await uvaio::start_server(sender("abc"), "127.0.0.1", 0);
    auto [reader, writer] = co_await uvaio::open_connection("127.0.0.1", server.port());
    std::string outcome;
    try {
      std::string got = co_await reader.readexactly(10);
      outcome = "read " + got;
    } catch (const uvaio::IncompleteReadError& e) {
      outcome = std::string(e.what()) + "|" + e.partial() + "|" + std::to_string(e.expected().value_or(0));
    }
    std::string after = co_await reader.read();
    co_return outcome + "|" + after + "|" + (reader.at_eof() ? "eof" : "more");
  };
  CHECK(uvaio::run(body()) == "3 bytes read on a total of 10 expected bytes|abc|10||eof");
}

TEST_CASE("read(n) returns at most n bytes, read(0) none, and read() the rest until EOF") {
  auto body = []() -> Async<std::string> {
    Server server = co_await uvaio::start_server(sender("0123456789"), "127.0.0.1", 0);
    auto [reader, writer] = co_await uvaio::open_connection("127.0.0.1", server.port());
    std::string zero = co_await reader.read(0);
    std::string exact = co_await reader.readexactly(4);
    std::string rest = co_await reader.read();
    std::string after = co_await reader.read(5);
    co_return "[" + zero + "][" + exact + "][" + rest + "][" + after + "]";
  };
  CHECK(uvaio::run(body()) == "[][0123][456789][]");
}

// Writes its parts one at a time, 20 ms apart, so that they (almost always)
// arrive in separate reads; the results do not depend on how they arrive.
Async<void> send_parts(std::vector<std::string> parts, StreamReader /*reader*/, StreamWriter writer) {
  for (const auto& part : parts) {
    writer.write(part);
    co_await writer.drain();
    co_await uvaio::sleep(20ms);
  }
  writer.close();
}

TEST_CASE("readuntil and readline find separators split across packets, and readuntil fails at EOF") {
  auto body = []() -> Async<std::vector<std::string>> {
    std::vector<std::string> parts{"abc\r", "\ndef\r\n", "line one\nline ", "two\n", "tail"};
    auto handler = [parts](StreamReader r, StreamWriter w) { return send_parts(parts, std::move(r), std::move(w)); };
    Server server = co_await uvaio::start_server(handler, "127.0.0.1", 0);
    auto [reader, writer] = co_await uvaio::open_connection("127.0.0.1", server.port());
    std::vector<std::string> got;
    {
      std::string value = co_await reader.readuntil("\r\n");
      got.push_back(std::move(value));
    }
    {
      std::string value = co_await reader.readuntil("\r\n");
      got.push_back(std::move(value));
    }
    {
      std::string value = co_await reader.readline();
      got.push_back(std::move(value));
    }
    {
      std::string value = co_await reader.readline();
      got.push_back(std::move(value));
    }
    try {
      std::string none = co_await reader.readuntil("\n");
      got.push_back("no error: " + none);
    } catch (const uvaio::IncompleteReadError& e) {
      got.push_back(std::string(e.what()) + " partial=" + e.partial() + " expected=" +
                    (e.expected() ? "set" : "none"));
    }
    {
      std::string value = co_await reader.readline();
      got.push_back(std::move(value));
    }
    co_return got;
  };
  const std::vector<std::string> expected{"abc\r\n", "def\r\n", "line one\n", "line two\n",
                                          "4 bytes read on a total of undefined expected bytes partial=tail "
                                          "expected=none",
                                          ""};
  CHECK(uvaio::run(body()) == expected);
}

TEST_CASE("readline returns the partial last line at EOF") {
  auto body = []() -> Async<std::string> {
    Server server = co_await uvaio::start_server(sender("first\nlast"), "127.0.0.1", 0);
    auto [reader, writer] = co_await uvaio::open_connection("127.0.0.1", server.port());
    std::string a = co_await reader.readline();
    std::string b = co_await reader.readline();
    std::string c = co_await reader.readline();
    co_return a + "|" + b + "|" + c;
  };
  CHECK(uvaio::run(body()) == "first\n|last|");
}

// Sends `first`, then waits for the client's "next\n" before each following part.
Async<void> send_on_request(std::vector<std::string> parts, StreamReader reader, StreamWriter writer) {
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) {
      std::string request = co_await reader.readline();
      if (request != "next\n") break;
    }
    writer.write(parts[i]);
    co_await writer.drain();
  }
  std::string until_eof = co_await reader.read();
  writer.close();
}

TEST_CASE("readuntil past the limit raises LimitOverrunError and keeps the buffer; readline drops the line") {
  auto body = []() -> Async<std::vector<std::string>> {
    // Each part is one small write: it arrives in one piece on loopback.
    std::vector<std::string> parts{std::string(40, 'a'), std::string(20, 'b') + "\n", std::string(20, 'c') + "\nok\n",
                                   std::string(30, 'd')};
    auto handler = [parts](StreamReader r, StreamWriter w) {
      return send_on_request(parts, std::move(r), std::move(w));
    };
    Server server = co_await uvaio::start_server(handler, "127.0.0.1", 0);
    uvaio::ConnectOptions options;
    options.limits.limit = 16;
    auto [reader, writer] = co_await uvaio::open_connection("127.0.0.1", server.port(), options);
    std::vector<std::string> got;
    try {
      std::string line = co_await reader.readuntil("\n");
      got.push_back("no error: " + line);
    } catch (const uvaio::LimitOverrunError& e) {
      got.push_back(std::string(e.what()) + " consumed=" + std::to_string(e.consumed()));
    }
    {
      std::string value = co_await reader.readexactly(40);
      got.push_back(std::move(value));
    }  // the buffer was kept
    writer.write("next\n");
    try {
      std::string line = co_await reader.readuntil("\n");
      got.push_back("no error: " + line);
    } catch (const uvaio::LimitOverrunError& e) {
      got.push_back(std::string(e.what()) + " consumed=" + std::to_string(e.consumed()));
    }
    {
      std::string value = co_await reader.readexactly(21);
      got.push_back(std::move(value));
    }
    writer.write("next\n");
    try {
      std::string line = co_await reader.readline();
      got.push_back("no error: " + line);
    } catch (const uvaio::ValueError& e) {
      got.push_back(std::string("ValueError: ") + e.what());
    }
    {
      std::string value = co_await reader.readline();
      got.push_back(std::move(value));
    }  // the long line went, separator included
    writer.write("next\n");
    try {
      std::string line = co_await reader.readline();
      got.push_back("no error: " + line);
    } catch (const uvaio::ValueError& e) {
      got.push_back(std::string("ValueError: ") + e.what());
    }
    writer.write_eof();
    std::string rest = co_await reader.read();
    got.push_back("rest=" + rest);
    co_return got;
  };
  const std::vector<std::string> expected{
      "Separator is not found, and chunk exceed the limit consumed=40",
      std::string(40, 'a'),
      "Separator is found, but chunk is longer than limit consumed=20",
      std::string(20, 'b') + "\n",
      "ValueError: Separator is found, but chunk is longer than limit",
      "ok\n",
      "ValueError: Separator is not found, and chunk exceed the limit",
      "rest=",
  };
  CHECK(uvaio::run(body()) == expected);
}

TEST_CASE("readuntil refuses an empty separator with ValueError") {
  auto body = []() -> Async<std::string> {
    Server server = co_await uvaio::start_server(echo_lines, "127.0.0.1", 0);
    auto [reader, writer] = co_await uvaio::open_connection("127.0.0.1", server.port());
    co_return co_await error_of<uvaio::ValueError>(reader.readuntil(""));
  };
  CHECK(uvaio::run(body()) == "Separator should be at least one-byte string");
}

// Reads everything until EOF and answers with its size.
Async<void> count_bytes(StreamReader reader, StreamWriter writer) {
  std::string all = co_await reader.read();
  writer.write(std::to_string(all.size()) + "\n");
  co_await writer.drain();
  writer.close();
}

TEST_CASE("read() on the server side returns everything once the client wrote EOF") {
  auto body = []() -> Async<std::string> {
    Server server = co_await uvaio::start_server(count_bytes, "127.0.0.1", 0);
    auto [reader, writer] = co_await uvaio::open_connection("127.0.0.1", server.port());
    CHECK(writer.can_write_eof());
    for (int i = 0; i < 100; ++i) writer.write(std::string(1000, 'x'));
    writer.write_eof();
    CHECK_FALSE(writer.can_write_eof());
    std::string answer = co_await reader.readline();
    co_return answer;
  };
  CHECK(uvaio::run(body()) == "100000\n");
}

TEST_CASE("write after write_eof or close raises RuntimeError") {
  auto body = []() -> Async<std::vector<std::string>> {
    Server server = co_await uvaio::start_server(echo_lines, "127.0.0.1", 0);
    auto [reader, writer] = co_await uvaio::open_connection("127.0.0.1", server.port());
    std::vector<std::string> got;
    writer.write_eof();
    try {
      writer.write("x");
    } catch (const uvaio::RuntimeError& e) {
      got.push_back(e.what());
    }
    writer.close();
    CHECK(writer.is_closing());
    try {
      writer.write("x");
    } catch (const uvaio::RuntimeError& e) {
      got.push_back(e.what());
    }
    {
      std::string value = co_await error_of<uvaio::ConnectionResetError>(writer.drain());
      got.push_back(std::move(value));
    }
    co_await writer.wait_closed();
    co_return got;
  };
  const auto got = uvaio::run(body());
  REQUIRE(got.size() == 3);
  CHECK(got[0] == "Cannot call write() after write_eof()");
  CHECK(got[1] == "Cannot call write() after the stream was closed");
  CHECK(starts_with(got[2], "drain on 127.0.0.1:"));
  CHECK(got[2].find(": connection lost: ECONNRESET (connection reset by peer)") != std::string::npos);
}

// --- back-pressure ------------------------------------------------------------------

struct SlowReader {
  uvaio::Event start_reading;
  std::vector<std::string> events;
  std::size_t received = 0;
};

Async<void> read_when_told(SlowReader* context, StreamReader reader, StreamWriter writer) {
  co_await context->start_reading.wait();
  context->events.push_back("reader started");
  for (;;) {
    std::string block = co_await reader.read(1 << 20);
    if (block.empty()) break;
    context->received += block.size();
  }
  writer.close();
}

Async<void> drain_and_record(StreamWriter writer, std::vector<std::string>* events) {
  co_await writer.drain();
  events->push_back("drain returned");
}

TEST_CASE("drain waits while the peer does not read 64 MiB, and returns once it does") {
  auto body = []() -> Async<std::string> {
    SlowReader context;
    auto handler = [&context](StreamReader r, StreamWriter w) {
      return read_when_told(&context, std::move(r), std::move(w));
    };
    Server server = co_await uvaio::start_server(handler, "127.0.0.1", 0);
    auto [reader, writer] = co_await uvaio::open_connection("127.0.0.1", server.port());
    const std::string block(1 << 20, 'z');
    for (int i = 0; i < 64; ++i) writer.write(block);
    // The kernel's buffers and the server's (2 x 64 KiB before it stops
    // reading) hold a few MiB at most: most of the 64 MiB stays in libuv.
    const bool queued_above_high = writer.write_buffer_size() > 32u * 1024 * 1024;
    auto drain = uvaio::create_task(drain_and_record(writer, &context.events));
    for (int i = 0; i < 50; ++i) co_await uvaio::sleep(1ms);
    const bool suspended = !drain.done() && writer.write_buffer_size() > 64 * 1024;
    context.start_reading.set();
    co_await drain;
    const bool drained_low = writer.write_buffer_size() <= 16 * 1024;
    writer.close();
    co_await writer.wait_closed();
    server.close();
    co_await server.wait_closed();
    std::string order;
    for (const auto& e : context.events) order += e + ";";
    co_return order + (queued_above_high ? "queued;" : "not queued;") + (suspended ? "suspended;" : "not suspended;") +
        (drained_low ? "low;" : "high;") + std::to_string(context.received);
  };
  CHECK(uvaio::run(body()) == "reader started;drain returned;queued;suspended;low;67108864");
}

TEST_CASE("the reader stops reading past twice its limit and resumes as the buffer drains") {
  // 1 MiB through a reader with a 1 KiB limit: everything arrives, in order.
  auto body = []() -> Async<bool> {
    std::string data;
    for (int i = 0; i < (1 << 20); ++i) data.push_back(static_cast<char>('a' + i % 23));
    Server server = co_await uvaio::start_server(sender(data), "127.0.0.1", 0);
    uvaio::ConnectOptions options;
    options.limits.limit = 1024;
    auto [reader, writer] = co_await uvaio::open_connection("127.0.0.1", server.port(), options);
    co_await uvaio::sleep(20ms);  // lets the buffer fill up to where reading pauses
    std::string got;
    for (;;) {
      std::string block = co_await reader.read(700);
      if (block.empty()) break;
      got += block;
    }
    co_return got == data;
  };
  CHECK(uvaio::run(body()));
}

// --- failures -----------------------------------------------------------------------

TEST_CASE("connecting to a port nobody listens on raises ConnectionRefusedError naming the address") {
  auto body = []() -> Async<std::string> {
    co_return co_await error_of<uvaio::ConnectionRefusedError>(uvaio::open_connection("127.0.0.1", 1));
  };
  CHECK(uvaio::run(body()) == "connect 127.0.0.1:1: ECONNREFUSED (connection refused)");
}

TEST_CASE("open_connection to a name that does not resolve raises GaiError") {
  auto body = []() -> Async<std::string> {
    co_return co_await error_of<uvaio::GaiError>(uvaio::open_connection("host.invalid", 80));
  };
  CHECK(starts_with(uvaio::run(body()), "getaddrinfo 'host.invalid' port '80': EAI_"));
}

Async<void> close_at_once(StreamReader /*reader*/, StreamWriter writer) {
  writer.close();
  co_return;
}

// Writes (and drains) until the vanished peer makes that fail; the first
// write usually goes out and is answered with a reset.
Async<std::string> write_until_failure(StreamWriter writer) {
  std::string outcome = "<never failed>";
  for (int i = 0; i < 1000; ++i) {
    try {
      writer.write("ping\n");
      co_await writer.drain();
    } catch (const uvaio::BrokenPipeError& e) {
      outcome = std::string("BrokenPipeError: ") + e.what();
    } catch (const uvaio::ConnectionResetError& e) {
      outcome = std::string("ConnectionResetError: ") + e.what();
    }
    if (outcome != "<never failed>") break;
    co_await uvaio::sleep(1ms);
  }
  co_return outcome;
}

TEST_CASE("a peer that closed gives EOF to reads and a connection error to writes, not SIGPIPE") {
  auto body = []() -> Async<std::vector<std::string>> {
    Server server = co_await uvaio::start_server(close_at_once, "127.0.0.1", 0);
    auto [reader, writer] = co_await uvaio::open_connection("127.0.0.1", server.port());
    std::vector<std::string> got;
    std::string read = co_await reader.read();
    got.push_back("read=[" + read + "]");
    {
      std::string value = co_await write_until_failure(writer);
      got.push_back(std::move(value));
    }
    got.push_back(writer.is_closing() ? "closing" : "open");
    // The error stays: the next write raises it again.
    try {
      writer.write("again");
      got.push_back("wrote");
    } catch (const uvaio::ConnectionError& e) {
      got.push_back(std::string("again: ") + e.what());
    }
    co_return got;
  };
  const auto got = uvaio::run(body());
  REQUIRE(got.size() == 4);
  CHECK(got[0] == "read=[]");
  const bool named = (starts_with(got[1], "BrokenPipeError: write to 127.0.0.1:") &&
                      got[1].find("EPIPE (broken pipe)") != std::string::npos) ||
                     (starts_with(got[1], "ConnectionResetError: ") && got[1].find("127.0.0.1:") != std::string::npos &&
                      got[1].find("ECONNRESET") != std::string::npos);
  CHECK_MESSAGE(named, got[1]);
  CHECK(got[2] == "closing");
  CHECK(starts_with(got[3], "again: "));
  struct sigaction current {};
  REQUIRE(sigaction(SIGPIPE, nullptr, &current) == 0);
  const bool ignored = current.sa_handler == SIG_IGN;
  CHECK(ignored);
}

struct Aborter {
  Server server;
  uvaio::Event connected;
};

Async<void> wait_forever(Aborter* context, StreamReader reader, StreamWriter /*writer*/) {
  context->connected.set();
  std::string data = co_await reader.read();
}

TEST_CASE("a peer that aborts (reset) makes the pending read raise ConnectionResetError") {
  auto body = []() -> Async<std::vector<std::string>> {
    Aborter context;
    auto handler = [&context](StreamReader r, StreamWriter w) {
      return wait_forever(&context, std::move(r), std::move(w));
    };
    context.server = co_await uvaio::start_server(handler, "127.0.0.1", 0);
    auto [reader, writer] = co_await uvaio::open_connection("127.0.0.1", context.server.port());
    co_await context.connected.wait();
    context.server.abort_clients();
    std::vector<std::string> got;
    {
      std::string value = co_await error_of<uvaio::ConnectionResetError>(reader.read());
      got.push_back(std::move(value));
    }
    {
      std::string value = co_await error_of<uvaio::ConnectionResetError>(reader.readline());
      got.push_back(std::move(value));
    }
    {
      std::string value = co_await error_of<uvaio::ConnectionResetError>(writer.drain());
      got.push_back(std::move(value));
    }
    got.push_back(reader.exception() ? "exception set" : "no exception");
    context.server.close();
    co_await context.server.wait_closed();
    context.server = Server();
    co_return got;
  };
  const auto got = uvaio::run(body());
  REQUIRE(got.size() == 4);
  CHECK(starts_with(got[0], "read from 127.0.0.1:"));
  CHECK(got[0].find(": ECONNRESET (connection reset by peer)") != std::string::npos);
  CHECK(got[1] == got[0]);
  CHECK(got[2] == got[0]);
  CHECK(got[3] == "exception set");
}

TEST_CASE("a second coroutine reading while one waits gets RuntimeError") {
  auto body = []() -> Async<std::string> {
    Server server = co_await uvaio::start_server(echo_lines, "127.0.0.1", 0);
    auto [reader, writer] = co_await uvaio::open_connection("127.0.0.1", server.port());
    auto first = uvaio::create_task(reader.readline());
    co_await uvaio::sleep(0s);
    std::string second = co_await error_of<uvaio::RuntimeError>(reader.read(10));
    writer.write("done\n");
    std::string line = co_await first;
    co_return second + "|" + line;
  };
  CHECK(uvaio::run(body()) ==
        "read() called while another coroutine is already waiting for incoming data|done\n");
}

// --- cancellation -------------------------------------------------------------------

TEST_CASE("cancelling a pending read leaves the reader usable") {
  auto body = []() -> Async<std::string> {
    Server server = co_await uvaio::start_server(echo_lines, "127.0.0.1", 0);
    auto [reader, writer] = co_await uvaio::open_connection("127.0.0.1", server.port());
    auto pending = uvaio::create_task(reader.readline());
    co_await uvaio::sleep(0s);
    pending.cancel("stop reading");
    std::string outcome;
    try {
      std::string line = co_await pending;
      outcome = "read " + line;
    } catch (const uvaio::CancelledError& e) {
      outcome = std::string("cancelled: ") + e.what();
    }
    writer.write("after\n");
    std::string line = co_await reader.readline();
    co_return outcome + "|" + line;
  };
  CHECK(uvaio::run(body()) == "cancelled: stop reading|after\n");
}

Async<void> never_read(uvaio::Event* release, StreamReader reader, StreamWriter writer) {
  co_await release->wait();
  std::string all = co_await reader.read();
  writer.close();
}

TEST_CASE("cancelling a pending drain leaves the writer usable") {
  auto body = []() -> Async<std::string> {
    uvaio::Event release;
    auto handler = [&release](StreamReader r, StreamWriter w) {
      return never_read(&release, std::move(r), std::move(w));
    };
    Server server = co_await uvaio::start_server(handler, "127.0.0.1", 0);
    auto [reader, writer] = co_await uvaio::open_connection("127.0.0.1", server.port());
    writer.write(std::string(32 << 20, 'q'));
    auto drain = uvaio::create_task(writer.drain());
    co_await uvaio::sleep(1ms);
    const bool waiting = !drain.done();
    drain.cancel();
    std::string outcome;
    try {
      co_await drain;
      outcome = "drained";
    } catch (const uvaio::CancelledError&) {
      outcome = "cancelled";
    }
    release.set();
    writer.write("more");
    co_await writer.drain();
    writer.close();
    co_await writer.wait_closed();
    co_return outcome + (waiting ? "|was waiting" : "|was not waiting");
  };
  CHECK(uvaio::run(body()) == "cancelled|was waiting");
}

// A listening socket (raw libuv) that never accepts: once its small backlog
// is full, the kernel drops further SYNs and connects stay pending.
struct Unaccepting {
  uv_tcp_t tcp{};
  bool closed = false;
  std::uint16_t port = 0;
};

Async<std::string> cancel_connects() {
  uv_loop_t* loop = uvaio::get_running_loop().native();
  auto listener = std::make_unique<Unaccepting>();
  REQUIRE(uv_tcp_init(loop, &listener->tcp) == 0);
  listener->tcp.data = listener.get();
  const auto address = uvaio::SocketAddress::parse("127.0.0.1", 0);
  REQUIRE(uv_tcp_bind(&listener->tcp, address.native(), 0) == 0);
  REQUIRE(uv_listen(reinterpret_cast<uv_stream_t*>(&listener->tcp), 1, [](uv_stream_t*, int) {}) == 0);
  sockaddr_storage bound{};
  int size = sizeof bound;
  uv_tcp_getsockname(&listener->tcp, reinterpret_cast<sockaddr*>(&bound), &size);
  listener->port = uvaio::SocketAddress::from_native(reinterpret_cast<sockaddr*>(&bound)).port();

  std::vector<uvaio::Task<std::pair<StreamReader, StreamWriter>>> connects;
  for (int i = 0; i < 8; ++i) connects.push_back(uvaio::create_task(uvaio::open_connection("127.0.0.1", listener->port)));
  // Until one has connected (bounded), then a little longer: the listener's
  // backlog of 1 keeps the rest connecting whatever the wait.
  auto any_done = [&connects] {
    for (auto& task : connects) {
      if (task.done()) return true;
    }
    return false;
  };
  for (int i = 0; i < 10000 && !any_done(); ++i) co_await uvaio::sleep(1ms);
  for (int i = 0; i < 20; ++i) co_await uvaio::sleep(1ms);
  int cancelled = 0;
  int connected = 0;
  for (auto& task : connects) {
    if (task.done()) {
      ++connected;
    } else if (task.cancel()) {
      ++cancelled;
    }
  }
  for (auto& task : connects) {
    try {
      co_await task;
    } catch (const uvaio::CancelledError&) {
      --cancelled;
    }
  }
  connects.clear();
  uv_close(reinterpret_cast<uv_handle_t*>(&listener->tcp),
           [](uv_handle_t* h) { static_cast<Unaccepting*>(h->data)->closed = true; });
  while (!listener->closed) co_await uvaio::sleep(1ms);
  co_return std::string(connected >= 1 ? "some connected" : "none connected") + "|" +
      (cancelled == 0 && connected < 8 ? "the rest cancelled" : "not cancelled: " + std::to_string(cancelled));
}

TEST_CASE("cancelling open_connection while it connects closes the half-open socket") {
  CHECK(uvaio::run(cancel_connects()) == "some connected|the rest cancelled");
}

// --- servers --------------------------------------------------------------------------

TEST_CASE("serve_forever ends with CancelledError when cancelled, and the server is closed") {
  auto body = []() -> Async<std::string> {
    Server server = co_await uvaio::start_server(echo_lines, "127.0.0.1", 0);
    const std::uint16_t port = server.port();
    auto serving = uvaio::create_task(server.serve_forever());
    co_await uvaio::sleep(0s);
    std::string again = co_await error_of<uvaio::RuntimeError>(server.serve_forever());
    // It serves meanwhile.
    auto [reader, writer] = co_await uvaio::open_connection("127.0.0.1", port);
    writer.write("ping\n");
    std::string echoed = co_await reader.readline();
    writer.close();
    serving.cancel();
    std::string outcome;
    try {
      co_await serving;
      outcome = "returned";
    } catch (const uvaio::CancelledError&) {
      outcome = "cancelled";
    }
    std::string refused = co_await error_of<uvaio::ConnectionRefusedError>(uvaio::open_connection("127.0.0.1", port));
    co_return again + "|" + echoed + "|" + outcome + "|" + (server.is_serving() ? "serving" : "closed") + "|" +
        std::to_string(server.sockets().size()) + "|" + (refused.find("ECONNREFUSED") != std::string::npos ? "refused" : refused);
  };
  CHECK(uvaio::run(body()) == "server is already being awaited on serve_forever()|ping\n|cancelled|closed|0|refused");
}

Async<void> hold_until_eof(int* started, int* finished, StreamReader reader, StreamWriter writer) {
  ++*started;
  std::string all = co_await reader.read();
  ++*finished;
  writer.close();
}

TEST_CASE("wait_closed returns once the server is closed and every handler has finished") {
  auto body = []() -> Async<std::string> {
    int started = 0;
    int finished = 0;
    auto handler = [&started, &finished](StreamReader r, StreamWriter w) {
      return hold_until_eof(&started, &finished, std::move(r), std::move(w));
    };
    Server server = co_await uvaio::start_server(handler, "127.0.0.1", 0);
    auto [reader, writer] = co_await uvaio::open_connection("127.0.0.1", server.port());
    writer.write("x\n");
    co_await writer.drain();
    // Until the handler runs (bounded: a handler that never starts fails the CHECK).
    for (int i = 0; i < 10000 && started == 0; ++i) co_await uvaio::sleep(1ms);
    server.close();
    const bool serving = server.is_serving();
    auto closed = uvaio::create_task(server.wait_closed());
    for (int i = 0; i < 20; ++i) co_await uvaio::sleep(1ms);
    const bool done_early = closed.done();
    // asyncio 3.12: close() leaves connections; close_clients() ends them.
    server.close_clients();
    co_await closed;
    std::string eof = co_await reader.read();
    co_return std::string(serving ? "serving" : "not serving") + "|" + (done_early ? "early" : "waited") + "|" +
        std::to_string(finished) + "|" + eof;
  };
  CHECK(uvaio::run(body()) == "not serving|waited|1|");
}

Async<std::string> listen_on_every_address(std::string host) {
  Server server = co_await uvaio::start_server(echo_lines, host, 0);
  std::vector<int> families;
  std::string summary;
  for (const auto& address : server.sockets()) {
    families.push_back(address.family());
    if (address.port() != server.port()) summary += "port differs;";
  }
  std::sort(families.begin(), families.end());
  for (int family : families) {
    const std::string loopback = family == AF_INET ? "127.0.0.1" : "::1";
    auto [reader, writer] = co_await uvaio::open_connection(loopback, server.port());
    writer.write("via " + loopback + "\n");
    std::string line = co_await reader.readline();
    summary += line;
  }
  co_return summary;
}

Async<std::vector<int>> families_of(std::string host) {
  auto answers = co_await uvaio::getaddrinfo(host, "0", {.socktype = SOCK_STREAM, .flags = AI_PASSIVE});
  std::vector<int> families;
  for (const auto& answer : answers) families.push_back(answer.family);
  std::sort(families.begin(), families.end());
  families.erase(std::unique(families.begin(), families.end()), families.end());
  co_return families;
}

TEST_CASE("start_server on all interfaces (\"\") listens on IPv4 and IPv6, on one port") {
  CHECK(uvaio::run(listen_on_every_address("")) == "via 127.0.0.1\nvia ::1\n");
}

TEST_CASE("start_server on localhost listens on every address localhost resolves to") {
  // This machine's /etc/hosts decides whether localhost is also ::1.
  const std::vector<int> families = uvaio::run(families_of("localhost"));
  std::string expected;
  for (int family : families) expected += family == AF_INET ? "via 127.0.0.1\n" : "via ::1\n";
  CHECK_FALSE(expected.empty());
  CHECK(uvaio::run(listen_on_every_address("localhost")) == expected);
}

TEST_CASE("an exception escaping a handler goes to the loop's exception handler and closes the connection") {
  uvaio::Loop loop;
  test_support::HandlerCapture capture(loop);
  auto body = []() -> Async<std::string> {
    auto handler = [](StreamReader, StreamWriter) -> Async<void> {
      throw uvaio::ValueError("bad request");
      co_return;
    };
    Server server = co_await uvaio::start_server(handler, "127.0.0.1", 0);
    auto [reader, writer] = co_await uvaio::open_connection("127.0.0.1", server.port());
    std::string got = co_await reader.read();
    co_return "[" + got + "]" + (reader.at_eof() ? "eof" : "");
  };
  CHECK(loop.run_until_complete(body()) == "[]eof");
  loop.close();
  REQUIRE(capture.contexts.size() == 1);
  CHECK(capture.contexts[0].message == "Unhandled exception in client_connected_cb");
  CHECK(test_support::what_of(capture.contexts[0].exception) == "bad request");
  CHECK(starts_with(capture.contexts[0].task_name, "Task-"));
}

TEST_CASE("dropping the reader and the writer closes the connection") {
  auto body = []() -> Async<std::string> {
    int started = 0;
    int finished = 0;
    auto handler = [&started, &finished](StreamReader r, StreamWriter w) {
      return hold_until_eof(&started, &finished, std::move(r), std::move(w));
    };
    Server server = co_await uvaio::start_server(handler, "127.0.0.1", 0);
    {
      auto connection = co_await uvaio::open_connection("127.0.0.1", server.port());
      connection.second.write("bye");
    }
    server.close();
    co_await server.wait_closed();  // the handler saw EOF
    co_return std::to_string(finished);
  };
  CHECK(uvaio::run(body()) == "1");
}

Async<std::string> one_client(std::uint16_t port, int index) {
  auto [reader, writer] = co_await uvaio::open_connection("127.0.0.1", port);
  writer.write("client " + std::to_string(index) + "\n");
  std::string line = co_await reader.readline();
  writer.close();
  co_await writer.wait_closed();
  co_return line;
}

TEST_CASE("200 concurrent clients each get their own lines back") {
  auto body = []() -> Async<int> {
    Server server = co_await uvaio::start_server(echo_lines, "127.0.0.1", 0);
    std::vector<uvaio::Task<std::string>> clients;
    for (int i = 0; i < 200; ++i) clients.push_back(uvaio::create_task(one_client(server.port(), i)));
    int right = 0;
    for (int i = 0; i < 200; ++i) {
      std::string line = co_await clients[static_cast<std::size_t>(i)];
      if (line == "client " + std::to_string(i) + "\n") ++right;
    }
    server.close();
    co_await server.wait_closed();
    co_return right;
  };
  CHECK(uvaio::run(body()) == 200);
}

// --- the loop closing -------------------------------------------------------------------

struct Kept {
  Server server;
  StreamReader reader;
  StreamWriter writer;
};

// Holds the connection without reading until the loop closes.
Async<void> hold_forever(StreamReader /*reader*/, StreamWriter /*writer*/) { co_await uvaio::sleep(1h); }

Async<void> open_and_keep(Kept* kept) {
  kept->server = co_await uvaio::start_server(hold_forever, "127.0.0.1", 0);
  auto [reader, writer] = co_await uvaio::open_connection("127.0.0.1", kept->server.port());
  writer.write(std::string(8 << 20, 'k'));  // queued in libuv when the loop closes
  kept->reader = reader;
  kept->writer = writer;
  // A read left pending: the loop destroys this task's frame.
  (void)uvaio::create_task(kept->reader.read());
}

TEST_CASE("closing the loop with connections, a server and reads in flight frees them; handles kept stay safe") {
  Kept kept;
  test_support::LogCapture logs;
  {
    uvaio::Loop loop;
    loop.run_until_complete(open_and_keep(&kept));
    loop.close();
  }
  // The handler (sleeping) and the read left pending.
  CHECK(logs.count("Task was destroyed but it is pending!") == 2);
  CHECK_FALSE(kept.server.is_serving());
  CHECK(kept.server.sockets().empty());
  CHECK(kept.reader.at_eof());
  CHECK(kept.writer.is_closing());
  CHECK_THROWS_WITH_AS(kept.writer.write("x"), "Cannot call write() after the stream was closed", uvaio::RuntimeError);
  kept.server.close();
  kept.server.close_clients();
  kept.writer.close();
}

}  // namespace

TEST_SUITE_END();
