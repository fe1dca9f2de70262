// In-process tests of the HTTP server: real sockets on loopback, a raw client, no mocks.
#include "modulo/http/server.h"

#include <utility>

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <filesystem>
#include <future>
#include <thread>

#include "modulo/http/json_body.h"
#include "modulo/http/streams.h"

namespace modulo::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Sends raw bytes and reads until the server closes or `timeout` passes.
std::string Exchange(std::uint16_t port, const std::string& request, std::chrono::milliseconds timeout =
                                                                         std::chrono::milliseconds(3000)) {
  asio::io_context io;
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  asio::write(s, asio::buffer(request));
  std::string out;
  char buf[65536];
  timeval tv{static_cast<long>(timeout.count() / 1000), static_cast<long>((timeout.count() % 1000) * 1000)};
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  while (true) {
    const ssize_t n = ::recv(s.native_handle(), buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

std::string Get(std::uint16_t port, const std::string& target, const std::string& extra = "") {
  return Exchange(port, "GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + extra + "\r\n");
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spool_ = std::filesystem::temp_directory_path() / ("modulo_server_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(spool_);
    Route hello;
    hello.path = "/hello";
    hello.handler = [](Request& r) -> asio::awaitable<Response> {
      co_return Response::Json({{"hello", r.QueryParam("name").value_or("world")}});
    };
    router_.Add(hello);
    Route item;
    item.path = "/items/{id}";
    item.handler = [](Request& r) -> asio::awaitable<Response> { co_return Response::Json({{"id", r.PathParam("id")}}); };
    router_.Add(item);
    Route del = item;
    del.method = beast_http::verb::delete_;
    router_.Add(del);
    Route echo;
    echo.method = beast_http::verb::post;
    echo.path = "/echo";
    echo.max_body_bytes = 1024;
    echo.handler = [](Request& r) -> asio::awaitable<Response> {
      auto j = ParseJsonBody(r);
      if (!j) co_return Response::FromError(j.error());
      co_return Response::Json(*j);
    };
    router_.Add(echo);
    Route slow;
    slow.path = "/slow";
    slow.handler = [](Request&) -> asio::awaitable<Response> {
      asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(700));
      co_await t.async_wait(asio::use_awaitable);
      co_return Response::Text("done", "text/plain");
    };
    router_.Add(slow);
    Route boom;
    boom.path = "/boom";
    boom.handler = [](Request&) -> asio::awaitable<Response> {
      throw std::runtime_error("secret detail");
      co_return Response{};
    };
    router_.Add(boom);
    Route upload;
    upload.method = beast_http::verb::post;
    upload.path = "/upload";
    upload.body = BodyKind::kMultipart;
    upload.max_body_bytes = 1 << 20;
    upload.handler = [](Request& r) -> asio::awaitable<Response> {
      nlohmann::json files = nlohmann::json::array();
      for (const auto& f : r.files) files.push_back({{"name", f.filename}, {"size", f.size}});
      co_return Response::Json({{"files", files}, {"fields", r.form.size()}});
    };
    router_.Add(upload);
    Route events;
    events.path = "/events";
    events.handler = [](Request&) -> asio::awaitable<Response> {
      co_return Response::EventStream([](SseWriter& w) -> asio::awaitable<void> {
        for (int i = 0; i < 3; ++i) {
          if (!co_await w.Send("tick", "{\"n\":" + std::to_string(i) + "}\nsecond line")) co_return;
        }
      });
    };
    router_.Add(events);
    Route ws;
    ws.path = "/ws";
    ws.websocket = [](WebSocket& sock, Request&) -> asio::awaitable<void> {
      sock.Send("{\"type\":\"connection_established\"}");
      while (auto msg = co_await sock.Read()) sock.Send("echo:" + *msg);
    };
    router_.Add(ws);
  }

  void StartServer(ServerOptions opt = {}) {
    opt.port = 0;
    opt.threads = 2;
    opt.spool_dir = spool_;
    opt.access_log = false;
    opt.max_header_bytes = 2048;
    server_ = std::make_unique<Server>(opt, router_, registry_);
    ASSERT_TRUE(server_->Start());
    port_ = server_->port();
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    std::filesystem::remove_all(spool_);
  }

  Router router_;
  metrics::Registry registry_;
  std::unique_ptr<Server> server_;
  std::uint16_t port_ = 0;
  std::filesystem::path spool_;
};

TEST_F(ServerTest, ServesJsonWithRequestIds) {
  StartServer();
  auto r = Get(port_, "/hello?name=a%20b");
  EXPECT_NE(r.find("HTTP/1.1 200 OK"), std::string::npos) << r;
  EXPECT_NE(r.find("{\"hello\":\"a b\"}"), std::string::npos) << r;
  EXPECT_NE(r.find("X-Request-ID: "), std::string::npos);
  auto echoed = Get(port_, "/hello", "X-Request-ID: my-id-1\r\n");
  EXPECT_NE(echoed.find("X-Request-ID: my-id-1\r\n"), std::string::npos) << echoed;
  auto replaced = Get(port_, "/hello", "X-Request-ID: bad id\"\r\n");
  EXPECT_EQ(replaced.find("bad id"), std::string::npos);
}

TEST_F(ServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  StartServer();
  std::string reqs;
  for (int i = 0; i < 5; ++i) reqs += "GET /items/" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n";
  reqs += "GET /items/last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  auto r = Exchange(port_, reqs);
  std::size_t count = 0;
  for (auto p = r.find("HTTP/1.1 200"); p != std::string::npos; p = r.find("HTTP/1.1 200", p + 1)) ++count;
  EXPECT_EQ(count, 6u);
  EXPECT_NE(r.find("{\"id\":\"last\"}"), std::string::npos);
}

TEST_F(ServerTest, UnknownRouteIs404AndWrongMethodIs405WithAllow) {
  StartServer();
  auto r = Get(port_, "/nope");
  EXPECT_NE(r.find("HTTP/1.1 404"), std::string::npos) << r;
  EXPECT_NE(r.find("\"code\":\"not_found\""), std::string::npos) << r;
  EXPECT_NE(r.find("\"detail\":"), std::string::npos) << r;
  auto m = Exchange(port_, "PUT /items/3 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  EXPECT_NE(m.find("HTTP/1.1 405"), std::string::npos) << m;
  EXPECT_NE(m.find("Allow: GET, DELETE"), std::string::npos) << m;
}

TEST_F(ServerTest, MalformedRequestsAre400) {
  StartServer();
  EXPECT_NE(Exchange(port_, "GARBAGE\r\n\r\n").find("HTTP/1.1 400"), std::string::npos);
  EXPECT_NE(Exchange(port_, "GET /hello HTTP/1.1\r\nBad Header\r\n\r\n").find("HTTP/1.1 400"), std::string::npos);
  EXPECT_NE(Exchange(port_, "GET /hello HTTP/9.9\r\n\r\n").find("HTTP/1.1 400"), std::string::npos);
  EXPECT_NE(Get(port_, "/items/%zz").find("HTTP/1.1 400"), std::string::npos);
}

TEST_F(ServerTest, OversizeHeadersAre431) {
  StartServer();
  auto r = Get(port_, "/hello", "X-Big: " + std::string(4096, 'a') + "\r\n");
  EXPECT_NE(r.find("HTTP/1.1 431"), std::string::npos) << r.substr(0, 200);
  EXPECT_NE(r.find("header_too_large"), std::string::npos);
}

TEST_F(ServerTest, OversizeBodyIs413BeforeItIsSent) {
  StartServer();
  // Announce a huge body but send none of it: the answer must not wait for the body.
  auto r = Exchange(port_, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           "Content-Length: 2000000000\r\n\r\n");
  EXPECT_NE(r.find("HTTP/1.1 413"), std::string::npos) << r;
  // Chunked bodies have no length up front: stopped at the limit.
  std::string chunk(2000, 'a');
  auto c = Exchange(port_, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n7d0\r\n" + chunk + "\r\n0\r\n\r\n");
  EXPECT_NE(c.find("HTTP/1.1 413"), std::string::npos) << c.substr(0, 200);
}

TEST_F(ServerTest, JsonErrorsAre415And400) {
  StartServer();
  auto r = Exchange(port_, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
                           "Connection: close\r\n\r\n{}");
  EXPECT_NE(r.find("HTTP/1.1 415"), std::string::npos) << r;
  auto b = Exchange(port_, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           "Content-Length: 5\r\nConnection: close\r\n\r\n{\"a\":");
  EXPECT_NE(b.find("HTTP/1.1 400"), std::string::npos) << b;
  EXPECT_NE(b.find("at byte"), std::string::npos) << b;
}

TEST_F(ServerTest, HandlerExceptionsAre500WithoutDetails) {
  StartServer();
  auto r = Get(port_, "/boom");
  EXPECT_NE(r.find("HTTP/1.1 500"), std::string::npos);
  EXPECT_EQ(r.find("secret detail"), std::string::npos);
  EXPECT_NE(Get(port_, "/hello").find("200 OK"), std::string::npos) << "still serving";
}

TEST_F(ServerTest, MultipartUploadIsStreamedToDiskAndCleanedUp) {
  StartServer();
  const std::string content(300000, 'z');
  const std::string body = "--B\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.txt\"\r\n\r\n" +
                           content + "\r\n--B\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--B--\r\n";
  auto r = Exchange(port_, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\n"
                           "Expect: 100-continue\r\nConnection: close\r\nContent-Length: " +
                               std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_NE(r.find("HTTP/1.1 100 Continue"), std::string::npos);
  EXPECT_NE(r.find("{\"fields\":1,\"files\":[{\"name\":\"a.txt\",\"size\":300000}]}"), std::string::npos) << r;
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(spool_), std::filesystem::directory_iterator()), 0)
      << "spooled files are removed after the request";
  auto wrong = Exchange(port_, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                               "Content-Length: 2\r\nConnection: close\r\n\r\n{}");
  EXPECT_NE(wrong.find("HTTP/1.1 415"), std::string::npos) << wrong;
}

TEST_F(ServerTest, ServerSentEventsAreFramedPerLine) {
  StartServer();
  auto r = Get(port_, "/events");
  EXPECT_NE(r.find("Content-Type: text/event-stream"), std::string::npos) << r;
  EXPECT_NE(r.find("event: tick\ndata: {\"n\":0}\ndata: second line\n\n"), std::string::npos) << r;
  EXPECT_NE(r.find("data: {\"n\":2}"), std::string::npos) << r;
}

TEST_F(ServerTest, WebSocketUpgradeAndEcho) {
  StartServer();
  asio::io_context io;
  boost::beast::websocket::stream<tcp::socket> ws(io);
  ws.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
  ws.handshake("localhost", "/ws");
  boost::beast::flat_buffer buf;
  ws.read(buf);
  EXPECT_EQ(boost::beast::buffers_to_string(buf.data()), "{\"type\":\"connection_established\"}");
  buf.clear();
  ws.write(asio::buffer(std::string("ping")));
  ws.read(buf);
  EXPECT_EQ(boost::beast::buffers_to_string(buf.data()), "echo:ping");
  ws.close(boost::beast::websocket::close_code::normal);
  auto plain = Get(port_, "/ws");
  EXPECT_NE(plain.find("HTTP/1.1 426"), std::string::npos) << plain;
}

TEST_F(ServerTest, SlowHeadersAreDroppedAfterTheTimeout) {
  ServerOptions opt;
  opt.header_timeout = std::chrono::seconds(1);
  StartServer(opt);
  asio::io_context io;
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
  const std::string req = "GET /hello HTTP/1.1\r\nHost: x\r\n";
  const auto start = std::chrono::steady_clock::now();
  boost::system::error_code ec;
  for (char c : req) {
    asio::write(s, asio::buffer(&c, 1), ec);
    if (ec) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
  char b;
  s.read_some(asio::buffer(&b, 1), ec);  // closed by the server
  EXPECT_TRUE(ec);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
}

TEST_F(ServerTest, ConnectionLimitRefusesWith503) {
  ServerOptions opt;
  opt.max_connections = 2;
  StartServer(opt);
  asio::io_context io;
  std::vector<tcp::socket> held;
  for (int i = 0; i < 2; ++i) {
    held.emplace_back(io);
    held.back().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto r = Get(port_, "/hello");
  EXPECT_NE(r.find("HTTP/1.1 503"), std::string::npos) << r;
  held.clear();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_NE(Get(port_, "/hello").find("200 OK"), std::string::npos);
}

TEST_F(ServerTest, ShutdownLetsInFlightRequestsFinish) {
  StartServer();
  auto slow = std::async(std::launch::async, [this] { return Get(port_, "/slow"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  server_->Shutdown();
  const std::string r = slow.get();
  EXPECT_NE(r.find("HTTP/1.1 200"), std::string::npos) << r;
  EXPECT_NE(r.find("done"), std::string::npos);
  EXPECT_NE(r.find("Connection: close"), std::string::npos);
  server_.reset();
}

TEST_F(ServerTest, MetricsUseRouteTemplates) {
  StartServer();
  Get(port_, "/items/1");
  Get(port_, "/items/2");
  Get(port_, "/nope/123");
  const auto text = registry_.Expose();
  EXPECT_NE(text.find("rag_requests_total{method=\"GET\",endpoint=\"/items/{id}\",status=\"200\"} 2"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("endpoint=\"unmatched\",status=\"404\""), std::string::npos);
  EXPECT_EQ(text.find("/nope/123"), std::string::npos);
}

TEST(ServerStartTest, BusyPortIsAClearError) {
  Router router;
  metrics::Registry r1, r2;
  ServerOptions opt;
  opt.port = 0;
  Server a(opt, router, r1);
  ASSERT_TRUE(a.Start());
  opt.port = a.port();
  opt.spool_dir = std::filesystem::temp_directory_path();
  Server b(opt, router, r2);
  auto st = b.Start();
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find(std::to_string(a.port())), std::string::npos);
}

}  // namespace
}  // namespace modulo::http
