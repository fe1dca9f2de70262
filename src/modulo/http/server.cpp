#include "modulo/http/server.h"

#include <utility>  // must precede Asio's coroutine headers on Boost 1.74

#include <sys/resource.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <limits>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "modulo/core/log.h"
#include "modulo/core/request_id.h"
#include "modulo/http/multipart.h"
#include "modulo/http/status.h"
#include "modulo/http/streams.h"
#include "modulo/http/url.h"
#include <boost/beast/core/buffers_to_string.hpp>

namespace modulo::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

std::string FormatSseEvent(std::string_view event, std::string_view data) {
  std::string out;
  out.reserve(event.size() + data.size() + 16);
  if (!event.empty()) {
    out += "event: ";
    out += event;
    out += '\n';
  }
  // Each line of data becomes its own "data:" field; CR, LF and CRLF all end a line.
  std::size_t i = 0;
  while (true) {
    std::size_t j = i;
    while (j < data.size() && data[j] != '\n' && data[j] != '\r') ++j;
    out += "data: ";
    out.append(data.substr(i, j - i));
    out += '\n';
    if (j >= data.size()) break;
    if (data[j] == '\r' && j + 1 < data.size() && data[j + 1] == '\n') ++j;
    i = j + 1;
  }
  out += '\n';
  return out;
}

namespace {

std::string_view MethodLabel(beast_http::verb v) {
  switch (v) {
    case beast_http::verb::get: return "GET";
    case beast_http::verb::post: return "POST";
    case beast_http::verb::put: return "PUT";
    case beast_http::verb::patch: return "PATCH";
    case beast_http::verb::delete_: return "DELETE";
    case beast_http::verb::head: return "HEAD";
    case beast_http::verb::options: return "OPTIONS";
    default: return "OTHER";
  }
}

// What the session knows about one open connection, for draining.
struct ConnHandle {
  asio::any_io_executor executor;
  bool idle = true;        // touched only on `executor`
  bool streaming = false;  // an SSE stream or WebSocket: closed at drain start
  std::function<void()> close;  // runs on `executor`
};

class SseWriterImpl final : public SseWriter {
 public:
  explicit SseWriterImpl(beast::tcp_stream& stream, std::chrono::seconds write_timeout)
      : stream_(stream), write_timeout_(write_timeout) {}

  asio::awaitable<bool> Send(std::string_view event, std::string_view data) override {
    co_return co_await WriteChunk(FormatSseEvent(event, data));
  }
  asio::awaitable<bool> Comment(std::string_view text) override {
    std::string line = ": ";
    for (char c : text) line += (c == '\n' || c == '\r') ? ' ' : c;
    line += "\n\n";
    co_return co_await WriteChunk(line);
  }
  [[nodiscard]] bool closed() const override { return closed_; }
  [[nodiscard]] asio::any_io_executor executor() const override { return stream_.get_executor(); }
  void OnClose(std::function<void()> fn) override { on_close_ = std::move(fn); }

  void Close() {
    if (closed_) return;
    closed_ = true;
    if (on_close_) on_close_();
  }
  std::size_t bytes() const { return bytes_; }

 private:
  asio::awaitable<bool> WriteChunk(const std::string& payload) {
    if (closed_) co_return false;
    beast::error_code ec;
    stream_.expires_after(write_timeout_);
    co_await asio::async_write(stream_, beast_http::make_chunk(asio::buffer(payload)),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      Close();
      co_return false;
    }
    bytes_ += payload.size();
    co_return true;
  }

  beast::tcp_stream& stream_;
  std::chrono::seconds write_timeout_;
  bool closed_ = false;
  std::function<void()> on_close_;
  std::size_t bytes_ = 0;
};

class WebSocketImpl final : public WebSocket, public std::enable_shared_from_this<WebSocketImpl> {
 public:
  explicit WebSocketImpl(beast::tcp_stream&& stream)
      : ws_(std::move(stream)),
        outgoing_(std::make_shared<AsyncQueue<std::string>>(ws_.get_executor(), 1024)) {}

  websocket::stream<beast::tcp_stream>& ws() { return ws_; }

