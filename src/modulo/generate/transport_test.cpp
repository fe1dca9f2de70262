#include <gtest/gtest.h>

#include <thread>

#include "modulo/generate/http_provider.h"
#include "modulo/generate/transport.h"

namespace modulo::generate::detail {
namespace {

std::vector<SseEvent> ParseInPieces(const std::string& stream, std::size_t piece) {
  SseParser p;
  std::vector<SseEvent> out;
  for (std::size_t i = 0; i < stream.size(); i += piece) {
    p.Feed(std::string_view(stream).substr(i, piece), [&](const SseEvent& e) {
      out.push_back(e);
      return true;
    });
  }
  return out;
}

TEST(SseParserTest, EventsSurviveAnySplit) {
  const std::string stream =
      ": keep-alive comment\r\n"
      "event: message_start\r\n"
      "data: {\"a\":1}\r\n\r\n"
      "id: 7\n"
      "data: line one\n"
      "data:line two\n\n"
      "event: ping\n\n"  // no data: not dispatched
      "data: [DONE]\n\n"
      "data: unterminated";
  for (std::size_t piece : {1u, 2u, 3u, 7u, 1000u}) {
    auto events = ParseInPieces(stream, piece);
    ASSERT_EQ(events.size(), 3u) << "piece " << piece;
    EXPECT_EQ(events[0].event, "message_start");
    EXPECT_EQ(events[0].data, "{\"a\":1}");
    EXPECT_EQ(events[1].event, "message");
    EXPECT_EQ(events[1].id, "7");
    EXPECT_EQ(events[1].data, "line one\nline two");
    EXPECT_EQ(events[2].data, "[DONE]");
  }
}

TEST(SseParserTest, StopsWhenTheHandlerSaysSo) {
  SseParser p;
  int n = 0;
  EXPECT_FALSE(p.Feed("data: a\n\ndata: b\n\n", [&](const SseEvent&) { return ++n < 1; }));
  EXPECT_EQ(n, 1);
}

TEST(BackoffTest, ExponentialWithJitterAndRetryAfter) {
  using std::chrono::milliseconds;
  for (int i = 0; i < 50; ++i) {
    const auto d1 = Backoff(1, milliseconds(100), "");
    EXPECT_GE(d1, milliseconds(50));
    EXPECT_LE(d1, milliseconds(100));
    const auto d3 = Backoff(3, milliseconds(100), "");
    EXPECT_GE(d3, milliseconds(200));
    EXPECT_LE(d3, milliseconds(400));
    EXPECT_LE(Backoff(30, milliseconds(100), ""), milliseconds(20000));
  }
  EXPECT_EQ(Backoff(1, milliseconds(100), "3"), milliseconds(3000));
  EXPECT_EQ(Backoff(1, milliseconds(100), "0"), milliseconds(0));
  EXPECT_EQ(RetryAfterSeconds("Wed, 21 Oct 2015 07:28:00 GMT"), -1);
  EXPECT_EQ(RetryAfterSeconds("12"), 12);
}

TEST(CancelTokenTest, WaitForWakesOnCancel) {
  CancelToken t;
  EXPECT_FALSE(t.WaitFor(std::chrono::milliseconds(10)));
  std::thread c([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    t.Cancel();
  });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(t.WaitFor(std::chrono::seconds(5)));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  c.join();
  EXPECT_TRUE(t.cancelled());
}

TEST(SemaphoreTest, LimitsAndCancels) {
  Semaphore s(1);
  ASSERT_TRUE(s.Acquire(nullptr));
  CancelToken t;
  t.Cancel();
  auto r = s.Acquire(&t);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kCancelled);
  s.Release();
  EXPECT_TRUE(s.Acquire(&t)) << "a free slot is taken even by a cancelled caller; the call itself then stops";
  s.Release();
  Semaphore unlimited(0);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(unlimited.Acquire(nullptr));
}

TEST(StatusErrorTest, CodesFollowTheTable) {
  EXPECT_EQ(StatusError(401, "p", "m").code(), ErrorCode::kUnauthenticated);
  EXPECT_EQ(StatusError(403, "p", "m").code(), ErrorCode::kUnauthenticated);
  EXPECT_EQ(StatusError(400, "p", "m").code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(StatusError(429, "p", "m").code(), ErrorCode::kRateLimited);
  EXPECT_EQ(StatusError(529, "p", "m").code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(RetryableStatus(529));
  EXPECT_TRUE(RetryableStatus(429));
  EXPECT_FALSE(RetryableStatus(400));
  EXPECT_NE(StatusError(400, "anthropic", "prompt is too long").message().find("prompt is too long"),
            std::string::npos);
}

TEST(PerformTest, HeadersWithControlCharactersAreNeverSent) {
  HttpRequest r;
  r.url = "http://127.0.0.1:9/v1/chat/completions";  // nothing listens: a send would be kUnavailable
  r.headers = {"Authorization: Bearer sk-1\r\nX-Injected: yes"};
  auto reply = Perform(r, TransferLimits{}, nullptr, nullptr);
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().code(), ErrorCode::kInvalidArgument) << reply.error().message();
}

TEST(PerformTest, UserAimedRequestsFollowTheEgressPolicy) {
  auto closed = net::EgressPolicy::Make("", false);
  ASSERT_TRUE(closed);
  HttpRequest r;
  r.url = "http://127.0.0.1:9/v1/chat/completions";
  r.egress = &*closed;
  auto reply = Perform(r, TransferLimits{}, nullptr, nullptr);
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().code(), ErrorCode::kPermissionDenied) << reply.error().message();
  // Allowed, the request goes out (and finds nothing listening on port 9).
  auto open = net::EgressPolicy::Make("127.0.0.1", false);
  r.egress = &*open;
  reply = Perform(r, TransferLimits{.connect_timeout = std::chrono::milliseconds(2000)}, nullptr, nullptr);
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().code(), ErrorCode::kUnavailable) << reply.error().message();
}

}  // namespace
}  // namespace modulo::generate::detail
