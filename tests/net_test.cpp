#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

using namespace std::chrono_literals;

TEST_SUITE_BEGIN("net");

namespace {

TEST_CASE("SocketAddress parses and prints IPv4 and IPv6 addresses") {
  const auto v4 = uvaio::SocketAddress::parse("127.0.0.1", 8080);
  CHECK(v4.family() == AF_INET);
  CHECK(v4.host() == "127.0.0.1");
  CHECK(v4.port() == 8080);
  CHECK(v4.to_string() == "127.0.0.1:8080");
  const auto v6 = uvaio::SocketAddress::parse("::1", 443);
  CHECK(v6.family() == AF_INET6);
  CHECK(v6.host() == "::1");
  CHECK(v6.to_string() == "[::1]:443");
  CHECK(v4 == uvaio::SocketAddress::from_native(v4.native()));
  CHECK_FALSE(v4 == v6);
  CHECK(uvaio::SocketAddress().empty());
  CHECK(uvaio::SocketAddress().to_string().empty());
}

TEST_CASE("SocketAddress refuses a name or garbage with ValueError") {
  CHECK_THROWS_WITH_AS(uvaio::SocketAddress::parse("localhost", 1),
                       "not a numeric IPv4 or IPv6 address: 'localhost'", uvaio::ValueError);
  CHECK_THROWS_AS(uvaio::SocketAddress::parse("1.2.3.4.5", 1), uvaio::ValueError);
  CHECK_THROWS_AS(uvaio::SocketAddress::parse(":::", 1), uvaio::ValueError);
  sockaddr unix_address{};
  unix_address.sa_family = AF_UNIX;
  CHECK_THROWS_AS(uvaio::SocketAddress::from_native(&unix_address), uvaio::ValueError);
}

uvaio::Async<std::vector<uvaio::AddrInfo>> resolve(std::string host, std::string service, uvaio::AddrInfoHints hints) {
  co_return co_await uvaio::getaddrinfo(std::move(host), std::move(service), hints);
}

TEST_CASE("getaddrinfo resolves numeric hosts and localhost with the port in every answer") {
  const auto v4 = uvaio::run(resolve("127.0.0.1", "80", {.socktype = SOCK_STREAM}));
  REQUIRE(v4.size() == 1);
  CHECK(v4[0].family == AF_INET);
  CHECK(v4[0].socktype == SOCK_STREAM);
  CHECK(v4[0].address.to_string() == "127.0.0.1:80");

  const auto v6 = uvaio::run(resolve("::1", "9", {.family = AF_INET6, .socktype = SOCK_STREAM}));
  REQUIRE(v6.size() == 1);
  CHECK(v6[0].address.to_string() == "[::1]:9");

  const auto local = uvaio::run(resolve("localhost", "http", {.family = AF_INET, .socktype = SOCK_STREAM}));
  REQUIRE_FALSE(local.empty());
  for (const auto& info : local) {
    CHECK(info.address.host() == "127.0.0.1");
    CHECK(info.address.port() == 80);
  }
}

TEST_CASE("getaddrinfo's uint16_t overload passes the port") {
  auto body = []() -> uvaio::Async<std::uint16_t> {
    auto answers = co_await uvaio::getaddrinfo("127.0.0.1", std::uint16_t{4321});
    co_return answers.at(0).address.port();
  };
  CHECK(uvaio::run(body()) == 4321);
}

TEST_CASE("a failed lookup is a GaiError naming the host and the EAI code") {
  // .invalid is reserved (RFC 6761): never resolves, and AI_NUMERICHOST keeps
  // the test off the network altogether.
  auto body = resolve("host.invalid", "80", {.flags = AI_NUMERICHOST});
  CHECK_THROWS_WITH_AS(uvaio::run(std::move(body)),
                       "getaddrinfo 'host.invalid' port '80': EAI_NONAME (unknown node or service)",
                       uvaio::GaiError);
  auto unknown_service = resolve("127.0.0.1", "no-such-service-name", {});
  CHECK_THROWS_AS(uvaio::run(std::move(unknown_service)), uvaio::GaiError);
}

TEST_CASE("getaddrinfo refuses empty host and service, and needs a running loop") {
  CHECK_THROWS_WITH_AS(uvaio::run(resolve("", "", {})), "getaddrinfo: host and service cannot both be empty",
                       uvaio::ValueError);
  CHECK_THROWS_WITH_AS((void)uvaio::getaddrinfo("localhost", "80"), "no running event loop", uvaio::RuntimeError);
}

TEST_CASE("cancelling lookups settles them cancelled and frees every request") {
  // Fill libuv's pool so that most lookups are still queued (uv_cancel takes
  // them back) and the rest run to their end with their answer dropped.
  auto body = []() -> uvaio::Async<int> {
    std::vector<uvaio::Future<std::vector<uvaio::AddrInfo>>> lookups;
    for (int i = 0; i < 64; ++i) lookups.push_back(uvaio::getaddrinfo("127.0.0.1", std::to_string(i)));
    int cancelled = 0;
    for (auto& f : lookups) {
      if (f.cancel()) ++cancelled;
    }
    for (auto& f : lookups) {
      try {
        co_await f;
      } catch (const uvaio::CancelledError&) {
        --cancelled;
      }
    }
    co_return cancelled;
  };
  CHECK(uvaio::run(body()) == 0);
}

TEST_CASE("a task cancelled while it awaits a lookup gets CancelledError and the lookup never runs") {
  // Every pool thread is held by a job, so the lookup is still queued when
  // the task is cancelled: uv_cancel takes it back.
  auto body = []() -> uvaio::Async<std::string> {
    std::atomic<bool> release{false};
    std::vector<uvaio::Future<void>> blockers;
    for (unsigned i = 0; i < uvaio::libuv_threadpool_size(); ++i) {
      blockers.push_back(uvaio::to_thread([&release] {
        while (!release.load()) std::this_thread::sleep_for(1ms);
      }));
    }
    auto task = uvaio::create_task(resolve("127.0.0.1", "1", {}));
    co_await uvaio::sleep(0s);
    task.cancel("enough");
    std::string outcome;
    try {
      (void)co_await task;
      outcome = "answered";
    } catch (const uvaio::CancelledError& e) {
      outcome = std::string("cancelled: ") + e.what();
    }
    release = true;
    for (auto& b : blockers) co_await b;
    co_return outcome;
  };
  CHECK(uvaio::run(body()) == "cancelled: enough");
}

TEST_CASE("closing the loop with lookups in flight frees them") {
  uvaio::Loop loop;
  std::vector<uvaio::Future<std::vector<uvaio::AddrInfo>>> kept;
  auto start = [&]() -> uvaio::Async<void> {
    for (int i = 0; i < 16; ++i) kept.push_back(uvaio::getaddrinfo("127.0.0.1", std::to_string(i)));
    co_return;
  };
  loop.run_until_complete(start());
  loop.close();
  for (auto& f : kept) CHECK((f.cancelled() || f.done()));
}

}  // namespace

TEST_SUITE_END();
