// The baseline for the HTTP benchmark: a bare Boost.Beast server with the same threading model as
// Modulo's (one io_context per thread, a coroutine per connection, keep-alive) that answers every
// request with the same 15-byte JSON body as /health, without routing, metrics or logging.
// Usage: beast_echo PORT THREADS
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

asio::awaitable<void> Session(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  beast::error_code ec;
  while (true) {
    http::request<http::string_body> req;
    co_await http::async_read(stream, buffer, req, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    http::response<http::string_body> res{http::status::ok, 11};
    res.set(http::field::content_type, "application/json");
    res.keep_alive(req.keep_alive());
    res.body() = R"({"status":"ok"})";
    res.prepare_payload();
    co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !res.keep_alive()) break;
  }
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

asio::awaitable<void> Accept(tcp::acceptor& acceptor, std::vector<std::unique_ptr<asio::io_context>>& ctxs) {
  std::size_t next = 0;
  while (true) {
    auto& ctx = *ctxs[next++ % ctxs.size()];
    tcp::socket s = co_await acceptor.async_accept(ctx, asio::use_awaitable);
    s.set_option(tcp::no_delay(true));
    asio::co_spawn(ctx, Session(std::move(s)), asio::detached);
  }
}

int main(int argc, char** argv) {
  const unsigned short port = argc > 1 ? static_cast<unsigned short>(std::atoi(argv[1])) : 8099;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  std::vector<std::unique_ptr<asio::io_context>> ctxs;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  for (int i = 0; i < threads; ++i) {
    ctxs.push_back(std::make_unique<asio::io_context>(1));
    guards.push_back(asio::make_work_guard(*ctxs.back()));
  }
  tcp::acceptor acceptor(*ctxs[0], tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  asio::co_spawn(*ctxs[0], Accept(acceptor, ctxs), asio::detached);
  std::printf("beast_echo listening on %u with %d threads\n", port, threads);
  std::fflush(stdout);
  std::vector<std::thread> ts;
  for (auto& c : ctxs) ts.emplace_back([&c] { c->run(); });
  for (auto& t : ts) t.join();
}
