#pragma once

// Socket addresses and name resolution (asyncio's loop.getaddrinfo).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <uv.h>

#include "uvaio/export.hpp"
#include "uvaio/future.hpp"

namespace uvaio {

// An IPv4 or IPv6 address and port: asyncio's (host, port) tuples. A plain
// value (copyable, no loop involved). The default one is empty (family()
// AF_UNSPEC). ValueError for a host that is not a numeric address, or a
// sockaddr of another family.
class UVAIO_API SocketAddress {
 public:
  SocketAddress() noexcept;
  // "127.0.0.1", "::1", "fe80::1%lo" (a scope id is kept); no name lookup.
  static SocketAddress parse(std::string_view host, std::uint16_t port);
  static SocketAddress from_native(const sockaddr* address);

  int family() const noexcept { return storage_.ss_family; }
  bool empty() const noexcept { return family() == AF_UNSPEC; }
  std::string host() const;
  std::uint16_t port() const noexcept;
  // "127.0.0.1:8080", "[::1]:8080"; "" when empty.
  std::string to_string() const;
  const sockaddr* native() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }

  friend UVAIO_API bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept;

 private:
  sockaddr_storage storage_;
};

// One answer of getaddrinfo (asyncio's (family, type, proto, canonname,
// sockaddr)). canonical_name is set on the first answer when asked for with
// AI_CANONNAME.
struct AddrInfo {
  int family = AF_UNSPEC;
  int socktype = 0;
  int protocol = 0;
  std::string canonical_name;
  SocketAddress address;
};

// getaddrinfo's hints: AF_INET / AF_INET6 / AF_UNSPEC, SOCK_STREAM ..., and
// AI_* flags, with the meaning POSIX gives them.
struct AddrInfoHints {
  int family = AF_UNSPEC;
  int socktype = 0;
  int protocol = 0;
  int flags = 0;
};

// Resolves host and service (a port number or a service name; either may be
// empty, not both) on libuv's threadpool (uv_getaddrinfo), on the running
// loop. The future is settled on the loop thread; cancelling it (or the task
// awaiting it) withdraws a lookup that has not started (uv_cancel) and drops
// the answer of one that has. A failed lookup is a GaiError whose what() names
// the host and libuv's EAI_* code; RuntimeError outside a running loop.
UVAIO_API Future<std::vector<AddrInfo>> getaddrinfo(std::string host, std::string service,
                                                    AddrInfoHints hints = {});
inline Future<std::vector<AddrInfo>> getaddrinfo(std::string host, std::uint16_t port, AddrInfoHints hints = {}) {
  return getaddrinfo(std::move(host), std::to_string(port), hints);
}

}  // namespace uvaio
