#include <gtest/gtest.h>

#include "modulo/embed/remote/http_client.h"
#include "modulo/embed/remote/remote_embedders.h"

namespace modulo::embed::remote {
namespace {

TEST(EstimateTokensTest, WordsPunctuationAndLongWords) {
  EXPECT_EQ(EstimateTokens(""), 0u);
  EXPECT_EQ(EstimateTokens("hello, world!"), 4u);
  EXPECT_EQ(EstimateTokens("internationalization"), 4u);  // 20 bytes → 4 pieces of up to 6
  const std::string cjk = "日本語のテキスト";             // 3-byte characters: pieces end on character boundaries
  for (auto [b, e] : EstimateTokenSpans(cjk)) {
    EXPECT_EQ(b % 3, 0u);
    EXPECT_EQ(e % 3, 0u);
  }
}

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
}

TEST(HttpErrorTest, ProviderMessagesAreKept) {
  EXPECT_EQ(HttpError({401, R"({"error": {"message": "bad key"}})", ""}, "svc").code(), ErrorCode::kUnauthenticated);
  auto wx = HttpError({400, R"({"errors": [{"code": "x", "message": "project_id missing"}]})", ""}, "watsonx.ai");
  EXPECT_EQ(wx.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(wx.message().find("project_id missing"), std::string::npos);
  EXPECT_EQ(HttpError({429, "", "1"}, "svc").code(), ErrorCode::kRateLimited);
  EXPECT_EQ(HttpError({503, "<html>", ""}, "svc").code(), ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace modulo::embed::remote
