#include "uvaio/net.hpp"

#include <cstring>
#include <string>
#include <utility>

#include "io.hpp"

namespace uvaio {

SocketAddress::SocketAddress() noexcept {
  std::memset(&storage_, 0, sizeof storage_);
  storage_.ss_family = AF_UNSPEC;
}

SocketAddress SocketAddress::parse(std::string_view host, std::uint16_t port) {
  const std::string text(host);
  SocketAddress result;
  // uv_ip6_addr understands "addr%scope"; uv_ip4_addr accepts dotted quads only.
  if (text.find(':') != std::string::npos) {
    if (uv_ip6_addr(text.c_str(), port, reinterpret_cast<sockaddr_in6*>(&result.storage_)) == 0) return result;
  } else if (uv_ip4_addr(text.c_str(), port, reinterpret_cast<sockaddr_in*>(&result.storage_)) == 0) {
    return result;
  }
  throw ValueError("not a numeric IPv4 or IPv6 address: '" + text + "'");
}

SocketAddress SocketAddress::from_native(const sockaddr* address) {
  if (address == nullptr) throw ValueError("SocketAddress::from_native: null address");
  SocketAddress result;
  if (address->sa_family == AF_INET) {
    std::memcpy(&result.storage_, address, sizeof(sockaddr_in));
  } else if (address->sa_family == AF_INET6) {
    std::memcpy(&result.storage_, address, sizeof(sockaddr_in6));
  } else {
    throw ValueError("SocketAddress::from_native: address family " + std::to_string(address->sa_family) +
                     " is neither AF_INET nor AF_INET6");
  }
  return result;
}

std::string SocketAddress::host() const {
  char buffer[UV_IF_NAMESIZE + INET6_ADDRSTRLEN + 2] = {};
  if (family() == AF_INET) {
    uv_ip4_name(reinterpret_cast<const sockaddr_in*>(&storage_), buffer, sizeof buffer);
  } else if (family() == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
    uv_ip6_name(in6, buffer, sizeof buffer);
    if (in6->sin6_scope_id != 0) {
      char name[UV_IF_NAMESIZE] = {};
      std::size_t size = sizeof name;
      if (uv_if_indextoname(in6->sin6_scope_id, name, &size) == 0) return std::string(buffer) + "%" + name;
    }
  }
  return buffer;
}

std::uint16_t SocketAddress::port() const noexcept {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

std::string SocketAddress::to_string() const {
  // Appended piece by piece: g++ 12 at -O3 warns (-Wrestrict, a false
  // positive) about the operator+ chain.
  std::string text;
  if (family() == AF_INET) {
    text = host();
  } else if (family() == AF_INET6) {
    text = "[";
    text += host();
    text += "]";
  } else {
    return text;
  }
  text += ':';
  text += std::to_string(port());
  return text;
}

bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept {
  if (a.family() != b.family()) return false;
  if (a.family() == AF_INET) {
    const auto& x = reinterpret_cast<const sockaddr_in&>(a.storage_);
    const auto& y = reinterpret_cast<const sockaddr_in&>(b.storage_);
    return x.sin_port == y.sin_port && x.sin_addr.s_addr == y.sin_addr.s_addr;
  }
  if (a.family() == AF_INET6) {
    const auto& x = reinterpret_cast<const sockaddr_in6&>(a.storage_);
    const auto& y = reinterpret_cast<const sockaddr_in6&>(b.storage_);
    return x.sin6_port == y.sin6_port && x.sin6_scope_id == y.sin6_scope_id &&
           std::memcmp(&x.sin6_addr, &y.sin6_addr, sizeof x.sin6_addr) == 0;
  }
  return true;
}

namespace {

using LookupOp = detail::RequestOp<std::vector<AddrInfo>, uv_getaddrinfo_t>;

void on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* answers) {
  LookupOp* op = LookupOp::from(req);
  if (op->deliverable()) {
    if (status < 0) {
      op->fail(status, op->what);
    } else {
      try {
        std::vector<AddrInfo> result;
        for (const addrinfo* a = answers; a != nullptr; a = a->ai_next) {
          if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
          AddrInfo info;
          info.family = a->ai_family;
          info.socktype = a->ai_socktype;
          info.protocol = a->ai_protocol;
          if (a->ai_canonname != nullptr) info.canonical_name = a->ai_canonname;
          info.address = SocketAddress::from_native(a->ai_addr);
          result.push_back(std::move(info));
        }
        op->set_value(std::move(result));
      } catch (...) {
        op->fail(std::current_exception());
      }
    }
  }
  uv_freeaddrinfo(answers);
  op->finished();
}

}  // namespace

Future<std::vector<AddrInfo>> getaddrinfo(std::string host, std::string service, AddrInfoHints hints) {
  detail::LoopImpl& loop = detail::io_loop("getaddrinfo");
  if (host.empty() && service.empty()) throw ValueError("getaddrinfo: host and service cannot both be empty");
  auto* op = new LookupOp(loop);
  Future<std::vector<AddrInfo>> future(detail::adopt, op);
  op->what = "getaddrinfo '" + host + "' port '" + service + "'";
  addrinfo native_hints{};
  native_hints.ai_family = hints.family;
  native_hints.ai_socktype = hints.socktype;
  native_hints.ai_protocol = hints.protocol;
  native_hints.ai_flags = hints.flags;
  // libuv copies host, service and hints into the request.
  op->start(uv_getaddrinfo(&loop.uv_, &op->req, &on_resolved, host.empty() ? nullptr : host.c_str(),
                           service.empty() ? nullptr : service.c_str(), &native_hints));
  return future;
}

}  // namespace uvaio