  asio::awaitable<std::optional<std::string>> Read() override {
    beast::flat_buffer buffer;
    beast::error_code ec;
    co_await ws_.async_read(buffer, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      outgoing_->Close();
      co_return std::nullopt;
    }
    co_return beast::buffers_to_string(buffer.data());
  }
  void Send(std::string text) override { outgoing_->Push(std::move(text)); }
  void Close() override { outgoing_->Close(); }
  [[nodiscard]] asio::any_io_executor executor() const override {
    return const_cast<websocket::stream<beast::tcp_stream>&>(ws_).get_executor();
  }

  // Writes queued messages until the queue closes, then sends a close frame.
  asio::awaitable<void> WriteLoop() {
    auto self = shared_from_this();
    beast::error_code ec;
    while (true) {
      auto msg = co_await outgoing_->Pop(std::chrono::hours(24));
      if (!msg) {
        if (outgoing_->closed()) break;
        continue;
      }
      ws_.text(true);
      co_await ws_.async_write(asio::buffer(*msg), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
    }
    if (!ec && ws_.is_open()) {
      co_await ws_.async_close(websocket::close_code::going_away, asio::redirect_error(asio::use_awaitable, ec));
    }
    writer_done_ = true;
  }
  bool writer_done() const { return writer_done_; }

 private:
  websocket::stream<beast::tcp_stream> ws_;
  std::shared_ptr<AsyncQueue<std::string>> outgoing_;
  bool writer_done_ = false;
};

}  // namespace

struct Server::Impl {
  ServerOptions opt;
  const Router& router;
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  std::vector<std::thread> threads;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::atomic<std::uint16_t> bound_port{0};
  std::atomic<bool> draining{false};
  std::atomic<int> open_connections{0};
  std::atomic<std::size_t> next_context{0};

  std::mutex conns_mu;
  std::uint64_t next_conn_id = 1;                               // guarded by conns_mu
  std::map<std::uint64_t, std::shared_ptr<ConnHandle>> conns;   // guarded by conns_mu

  metrics::CounterFamily& requests;
  metrics::HistogramFamily& durations;
  metrics::Gauge& open_gauge;
  metrics::Gauge& in_flight_gauge;
  metrics::Counter& refused;

  Impl(ServerOptions o, const Router& r, metrics::Registry& reg)
      : opt(std::move(o)),
        router(r),
        requests(reg.AddCounter("rag_requests_total", "Total requests", {"method", "endpoint", "status"})),
        durations(reg.AddHistogram("rag_request_duration_seconds", "Request duration", {"method", "endpoint"})),
        open_gauge(reg.AddGauge("modulo_http_open_connections", "Open HTTP and WebSocket connections").With({})),
        in_flight_gauge(reg.AddGauge("modulo_http_in_flight_requests", "Requests being processed").With({})),
        refused(reg.AddCounter("modulo_http_connections_refused_total",
                               "Connections refused because the connection limit was reached")
                    .With({})) {}

  asio::awaitable<void> AcceptLoop();
  asio::awaitable<void> Session(tcp::socket socket);
  asio::awaitable<void> RunWebSocket(beast::tcp_stream& stream, const Route& route, Request& req,
                                     const beast_http::request<beast_http::empty_body>& upgrade,
                                     const std::shared_ptr<ConnHandle>& handle);

