// Server: the HTTP/1.1 and WebSocket server (Boost.Beast over Asio).
//
// One io_context per I/O thread; the acceptor spreads connections over them. Each connection is
// a coroutine that reads a request header, matches the route, enforces the limits (431 headers,
// 413 body before reading it, 415 content type, read/idle timeouts, max connections), reads the
// body (buffered, or multipart streamed to disk), runs the handler, writes the response (or an
// SSE stream, or hands the socket to a WebSocket handler), and records metrics and an access log
// line. Every response carries X-Request-ID.
//
// Shutdown(): readiness turns false, the listener closes, idle connections close, in-flight
// requests finish (with Connection: close) until the grace period ends, then everything stops.
//
// Thread-safety: Start() and Shutdown() from one controlling thread; draining() and port() from any.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "modulo/core/error.h"
#include "modulo/http/router.h"
#include "modulo/metrics/registry.h"

namespace modulo::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8000;
  int threads = 1;
  int max_connections = 10000;
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = 1024 * 1024;
  std::size_t max_upload_bytes = 1024ull * 1024 * 1024;
  std::chrono::seconds header_timeout{10};
  std::chrono::seconds body_timeout{30};
  std::chrono::seconds idle_timeout{60};
  std::chrono::seconds shutdown_grace{20};
  bool access_log = true;
  std::filesystem::path spool_dir;  // where multipart uploads are streamed; must exist
};

class Server {
 public:
  Server(ServerOptions options, const Router& router, metrics::Registry& registry);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts the I/O threads. Fails with a clear message when the address is taken.
  [[nodiscard]] Status Start();
  // The bound port (useful with port 0).
  [[nodiscard]] std::uint16_t port() const;
  [[nodiscard]] bool draining() const;
  // Graceful stop; returns when every connection is closed or the grace period ran out.
  void Shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace modulo::http
