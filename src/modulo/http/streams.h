// SseWriter and WebSocket: the two long-lived response kinds.
//
// SseWriter writes Server-Sent Events (text/event-stream, chunked) to a client. A producer
// coroutine calls Send() until it is done or closed() turns true (client gone, server draining).
//
// WebSocket wraps an accepted connection at /ws: Read() awaits the next text message; Send() may be
// called from any thread and queues the message for the connection's writer, so event delivery
// never blocks the publisher.
//
// Thread-safety: SseWriter: one coroutine. WebSocket: Send()/Close() thread-safe, Read() one coroutine.
#pragma once

#include <utility>  // must precede Asio's coroutine headers on Boost 1.74

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "modulo/http/async_queue.h"

namespace modulo::http {

class SseWriter {
 public:
  virtual ~SseWriter() = default;
  // Sends one event; false when the client is gone (the producer should return).
  virtual boost::asio::awaitable<bool> Send(std::string_view event, std::string_view data) = 0;
  // Sends a comment line (keep-alive).
  virtual boost::asio::awaitable<bool> Comment(std::string_view text) = 0;
  [[nodiscard]] virtual bool closed() const = 0;
  [[nodiscard]] virtual boost::asio::any_io_executor executor() const = 0;
  // Called (on the connection's executor) when the server closes the stream while draining.
  virtual void OnClose(std::function<void()> fn) = 0;
};

class WebSocket {
 public:
  virtual ~WebSocket() = default;
  // The next text message, or nullopt when the connection is closed.
  virtual boost::asio::awaitable<std::optional<std::string>> Read() = 0;
  // Queues a text message; safe from any thread. Dropped if the connection is closed.
  virtual void Send(std::string text) = 0;
  virtual void Close() = 0;
  [[nodiscard]] virtual boost::asio::any_io_executor executor() const = 0;
};

// Formats one SSE event: "event: x\ndata: line1\ndata: line2\n\n".
[[nodiscard]] std::string FormatSseEvent(std::string_view event, std::string_view data);

}  // namespace modulo::http