  std::shared_ptr<ConnHandle> Register(std::uint64_t& id, asio::any_io_executor ex) {
    auto h = std::make_shared<ConnHandle>();
    h->executor = std::move(ex);
    std::lock_guard lock(conns_mu);
    id = next_conn_id++;
    conns.emplace(id, h);
    return h;
  }
  void Unregister(std::uint64_t id) {
    std::lock_guard lock(conns_mu);
    conns.erase(id);
  }
};

Server::Server(ServerOptions options, const Router& router, metrics::Registry& registry)
    : impl_(std::make_unique<Impl>(std::move(options), router, registry)) {}

Server::~Server() {
  if (!impl_->threads.empty()) Shutdown();
}

std::uint16_t Server::port() const { return impl_->bound_port.load(); }
bool Server::draining() const { return impl_->draining.load(); }

Status Server::Start() {
  Impl& s = *impl_;
  // Many idle clients need many descriptors: raise the soft limit to the hard one.
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
  const int n = std::max(1, s.opt.threads);
  for (int i = 0; i < n; ++i) {
    s.contexts.push_back(std::make_unique<asio::io_context>(1));
    s.guards.push_back(asio::make_work_guard(*s.contexts.back()));
  }
  beast::error_code ec;
  auto address = asio::ip::make_address(s.opt.host, ec);
  if (ec) return Fail(Error::InvalidArgument("invalid listen address '" + s.opt.host + "': " + ec.message()));
  tcp::endpoint endpoint(address, s.opt.port);
  s.acceptor = std::make_unique<tcp::acceptor>(*s.contexts[0]);
  s.acceptor->open(endpoint.protocol(), ec);
  if (!ec) s.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor->bind(endpoint, ec);
  if (!ec) s.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Fail(Error::Unavailable("cannot listen on " + s.opt.host + ":" + std::to_string(s.opt.port) + ": " +
                                   ec.message()));
  }
  s.bound_port = s.acceptor->local_endpoint().port();
  asio::co_spawn(*s.contexts[0], s.AcceptLoop(), asio::detached);
  for (int i = 0; i < n; ++i) {
    s.threads.emplace_back([ctx = s.contexts[static_cast<std::size_t>(i)].get()] {
      while (true) {
        try {
          ctx->run();
          break;
        } catch (const std::exception& e) {
          log::Error("uncaught exception on an I/O thread", {{"error", e.what()}});
        }
      }
    });
  }
  return {};
}

