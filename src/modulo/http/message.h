// Request, Response and Route: what handlers see and return.
//
// A handler is a coroutine on an I/O thread: it must not block. CPU-heavy or blocking work goes to
// a ThreadPool with `co_await RunOn(pool, fn)`.
//
// Thread-safety: Request and Response are owned by one connection; do not share them.
#pragma once

#include <utility>  // must precede Asio's coroutine headers on Boost 1.74

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>
#include <cstddef>
#include <filesystem>
#include <any>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "modulo/core/error.h"
#include "modulo/core/log.h"

namespace modulo::http {

namespace beast_http = boost::beast::http;

// One file part of a multipart/form-data body, already streamed to disk. The file is deleted
// when the request ends unless a handler moves it elsewhere.
struct UploadedFile {
  std::string field_name;
  std::string filename;      // exactly as the client sent it (may hold "../", NULs, any UTF-8)
  std::string content_type;  // as the client declared it
  std::filesystem::path path;
  std::size_t size = 0;
};

struct Request {
  beast_http::verb method = beast_http::verb::unknown;
  std::string target;  // raw request target
  std::string path;    // percent-decoded path without the query
  std::string query;   // raw query string without '?'
  beast_http::fields headers;
  std::string body;                                   // buffered routes
  std::vector<UploadedFile> files;                    // multipart routes
  std::multimap<std::string, std::string> form;       // multipart non-file fields
  std::map<std::string, std::string, std::less<>> path_params;
  std::string route;  // the matched route template, e.g. "/api/collections/{id}"
  std::string request_id;
  std::string remote_address;
  // Set by the router's guard before the body is read (the authenticated principal, for the
  // layers above; http never looks inside).
  std::any principal;

  [[nodiscard]] std::string_view Header(std::string_view name) const;
  // Percent-decoded value of the first query parameter with this name.
  [[nodiscard]] std::optional<std::string> QueryParam(std::string_view name) const;
  [[nodiscard]] const std::string& PathParam(std::string_view name) const;

  // Logging that carries the request id.
  void Log(log::Level level, std::string_view message, log::Fields fields = {}) const;
};

class SseWriter;
class WebSocket;

struct Response {
  beast_http::status status = beast_http::status::ok;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the response is a Server-Sent Events stream produced by this coroutine.
  std::function<boost::asio::awaitable<void>(SseWriter&)> stream;

  static Response Json(const nlohmann::json& j, beast_http::status s = beast_http::status::ok);
  static Response Text(std::string body, std::string content_type, beast_http::status s = beast_http::status::ok);
  static Response FromError(const Error& e);
  static Response NoContent();
  static Response EventStream(std::function<boost::asio::awaitable<void>(SseWriter&)> producer);
  Response& WithHeader(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
};

using Handler = std::function<boost::asio::awaitable<Response>(Request&)>;
using WebSocketHandler = std::function<boost::asio::awaitable<void>(WebSocket&, Request&)>;

enum class BodyKind {
  kBuffered,   // the whole body in Request::body, up to the route's limit
  kMultipart,  // multipart/form-data streamed to disk into Request::files / Request::form
};

// What the OpenAPI document says about a route.
struct RouteDoc {
  std::string summary;
  std::string tag;
  nlohmann::json request_body;  // OpenAPI requestBody object, or null
  nlohmann::json responses;     // OpenAPI responses object: {"200": {...}, ...}
  nlohmann::json parameters = nlohmann::json::array();  // extra (query) parameters
};

struct Route {
  beast_http::verb method = beast_http::verb::get;
  std::string path;  // template: literal segments and {name} parameters
  Handler handler;
  WebSocketHandler websocket;  // set for WebSocket routes (GET with Upgrade)
  BodyKind body = BodyKind::kBuffered;
  std::size_t max_body_bytes = 0;  // 0 = the server's default for the body kind
  // Who may call the route, interpreted by the router's guard (see Router::SetGuard); the http
  // module attaches no meaning to it. Declared here so every route states its policy in one place.
  std::string policy;
  RouteDoc doc;
};

// Runs after a route matched and before its body is read (or its WebSocket upgraded): a response
// ends the request there (the unread body is not read; the connection closes).
using Guard = std::function<boost::asio::awaitable<std::optional<Response>>(const Route&, Request&)>;

}  // namespace modulo::http
