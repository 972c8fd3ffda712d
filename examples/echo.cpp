// An echo server and a client on one loop, over loopback on a port the
// system picks: `start_server`, `open_connection`, readline/write/drain.
#include <cstdio>
#include <string>

#include <uvaio/uvaio.hpp>

// [snippet:server]
// Runs in its own task for each connection; returning closes the connection
// (the last reader and writer handles go).
uvaio::Async<void> handle_echo(uvaio::StreamReader reader, uvaio::StreamWriter writer) {
  for (;;) {
    std::string line = co_await reader.readline();
    if (line.empty()) break;  // EOF
    writer.write("echo: " + line);
    co_await writer.drain();  // back-pressure: waits while the peer is slow
  }
}
// [end]

// [snippet:client]
uvaio::Async<void> client(std::uint16_t port) {
  auto [reader, writer] = co_await uvaio::open_connection("127.0.0.1", port);
  const std::string lines[] = {"hello\n", "streams\n"};
  for (const std::string& line : lines) {
    writer.write(line);
    co_await writer.drain();
    std::string reply = co_await reader.readline();
    std::printf("%s", reply.c_str());
  }
  writer.close();
  co_await writer.wait_closed();
}

uvaio::Async<void> main_task() {
  uvaio::Server server = co_await uvaio::start_server(handle_echo, "127.0.0.1", 0);
  co_await client(server.port());
  server.close();
  co_await server.wait_closed();  // every handler has finished
  std::printf("server closed\n");
}
// [end]

int main() {
  uvaio::run(main_task());
  return 0;
}