void Server::Shutdown() {
  Impl& s = *impl_;
  if (s.threads.empty()) return;
  s.draining = true;
  asio::post(*s.contexts[0], [&s] {
    beast::error_code ec;
    if (s.acceptor) s.acceptor->close(ec);
  });
  auto close_where = [&s](bool all) {
    std::lock_guard lock(s.conns_mu);
    for (auto& [id, h] : s.conns) {
      asio::post(h->executor, [h, all] {
        if ((all || h->idle || h->streaming) && h->close) h->close();
      });
    }
  };
  close_where(false);
  const auto deadline = Clock::now() + s.opt.shutdown_grace;
  while (s.open_connections.load() > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (s.open_connections.load() > 0) {
    log::Warn("shutdown grace period over; closing remaining connections",
              {{"connections", s.open_connections.load()}});
    close_where(true);
    const auto hard = Clock::now() + std::chrono::seconds(2);
    while (s.open_connections.load() > 0 && Clock::now() < hard) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  for (auto& g : s.guards) g.reset();
  for (auto& c : s.contexts) c->stop();
  for (auto& t : s.threads) t.join();
  s.threads.clear();
}

asio::awaitable<void> Server::Impl::AcceptLoop() {
  while (!draining) {
    auto& ctx = *contexts[next_context++ % contexts.size()];
    beast::error_code ec;
    tcp::socket socket = co_await acceptor->async_accept(ctx, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor->is_open()) break;
      // Out of descriptors or similar: back off briefly rather than spin.
      log::Warn("accept failed", {{"error", ec.message()}});
      asio::steady_timer t(acceptor->get_executor(), std::chrono::milliseconds(50));
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    if (open_connections.load() >= opt.max_connections) {
      refused.Inc();
      static constexpr std::string_view kBusy =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
          "Retry-After: 1\r\nContent-Length: 70\r\n\r\n"
          "{\"detail\": \"too many open connections; retry later\", \"code\": \"unavailable\"}";
      socket.non_blocking(true, ec);
      socket.write_some(asio::buffer(kBusy.data(), kBusy.size()), ec);
      socket.close(ec);
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    ++open_connections;
    open_gauge.Inc();
    asio::co_spawn(ctx, Session(std::move(socket)), asio::detached);
  }
}

namespace {

// A small response written straight to the stream (used before a Request exists).
asio::awaitable<void> WriteSimple(beast::tcp_stream& stream, beast_http::status status, const Error& err,
                                  const std::string& request_id, std::chrono::seconds timeout) {
  beast_http::response<beast_http::string_body> res{status, 11};
  res.set(beast_http::field::server, "modulo");
  res.set(beast_http::field::content_type, "application/json");
  res.set("X-Request-ID", request_id);
  res.keep_alive(false);
  res.body() = ErrorBody(err);
  res.prepare_payload();
  beast::error_code ec;
  stream.expires_after(timeout);
  co_await beast_http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
}

// Answers "Expect: 100-continue" once the server has decided to read the body.
asio::awaitable<void> SendContinueIfExpected(beast::tcp_stream& stream,
                                             const beast_http::request<beast_http::empty_body>& header,
                                             beast::error_code& ec) {
  if (!beast::iequals(header[beast_http::field::expect], "100-continue")) co_return;
  beast_http::response<beast_http::empty_body> cont{beast_http::status::continue_, 11};
  co_await beast_http::async_write(stream, cont, asio::redirect_error(asio::use_awaitable, ec));
}

bool IsDisconnect(const beast::error_code& ec) {
  return ec == beast_http::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
         ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
         ec == asio::error::broken_pipe || ec == beast_http::error::partial_message ||
         ec == asio::error::bad_descriptor;
}

}  // namespace

namespace {

// The outcome of reading a request body.
struct BodyRead {
  std::optional<Error> fail;  // an answer to send instead of running the handler
  bool disconnected = false;  // the client went away: close without answering
  bool read = false;          // the whole body was consumed
};

BodyRead BodyReadFailure(const beast::error_code& ec, std::size_t limit) {
  BodyRead out;
  if (ec == beast_http::error::body_limit) {
    out.fail = Error::PayloadTooLarge("request body exceeds the limit of " + std::to_string(limit) + " bytes");
  } else if (IsDisconnect(ec)) {
    out.disconnected = true;
  } else {
    out.fail = Error::InvalidArgument("malformed request body: " + ec.message());
  }
  return out;
}

std::optional<Error> CheckDeclaredLength(const beast_http::request_parser<beast_http::empty_body>& hp,
                                         std::size_t limit) {
  if (hp.content_length() && *hp.content_length() > limit) {
    return Error::PayloadTooLarge("request body of " + std::to_string(*hp.content_length()) +
                                  " bytes exceeds the limit of " + std::to_string(limit) + " bytes");
  }
  return std::nullopt;
}

// Reads the whole body into req.body, up to `limit` bytes (413 before reading when the declared
// length is larger). Results are built in a named local and returned by name: g++ 12 destroys
// a braced temporary in co_return twice.
asio::awaitable<BodyRead> ReadBufferedBody(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                           beast_http::request_parser<beast_http::empty_body>& hp, std::size_t limit,
                                           const ServerOptions& opt, Request& req) {
  BodyRead out;
  out.fail = CheckDeclaredLength(hp, limit);
  if (out.fail) co_return out;
  if (!(hp.chunked() || (hp.content_length() && *hp.content_length() > 0))) {
    req.headers = std::move(hp.get().base());
    out.read = true;
    co_return out;
  }
  beast::error_code ec;
  co_await SendContinueIfExpected(stream, hp.get(), ec);
  beast_http::request_parser<beast_http::string_body> bp(std::move(hp));
  bp.body_limit(limit);
  stream.expires_after(opt.body_timeout);
  co_await beast_http::async_read(stream, buffer, bp, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    out = BodyReadFailure(ec, limit);
    co_return out;
  }
  req.body = std::move(bp.get().body());
  req.headers = std::move(bp.get().base());
  out.read = true;
  co_return out;
}

// Streams a multipart/form-data body into files under opt.spool_dir (req.files) and fields
// (req.form), checking the content type (415) and the limit (413) first.
asio::awaitable<BodyRead> ReadMultipartBody(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                            beast_http::request_parser<beast_http::empty_body>& hp,
                                            std::size_t limit, const ServerOptions& opt, Request& req) {
  BodyRead out;
  auto boundary = MultipartBoundary(hp.get()[beast_http::field::content_type]);
  if (!boundary) {
    out.fail = boundary.error();
    co_return out;
  }
  out.fail = CheckDeclaredLength(hp, limit);
  if (out.fail) co_return out;
  beast::error_code ec;
  co_await SendContinueIfExpected(stream, hp.get(), ec);
  beast_http::request_parser<beast_http::buffer_body> bp(std::move(hp));
  bp.body_limit(limit);
  MultipartParser mp(*boundary, opt.spool_dir);
  std::vector<char> chunk(64 * 1024);
  Status st;
  while (!ec && st && !bp.is_done()) {
    bp.get().body().data = chunk.data();
    bp.get().body().size = chunk.size();
    stream.expires_after(opt.body_timeout);  // per read: an idle timeout, not a total one
    co_await beast_http::async_read_some(stream, buffer, bp, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == beast_http::error::need_buffer) ec = {};
    if (!ec) st = mp.Feed(std::string_view(chunk.data(), chunk.size() - bp.get().body().size));
  }
  if (ec) {
    out = BodyReadFailure(ec, limit);
  } else if (!st) {
    out.fail = st.error();
  } else if (auto fin = mp.Finish(); !fin) {
    out.fail = fin.error();
  } else {
    req.files = mp.ReleaseFiles();
    req.form = mp.ReleaseFields();
    req.headers = std::move(bp.get().base());
    out.read = true;
  }
  co_return out;
}

}  // namespace

asio::awaitable<void> Server::Impl::Session(tcp::socket socket) {
  std::uint64_t conn_id = 0;
  auto handle = Register(conn_id, socket.get_executor());
  beast::tcp_stream stream(std::move(socket));
  handle->close = [&stream] {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream.socket().close(ec);
  };
  std::string remote;
  {
    beast::error_code ec;
    auto ep = stream.socket().remote_endpoint(ec);
    if (!ec) remote = ep.address().to_string();
  }
  beast::flat_buffer buffer;
  bool first = true;
  bool upgraded = false;  // the stream now belongs to a WebSocket
  try {
    while (true) {
      handle->idle = true;
      if (draining) break;
      beast::error_code ec;
      if (buffer.size() == 0) {
        stream.expires_after(first ? opt.header_timeout : opt.idle_timeout);
        const std::size_t n =
            co_await stream.async_read_some(buffer.prepare(8192), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) break;
        buffer.commit(n);
      }
      handle->idle = false;
      first = false;
      const auto started = Clock::now();
      in_flight_gauge.Inc();
      struct InFlight {
        metrics::Gauge& g;
        ~InFlight() { g.Dec(); }
      } in_flight{in_flight_gauge};

      // Header: a client has header_timeout to send all of it, however slowly it trickles.
      beast_http::request_parser<beast_http::empty_body> hp;
      hp.header_limit(static_cast<std::uint32_t>(opt.max_header_bytes));
      hp.eager(false);
      // Each route checks its own limit before reading the body. (Boost 1.74 mishandles boost::none here.)
      hp.body_limit(std::numeric_limits<std::uint64_t>::max());
      stream.expires_after(opt.header_timeout);
      co_await beast_http::async_read_header(stream, buffer, hp, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (ec == beast_http::error::header_limit) {
          co_await WriteSimple(stream, beast_http::status::request_header_fields_too_large,
                               Error(ErrorCode::kHeaderTooLarge, "request headers exceed " +
                                                                     std::to_string(opt.max_header_bytes) + " bytes"),
                               NewRequestId(), opt.body_timeout);
        } else if (!IsDisconnect(ec)) {
          co_await WriteSimple(stream, beast_http::status::bad_request,
                               Error::InvalidArgument("malformed HTTP request: " + ec.message()), NewRequestId(),
                               opt.body_timeout);
        }
        break;
      }
      auto& header = hp.get();  // valid until the body parser takes over `hp`
      const std::string method_string(header.method_string());
      Request req;
      req.method = header.method();
      req.target = std::string(header.target());
      {
        auto rid = header["X-Request-ID"];
        req.request_id = IsValidRequestId(rid) ? std::string(rid) : NewRequestId();
      }
      req.remote_address = remote;
      const auto qmark = req.target.find('?');
      const std::string raw_path = req.target.substr(0, qmark);
      if (qmark != std::string::npos) req.query = req.target.substr(qmark + 1);
      bool keep_alive = header.keep_alive();
      const bool body_pending = hp.chunked() || (hp.content_length() && *hp.content_length() > 0);
      bool body_read = !body_pending;

      Response res;
      std::string endpoint = "unmatched";
      std::optional<Error> fail;
      const RouteMatch match =
          raw_path.empty() || raw_path.front() != '/' ? RouteMatch{} : router.Match(req.method, raw_path);
      if (auto decoded = PercentDecode(raw_path)) req.path = std::move(*decoded);
      else fail = Error::InvalidArgument("malformed percent-encoding in path");

      if (fail) {
      } else if (match.route == nullptr && !match.allowed.empty()) {
        std::string allow;
        for (auto v : match.allowed) allow += (allow.empty() ? "" : ", ") + std::string(MethodLabel(v));
        res = Response::FromError(Error(ErrorCode::kMethodNotAllowed, "method " + method_string +
                                                                          " not allowed on " + req.path +
                                                                          "; allowed: " + allow));
        res.WithHeader("Allow", allow);
      } else if (match.route == nullptr) {
        fail = Error::NotFound("no route for " + method_string + " " + req.path);
      } else {
        const Route& route = *match.route;
        endpoint = route.path;
        req.route = route.path;
        req.path_params = match.params;
        std::optional<Response> guard_answer;
        if (router.guard()) {
          // The guard sees the headers before the body parser takes them over (it moves them into
          // req.headers again once the body is read).
          req.headers = header.base();
          try {
            guard_answer = co_await router.guard()(route, req);
          } catch (const std::exception& e) {
            req.Log(log::Level::kError, "guard threw", {{"error", e.what()}, {"route", endpoint}});
            guard_answer = Response::FromError(Error::Internal("internal error (request id " + req.request_id + ")"));
          }
        }
        if (guard_answer) {
          res = std::move(*guard_answer);
        } else if (route.websocket) {
          if (websocket::is_upgrade(header)) {
            handle->streaming = true;
            upgraded = true;
            co_await RunWebSocket(stream, route, req, header, handle);
            requests.With({MethodLabel(req.method), endpoint, "101"}).Inc();
            if (opt.access_log) {
              log::Info("websocket closed", {{"request_id", req.request_id}, {"route", endpoint},
                                             {"duration_ms", std::chrono::duration<double, std::milli>(
                                                                 Clock::now() - started).count()}});
            }
            break;
          }
          res = Response::FromError(Error::InvalidArgument("this route only speaks WebSocket; send an Upgrade"));
          res.status = beast_http::status::upgrade_required;
          res.WithHeader("Upgrade", "websocket");
        } else {
          const bool multipart = route.body == BodyKind::kMultipart;
          const std::size_t limit =
              route.max_body_bytes ? route.max_body_bytes : (multipart ? opt.max_upload_bytes : opt.max_body_bytes);
          BodyRead body;
          if (multipart) {
            body = co_await ReadMultipartBody(stream, buffer, hp, limit, opt, req);
          } else {
            body = co_await ReadBufferedBody(stream, buffer, hp, limit, opt, req);
          }
          if (body.disconnected) break;
          fail = body.fail;
          body_read = body_read || body.read;
        }
        if (!fail && !guard_answer && res.body.empty() && res.status == beast_http::status::ok) {
          try {
            res = co_await route.handler(req);
          } catch (const std::exception& e) {
            req.Log(log::Level::kError, "handler threw", {{"error", e.what()}, {"route", endpoint}});
            fail = Error::Internal("internal error (request id " + req.request_id + ")");
          }
        }
      }
      if (fail) res = Response::FromError(*fail);
      for (const auto& f : req.files) {
        std::error_code fec;
        std::filesystem::remove(f.path, fec);  // files a handler kept were moved away already
      }
      if (!body_read || draining) keep_alive = false;

      // Write the response.
      std::size_t bytes = 0;
      if (res.stream) {
        beast_http::response<beast_http::empty_body> head{res.status, 11};
        head.set(beast_http::field::server, "modulo");
        head.set(beast_http::field::content_type, res.content_type);
        head.set(beast_http::field::cache_control, "no-cache");
        head.set("X-Accel-Buffering", "no");
        head.set("X-Request-ID", req.request_id);
        for (auto& [k, v] : res.headers) head.set(k, v);
        head.chunked(true);
        head.keep_alive(false);
        beast_http::response_serializer<beast_http::empty_body> sr{head};
        stream.expires_after(opt.body_timeout);
        co_await beast_http::async_write_header(stream, sr, asio::redirect_error(asio::use_awaitable, ec));
        if (!ec) {
          SseWriterImpl writer(stream, opt.body_timeout);
          handle->streaming = true;
          handle->close = [&writer, &stream] {
            writer.Close();
            beast::error_code e;
            stream.socket().shutdown(tcp::socket::shutdown_both, e);
          };
          try {
            co_await res.stream(writer);
          } catch (const std::exception& e) {
            req.Log(log::Level::kError, "event stream producer threw", {{"error", e.what()}});
          }
          if (!writer.closed()) {
            stream.expires_after(opt.body_timeout);
            co_await asio::async_write(stream, beast_http::make_chunk_last(),
                                       asio::redirect_error(asio::use_awaitable, ec));
          }
          bytes = writer.bytes();
          handle->close = [&stream] {
            beast::error_code e;
            stream.socket().shutdown(tcp::socket::shutdown_both, e);
            stream.socket().close(e);
          };
        }
        keep_alive = false;
      } else {
        beast_http::response<beast_http::string_body> out{res.status, 11};
        out.set(beast_http::field::server, "modulo");
        out.set(beast_http::field::content_type, res.content_type);
        out.set("X-Request-ID", req.request_id);
        for (auto& [k, v] : res.headers) out.set(k, v);
        out.keep_alive(keep_alive);
        bytes = res.body.size();
        if (req.method == beast_http::verb::head) {
          out.content_length(bytes);
        } else {
          out.body() = std::move(res.body);
          out.prepare_payload();
        }
        stream.expires_after(opt.body_timeout);
        co_await beast_http::async_write(stream, out, asio::redirect_error(asio::use_awaitable, ec));
      }
      const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
      const auto status_code = static_cast<unsigned>(res.status);
      char status_text[8];
      std::snprintf(status_text, sizeof status_text, "%u", status_code);
      const std::string_view method = MethodLabel(req.method);
      requests.With({method, endpoint, status_text}).Inc();
      durations.With({method, endpoint}).Observe(seconds);
      if (opt.access_log) {
        log::Info("request", {{"request_id", req.request_id},
                              {"method", method_string},
                              {"route", endpoint},
                              {"path", req.path},
                              {"status", static_cast<std::int64_t>(status_code)},
                              {"bytes", static_cast<std::int64_t>(bytes)},
                              {"duration_ms", seconds * 1000.0},
                              {"remote", remote}});
      }
      if (ec || !keep_alive) break;
    }
  } catch (const std::exception& e) {
    log::Error("connection failed", {{"error", e.what()}});
  }
  if (!upgraded) {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream.socket().close(ec);
  }
  // A drain request may already be posted for this connection; it must find nothing to close,
  // because `stream` dies with this frame. (It runs on this same thread, so no race.)
  handle->close = nullptr;
  Unregister(conn_id);
  --open_connections;
  open_gauge.Dec();
}

asio::awaitable<void> Server::Impl::RunWebSocket(beast::tcp_stream& stream, const Route& route, Request& req,
                                                 const beast_http::request<beast_http::empty_body>& upgrade,
                                                 const std::shared_ptr<ConnHandle>& handle) {
  auto ws = std::make_shared<WebSocketImpl>(std::move(stream));
  handle->close = [ws] { ws->Close(); };
  ws->ws().set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
  ws->ws().set_option(websocket::stream_base::decorator([id = req.request_id](websocket::response_type& r) {
    r.set(beast_http::field::server, "modulo");
    r.set("X-Request-ID", id);
  }));
  ws->ws().read_message_max(1024 * 1024);
  beast::error_code ec;
  co_await ws->ws().async_accept(upgrade, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  req.headers = upgrade.base();
  asio::co_spawn(ws->ws().get_executor(), ws->WriteLoop(), asio::detached);
  try {
    co_await route.websocket(*ws, req);
  } catch (const std::exception& e) {
    req.Log(log::Level::kError, "websocket handler threw", {{"error", e.what()}});
  }
  ws->Close();
  // Let the writer flush and send its close frame before the connection is counted closed.
  asio::steady_timer t(ws->ws().get_executor());
  for (int i = 0; i < 200 && !ws->writer_done(); ++i) {
    t.expires_after(std::chrono::milliseconds(10));
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (!ws->writer_done()) {
    beast::get_lowest_layer(ws->ws()).socket().close(ec);
  }
  handle->close = [] {};
}

}  // namespace modulo::http
