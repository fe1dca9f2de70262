#include "modulo/net/http_client.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

namespace modulo::net {
namespace {

TEST(HttpClientTest, BackoffDoublesAndHonoursRetryAfter) {
  RetryPolicy p;
  p.base_delay = std::chrono::milliseconds(100);
  p.max_delay = std::chrono::milliseconds(1000);
  HttpClient c(std::chrono::seconds(1), p);
  EXPECT_EQ(c.Backoff(1, ""), std::chrono::milliseconds(100));
  EXPECT_EQ(c.Backoff(3, ""), std::chrono::milliseconds(400));
  EXPECT_EQ(c.Backoff(10, ""), std::chrono::milliseconds(1000));
  EXPECT_EQ(c.Backoff(1, "0"), std::chrono::milliseconds(0));
  EXPECT_EQ(c.Backoff(1, "60"), std::chrono::milliseconds(1000)) << "capped";
  EXPECT_EQ(c.Backoff(2, "Wed, 21 Oct 2015 07:28:00 GMT"), std::chrono::milliseconds(200));
}

TEST(HttpClientTest, UnreachableServiceIsUnavailable) {
  RetryPolicy p;
  p.max_attempts = 2;
  p.base_delay = std::chrono::milliseconds(1);
  HttpClient c(std::chrono::seconds(2), p);
  auto r = c.Post("http://127.0.0.1:9/x", {}, "{}");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  auto g = c.Get("http://127.0.0.1:9/x", {});
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code(), ErrorCode::kUnavailable);
}

TEST(HttpErrorTest, ServiceMessagesAreKept) {
  EXPECT_EQ(HttpError({401, R"({"error": {"message": "bad key"}})", ""}, "svc").code(), ErrorCode::kUnauthenticated);
  auto wx = HttpError({400, R"({"errors": [{"code": "x", "message": "project_id missing"}]})", ""}, "watsonx.ai");
  EXPECT_EQ(wx.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(wx.message().find("project_id missing"), std::string::npos);
  EXPECT_EQ(HttpError({429, "", "1"}, "svc").code(), ErrorCode::kRateLimited);
  EXPECT_EQ(HttpError({503, "<html>", ""}, "svc").code(), ErrorCode::kUnavailable);
  auto plain = HttpError({500, R"({"code": 65535, "message": "boom"})", ""}, "svc");
  EXPECT_NE(plain.message().find("boom"), std::string::npos);
}

TEST(UrlEncodeTest, ReservedBytesAreEscaped) {
  EXPECT_EQ(UrlEncode("user_1-a.b~"), "user_1-a.b~");
  EXPECT_EQ(UrlEncode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
}

// A one-thread HTTP/1.1 server on 127.0.0.1 that answers every request on a connection with
// keep-alive, counting connections and requests, and echoing the method and path.
class TinyServer {
 public:
  TinyServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 8) != 0) return;
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~TinyServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    if (thread_.joinable()) thread_.join();
  }
  int port() const { return port_; }
  int connections() const { return connections_.load(); }
  int requests() const { return requests_.load(); }

 private:
  void Run() {
    while (!stop_) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      ++connections_;
      std::string buf;
      char tmp[4096];
      for (;;) {
        const auto head_end = buf.find("\r\n\r\n");
        if (head_end == std::string::npos) {
          const ssize_t n = ::read(c, tmp, sizeof tmp);
          if (n <= 0) break;
          buf.append(tmp, std::size_t(n));
          continue;
        }
        std::size_t body_len = 0;
        const auto cl = buf.find("Content-Length: ");
        if (cl != std::string::npos && cl < head_end) body_len = std::stoul(buf.substr(cl + 16));
        while (buf.size() < head_end + 4 + body_len) {
          const ssize_t n = ::read(c, tmp, sizeof tmp);
          if (n <= 0) break;
          buf.append(tmp, std::size_t(n));
        }
        if (buf.size() < head_end + 4 + body_len) break;
        ++requests_;
        const std::string line = buf.substr(0, buf.find("\r\n"));
        const std::string body = buf.substr(head_end + 4, body_len);
        const std::string reply = line.substr(0, line.rfind(' ')) + "|" + body;
        const std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                                 std::to_string(reply.size()) + "\r\nConnection: keep-alive\r\n\r\n" + reply;
        if (::write(c, resp.data(), resp.size()) != ssize_t(resp.size())) break;
        buf.erase(0, head_end + 4 + body_len);
      }
      ::close(c);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0}, requests_{0};
  std::thread thread_;
};

TEST(HttpClientTest, GetAndPostReuseOneConnectionPerThread) {
  TinyServer server;
  ASSERT_GT(server.port(), 0);
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
  HttpClient c(std::chrono::seconds(5));
  // Run on a fresh thread so that no handle from another test is involved.
  std::thread t([&] {
    for (int i = 0; i < 5; ++i) {
      auto g = c.Get(base + "/get?i=" + std::to_string(i), {});
      ASSERT_TRUE(g) << g.error().ToString();
      EXPECT_EQ(g->status, 200);
      EXPECT_EQ(g->body, "GET /get?i=" + std::to_string(i) + "|");
      auto p = c.Post(base + "/post", {"Content-Type: application/json"}, R"({"n":)" + std::to_string(i) + "}");
      ASSERT_TRUE(p) << p.error().ToString();
      EXPECT_EQ(p->body, "POST /post|{\"n\":" + std::to_string(i) + "}");
    }
  });
  t.join();
  EXPECT_EQ(server.requests(), 10);
  EXPECT_EQ(server.connections(), 1) << "the connection was not kept alive between requests";
}

}  // namespace
}  // namespace modulo::net

namespace modulo::net {
namespace {

TEST(HeaderValueTest, MatchesTheNameCaseInsensitivelyAndTrims) {
  EXPECT_EQ(HeaderValue("Retry-After: 3\r\n", "retry-after").value_or("?"), "3");
  EXPECT_EQ(HeaderValue("retry-after:\t120 \r\n", "retry-after").value_or("?"), "120");
  EXPECT_EQ(HeaderValue("RETRY-AFTER:Wed, 21 Oct 2026 07:28:00 GMT\r\n", "retry-after").value_or("?"),
            "Wed, 21 Oct 2026 07:28:00 GMT");
  EXPECT_FALSE(HeaderValue("Retry-Afterwards: 3\r\n", "retry-after"));
  EXPECT_FALSE(HeaderValue("Content-Type: text/plain\r\n", "retry-after"));
  EXPECT_FALSE(HeaderValue("Retry", "retry-after"));
  EXPECT_EQ(HeaderValue("Retry-After:\r\n", "retry-after").value_or("?"), "");
}

}  // namespace
}  // namespace modulo::net
