// The three clients against tests/e2e/fakes/llm_providers.py (a local implementation of each
// provider's documented protocol with scripted faults).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "modulo/generate/anthropic_messages.h"
#include "modulo/generate/fake_server_test_util.h"
#include "modulo/generate/openai_chat.h"
#include "modulo/generate/provider_registry.h"
#include "modulo/generate/watsonx_text.h"

namespace modulo::generate {
namespace {

using testing::Fake;
using Clock = std::chrono::steady_clock;

// Scenario ids unique within this process, so a repeated or shuffled run starts fresh counts.
std::string Unique(const std::string& id) {
  static std::atomic<int> n{0};
  return id + "-" + std::to_string(++n);
}

double SecondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

ProviderConfig ConfigFor(const std::string& type) {
  ProviderConfig c;
  c.type = type;
  c.model = type == "watsonx" ? "ibm/granite-3-8b-instruct" : type + "-test-model";
  c.timeout = std::chrono::seconds(5);
  c.max_retries = 3;
  c.retry_base_delay = std::chrono::milliseconds(20);
  if (type == "openai") {
    c.base_url = Fake().url() + "/v1";
    c.api_key = "sk-test";
  } else if (type == "anthropic") {
    c.base_url = Fake().url();
    c.api_key = "ak-test";
  } else {
    c.base_url = Fake().url();
    c.iam_url = Fake().url();
    c.api_key = "wx-test";
    c.project_id = "proj-1";
  }
  return c;
}

std::unique_ptr<LlmProvider> Make(const ProviderConfig& c) {
  auto p = MakeProvider(c);
  EXPECT_TRUE(p) << p.error().ToString();
  return p ? std::move(*p) : nullptr;
}

std::vector<ChatMessage> Ask(const std::string& question) {
  return {{"system", "Be brief."}, {"user", question}};
}

class ProviderTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { run_ = Unique(""); }
  std::string type() const { return GetParam(); }
  // A scenario tag unique to this provider, test and run.
  std::string Tag(const std::string& fault, const std::string& id) const { return "[[" + fault + ":" + Id(id) + "]]"; }
  std::string Id(const std::string& id) const { return type() + "-" + id + run_; }

 private:
  std::string run_;
};

TEST_P(ProviderTest, GenerateReturnsTextUsageAndFinishReason) {
  auto p = Make(ConfigFor(type()));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->name(), type());
  auto g = p->Generate(Ask("What is retrieval augmented generation?"), {});
  ASSERT_TRUE(g) << g.error().ToString();
  EXPECT_EQ(g->text.rfind("Echo: ", 0), 0u) << g->text;
  EXPECT_NE(g->text.find("generation?"), std::string::npos) << g->text;
  EXPECT_GT(g->usage.prompt_tokens, 0);
  EXPECT_GT(g->usage.completion_tokens, 0);
  EXPECT_EQ(g->finish_reason, "stop");
  EXPECT_EQ(g->model, p->model());
  if (type() == "anthropic") {
    EXPECT_NE(g->text.find("[system: Be brief.]"), std::string::npos) << "system must be the top-level field";
  }
}

TEST_P(ProviderTest, StreamDeltasConcatenateToTheText) {
  auto p = Make(ConfigFor(type()));
  ASSERT_TRUE(p);
  std::string joined;
  int deltas = 0;
  auto g = p->Stream(Ask("Tell me about vector search please"), {}, [&](std::string_view d) {
    EXPECT_FALSE(d.empty());
    joined += d;
    ++deltas;
    return true;
  });
  ASSERT_TRUE(g) << g.error().ToString();
  EXPECT_GT(deltas, 3);
  EXPECT_EQ(joined, g->text);
  EXPECT_EQ(g->text.rfind("Echo: ", 0), 0u);
  EXPECT_GT(g->usage.prompt_tokens, 0);
  EXPECT_EQ(g->usage.completion_tokens, deltas);
  EXPECT_EQ(g->finish_reason, "stop");
  EXPECT_FALSE(g->model.empty());
}

TEST_P(ProviderTest, MaxNewTokensEndsWithLength) {
  auto p = Make(ConfigFor(type()));
  ASSERT_TRUE(p);
  GenerationParams params;
  params.max_new_tokens = 2;
  params.stop = {"\n\n"};
  auto g = p->Generate(Ask("one two three four five"), params);
  ASSERT_TRUE(g) << g.error().ToString();
  EXPECT_EQ(g->finish_reason, "length");
  EXPECT_EQ(g->usage.completion_tokens, 2);
  auto s = p->Stream(Ask("one two three four five"), params, [](std::string_view) { return true; });
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(s->finish_reason, "length");
  EXPECT_EQ(s->text, g->text);
}

TEST_P(ProviderTest, GreedyParametersAreAccepted) {
  auto p = Make(ConfigFor(type()));
  ASSERT_TRUE(p);
  GenerationParams params;
  params.temperature = 0;
  params.top_p = 0.9;
  params.top_k = 500;
  params.repetition_penalty = 3.0;  // clamped for watsonx, ignored elsewhere
  auto g = p->Generate(Ask("hello"), params);
  EXPECT_TRUE(g) << g.error().ToString();
}

TEST_P(ProviderTest, WrongKeyIsUnauthenticatedWithTheProviderMessage) {
  auto c = ConfigFor(type());
  c.api_key = "wrong";
  auto p = Make(c);
  ASSERT_TRUE(p);
  auto g = p->Generate(Ask("hello"), {});
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code(), ErrorCode::kUnauthenticated) << g.error().ToString();
  const std::string expected = type() == "openai"      ? "Incorrect API key"
                               : type() == "anthropic" ? "invalid x-api-key"
                                                       : "API key could not be found";
  EXPECT_NE(g.error().message().find(expected), std::string::npos) << g.error().message();
  auto s = p->Stream(Ask("hello"), {}, [](std::string_view) { return true; });
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), ErrorCode::kUnauthenticated);
}

TEST_P(ProviderTest, RateLimitIsRetriedAfterRetryAfter) {
  auto p = Make(ConfigFor(type()));
  ASSERT_TRUE(p);
  const auto start = Clock::now();
  auto g = p->Generate(Ask("hello " + Tag("ratelimit_once", "rl")), {});
  ASSERT_TRUE(g) << g.error().ToString();
  EXPECT_GE(SecondsSince(start), 0.95) << "Retry-After: 1 must be honoured";
  EXPECT_EQ(Fake().Requests(Id("rl")), 2);
}

TEST_P(ProviderTest, PersistentRateLimitGivesRateLimitedWithRetryAfter) {
  auto c = ConfigFor(type());
  c.max_retries = 2;
  auto p = Make(c);
  ASSERT_TRUE(p);
  auto g = p->Stream(Ask("hello " + Tag("ratelimit_always", "rla")), {}, [](std::string_view) { return true; });
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code(), ErrorCode::kRateLimited) << g.error().ToString();
  EXPECT_EQ(g.error().details(), R"({"retry_after":0})");
  EXPECT_EQ(Fake().Requests(Id("rla")), 3) << "1 attempt + max_retries";
}

TEST_P(ProviderTest, ServerErrorIsRetried) {
  auto p = Make(ConfigFor(type()));
  ASSERT_TRUE(p);
  std::string joined;
  auto g = p->Stream(Ask("hello " + Tag(type() == "anthropic" ? "overloaded_once" : "error500_once", "5xx")), {},
                     [&](std::string_view d) {
                       joined += d;
                       return true;
                     });
  ASSERT_TRUE(g) << g.error().ToString();
  EXPECT_EQ(joined, g->text);
  EXPECT_EQ(Fake().Requests(Id("5xx")), 2);
}

TEST_P(ProviderTest, ContextLengthIsInvalidArgumentWithTheProviderMessage) {
  auto p = Make(ConfigFor(type()));
  ASSERT_TRUE(p);
  auto g = p->Generate(Ask("hello " + Tag("context_length", "ctx")), {});
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code(), ErrorCode::kInvalidArgument);
  const std::string expected = type() == "openai"      ? "maximum context length"
                               : type() == "anthropic" ? "prompt is too long"
                                                       : "cannot exceed the total tokens limit";
  EXPECT_NE(g.error().message().find(expected), std::string::npos) << g.error().message();
  EXPECT_EQ(Fake().Requests(Id("ctx")), 1) << "a 400 is not retried";
}

TEST_P(ProviderTest, LongPromptsAreSentWholeAndTheContextLimitIsTheProvidersCall) {
  auto p = Make(ConfigFor(type()));
  ASSERT_TRUE(p);
  std::string words;
  for (int i = 0; i < 1500; ++i) words += "word" + std::to_string(i) + " ";
  auto g = p->Generate(Ask(words), {});
  ASSERT_TRUE(g) << g.error().ToString();
  EXPECT_GE(g->usage.prompt_tokens, 1500);
  for (int i = 0; i < 600; ++i) words += "more ";
  auto too_long = p->Stream(Ask(words), {}, [](std::string_view) { return true; });
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().code(), ErrorCode::kInvalidArgument) << too_long.error().ToString();
}

TEST_P(ProviderTest, AThrowingConsumerEndsTheCallAsInternal) {
  auto p = Make(ConfigFor(type()));
  ASSERT_TRUE(p);
  auto g = p->Stream(Ask("alpha beta"), {}, [](std::string_view) -> bool { throw std::runtime_error("boom"); });
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code(), ErrorCode::kInternal);
  EXPECT_NE(g.error().message().find("boom"), std::string::npos);
}

TEST_P(ProviderTest, StreamCutMidAnswerIsUnavailableAndNotRetried) {
  auto p = Make(ConfigFor(type()));
  ASSERT_TRUE(p);
  std::string joined;
  auto g = p->Stream(Ask("alpha beta gamma delta " + Tag("truncate", "cut")), {}, [&](std::string_view d) {
    joined += d;
    return true;
  });
  ASSERT_FALSE(g) << "a partial answer must not be a success";
  EXPECT_EQ(g.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(g.error().message().find("terminal event"), std::string::npos) << g.error().message();
  EXPECT_FALSE(joined.empty());
  EXPECT_EQ(Fake().Requests(Id("cut")), 1) << "no retry once text was delivered";
}

TEST_P(ProviderTest, WholeResponseCutIsUnavailable) {
  auto c = ConfigFor(type());
  c.max_retries = 1;
  auto p = Make(c);
  ASSERT_TRUE(p);
  auto g = p->Generate(Ask("alpha " + Tag("truncate", "cutwhole")), {});
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code(), ErrorCode::kUnavailable) << g.error().ToString();
  EXPECT_EQ(Fake().Requests(Id("cutwhole")), 2) << "retried: nothing had been delivered";
}

TEST_P(ProviderTest, StreamCutBeforeAnyTextIsRetried) {
  auto p = Make(ConfigFor(type()));
  ASSERT_TRUE(p);
  std::string joined;
  auto g = p->Stream(Ask("alpha beta " + Tag("truncate_early_once", "early")), {}, [&](std::string_view d) {
    joined += d;
    return true;
  });
  ASSERT_TRUE(g) << g.error().ToString();
  EXPECT_EQ(joined, g->text);
  EXPECT_EQ(Fake().Requests(Id("early")), 2);
}

TEST_P(ProviderTest, MalformedStreamEventIsUnavailable) {
  auto p = Make(ConfigFor(type()));
  ASSERT_TRUE(p);
  auto g = p->Stream(Ask("alpha beta gamma " + Tag("malformed", "bad")), {}, [](std::string_view) { return true; });
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(g.error().message().find("malformed"), std::string::npos) << g.error().message();
  EXPECT_EQ(Fake().Requests(Id("bad")), 1);
}

TEST_P(ProviderTest, ErrorEventMidStreamIsAnErrorAndNotRetried) {
  auto p = Make(ConfigFor(type()));
  ASSERT_TRUE(p);
  auto g = p->Stream(Ask("alpha beta gamma " + Tag("error_event", "evt")), {}, [](std::string_view) { return true; });
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code(), ErrorCode::kUnavailable) << g.error().ToString();
  EXPECT_EQ(Fake().Requests(Id("evt")), 1);
}

TEST_P(ProviderTest, SlowResponseTimesOut) {
  auto c = ConfigFor(type());
  c.timeout = std::chrono::seconds(1);
  auto p = Make(c);
  ASSERT_TRUE(p);
  const auto start = Clock::now();
  auto g = p->Generate(Ask("hello " + Tag("slow", "slow")), {});
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code(), ErrorCode::kDeadlineExceeded) << g.error().ToString();
  EXPECT_LT(SecondsSince(start), 2.0);
  EXPECT_EQ(Fake().Requests(Id("slow")), 1) << "timeouts are not retried";
}

TEST_P(ProviderTest, StalledStreamTimesOut) {
  auto c = ConfigFor(type());
  c.timeout = std::chrono::seconds(1);
  auto p = Make(c);
  ASSERT_TRUE(p);
  const auto start = Clock::now();
  std::string joined;
  auto g = p->Stream(Ask("alpha beta " + Tag("stall", "stall")), {}, [&](std::string_view d) {
    joined += d;
    return true;
  });
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code(), ErrorCode::kDeadlineExceeded) << g.error().ToString();
  EXPECT_LT(SecondsSince(start), 2.5);
  EXPECT_FALSE(joined.empty());
}

TEST_P(ProviderTest, CancelMidStreamReturnsPromptly) {
  auto p = Make(ConfigFor(type()));
  ASSERT_TRUE(p);
  CancelToken token;
  std::atomic<int> deltas{0};
  std::thread canceller;
  Clock::time_point cancelled_at;
  std::atomic<bool> cancel_done{false};
  auto g = p->Stream(
      Ask("alpha " + Tag("drip", "cancel")), {},
      [&](std::string_view) {
        if (++deltas == 4) {
          canceller = std::thread([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(150));
            cancelled_at = Clock::now();
            token.Cancel();
            cancel_done = true;
          });
        }
        return true;
      },
      &token);
  const auto returned_at = Clock::now();
  if (canceller.joinable()) canceller.join();
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code(), ErrorCode::kCancelled) << g.error().ToString();
  ASSERT_TRUE(cancel_done);
  EXPECT_LT(std::chrono::duration<double>(returned_at - cancelled_at).count(), 1.0);
  if (type() != "openai") {  // OpenAI reports usage only at the end
    auto d = nlohmann::json::parse(g.error().details(), nullptr, false);
    ASSERT_FALSE(d.is_discarded()) << g.error().details();
    EXPECT_GT(d["usage"]["prompt_tokens"].get<int>(), 0);
  }
}

TEST_P(ProviderTest, CallbackReturningFalseCancels) {
  auto p = Make(ConfigFor(type()));
  ASSERT_TRUE(p);
  int deltas = 0;
  const auto start = Clock::now();
  auto g = p->Stream(Ask("alpha " + Tag("drip", "stop")), {}, [&](std::string_view) { return ++deltas < 2; });
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code(), ErrorCode::kCancelled);
  EXPECT_EQ(deltas, 2);
  EXPECT_LT(SecondsSince(start), 1.0);
}

TEST_P(ProviderTest, CancelBeforeTheFirstByteReturnsPromptly) {
  auto p = Make(ConfigFor(type()));
  ASSERT_TRUE(p);
  CancelToken token;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    token.Cancel();
  });
  const auto start = Clock::now();
  auto g = p->Generate(Ask("hello " + Tag("slow", "cancelslow")), {}, &token);
  canceller.join();
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code(), ErrorCode::kCancelled);
  EXPECT_LT(SecondsSince(start), 1.0);
}

INSTANTIATE_TEST_SUITE_P(Providers, ProviderTest, ::testing::Values("openai", "anthropic", "watsonx"),
                         [](const auto& info) { return info.param; });

// ---- provider-specific behaviour ----

TEST(OpenAiChatTest, StreamWithoutDoneEndsCleanlyAfterFinishReason) {
  auto p = Make(ConfigFor("openai"));
  ASSERT_TRUE(p);
  auto g = p->Stream(Ask("alpha beta [[no_done:" + Unique("oa-nodone") + "]]"), {},
                     [](std::string_view) { return true; });
  ASSERT_TRUE(g) << g.error().ToString();
  EXPECT_EQ(g->finish_reason, "stop");
}

TEST(OpenAiChatTest, ServerWithoutAuthNeedsNoKey) {
  auto c = ConfigFor("openai");
  c.api_key.clear();
  auto p = Make(c);
  ASSERT_TRUE(p);
  auto g = p->Generate(Ask("hello"), {});  // the fake requires a key: 401, but no header was sent
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code(), ErrorCode::kUnauthenticated);
}

TEST(OpenAiChatTest, ProviderRefusalOfTooManyStopSequencesIsInvalidArgument) {
  auto p = Make(ConfigFor("openai"));
  ASSERT_TRUE(p);
  GenerationParams params;
  params.stop = {"a", "b", "c", "d", "e"};
  auto g = p->Generate(Ask("hello"), params);
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(g.error().message().find("maximum length 4"), std::string::npos) << g.error().message();
}

TEST(AnthropicMessagesTest, ConversationWithAssistantTurnsAndSystemMessages) {
  auto p = Make(ConfigFor("anthropic"));
  ASSERT_TRUE(p);
  std::vector<ChatMessage> m = {{"system", "Rule one."}, {"user", "first"}, {"assistant", "ok"},
                                {"system", "Rule two."}, {"user", "second question"}};
  auto g = p->Generate(m, {});
  ASSERT_TRUE(g) << g.error().ToString();
  EXPECT_NE(g->text.find("[system: Rule one.\n\nRule two.]"), std::string::npos) << g->text;
}

TEST(AnthropicMessagesTest, TemperatureIsClampedToAnthropicsRange) {
  auto p = Make(ConfigFor("anthropic"));
  ASSERT_TRUE(p);
  GenerationParams params;
  params.temperature = 1.5;  // the fake refuses > 1 like the API
  auto g = p->Generate(Ask("hello"), params);
  EXPECT_TRUE(g) << g.error().ToString();
}

TEST(WatsonxTextTest, IamTokenIsCachedAndRefreshedOnceOn401) {
  auto p = Make(ConfigFor("watsonx"));
  ASSERT_TRUE(p);
  ASSERT_TRUE(p->Generate(Ask("one"), {}));
  const int grants = Fake().Requests("__iam");
  ASSERT_TRUE(p->Generate(Ask("two"), {}));
  ASSERT_TRUE(p->Stream(Ask("three"), {}, [](std::string_view) { return true; }));
  EXPECT_EQ(Fake().Requests("__iam"), grants) << "the token is reused";
  auto g = p->Generate(Ask("four [[expire_token:" + Unique("wx-expire") + "]]"), {});
  ASSERT_TRUE(g) << g.error().ToString();
  EXPECT_EQ(Fake().Requests("__iam"), grants + 1) << "one new token after the 401";
}

TEST(WatsonxTextTest, PromptTemplatesFollowTheModelFamily) {
  const std::vector<ChatMessage> m = {{"system", "S"}, {"user", "Q"}, {"assistant", "A"}, {"user", "Q2"}};
  EXPECT_EQ(RenderWatsonxPrompt(m, "ibm/granite-3-8b-instruct"),
            "<|start_of_role|>system<|end_of_role|>S<|end_of_text|>\n"
            "<|start_of_role|>user<|end_of_role|>Q<|end_of_text|>\n"
            "<|start_of_role|>assistant<|end_of_role|>A<|end_of_text|>\n"
            "<|start_of_role|>user<|end_of_role|>Q2<|end_of_text|>\n"
            "<|start_of_role|>assistant<|end_of_role|>");
  EXPECT_EQ(RenderWatsonxPrompt(m, "meta-llama/llama-3-3-70b-instruct"),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nA<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nQ2<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(RenderWatsonxPrompt(m, "mistralai/mixtral-8x7b-instruct-v01"),
            "S\n\nUser: Q\n\nAssistant: A\n\nUser: Q2\n\nAssistant:");
}

TEST(WatsonxTextTest, PlainTemplateModelWorksEndToEnd) {
  auto c = ConfigFor("watsonx");
  c.model = "google/flan-t5-xl";
  auto p = Make(c);
  ASSERT_TRUE(p);
  auto g = p->Stream(Ask("what is bm25"), {}, [](std::string_view) { return true; });
  ASSERT_TRUE(g) << g.error().ToString();
  EXPECT_EQ(g->text, "Echo: what is bm25");
  EXPECT_EQ(g->model, "google/flan-t5-xl");
}

TEST(WatsonxTextTest, MissingSettingsAreInvalidArgument) {
  auto c = ConfigFor("watsonx");
  c.project_id.clear();
  auto p = MakeProvider(c);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code(), ErrorCode::kInvalidArgument);
}

// ---- shared behaviour ----

TEST(LlmProviderTest, UnreachableServerIsUnavailable) {
  auto c = ConfigFor("openai");
  c.base_url = "http://127.0.0.1:9/v1";
  c.max_retries = 1;
  auto p = Make(c);
  ASSERT_TRUE(p);
  auto g = p->Generate(Ask("hello"), {});
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code(), ErrorCode::kUnavailable) << g.error().ToString();
}

TEST(LlmProviderTest, ConcurrencyIsLimitedPerClient) {
  auto c = ConfigFor("openai");
  c.max_concurrency = 2;
  auto p = Make(c);
  ASSERT_TRUE(p);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  const std::string id = Unique("oa-conc");
  for (int i = 0; i < 5; ++i) {
    threads.emplace_back([&] {
      if (p->Generate(Ask("hello [[slow_ok:" + id + "]]"), {})) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 5);
  auto stats = Fake().Stats(id);
  EXPECT_EQ(stats["requests"], 5);
  EXPECT_EQ(stats["max_inflight"], 2);
}

TEST(LlmProviderTest, WaitingForASlotIsCancellable) {
  auto c = ConfigFor("openai");
  c.max_concurrency = 1;
  auto p = Make(c);
  ASSERT_TRUE(p);
  const std::string busy_id = Unique("oa-slot"), waiter_id = Unique("oa-slot-waiter");
  std::thread busy([&] { (void)p->Generate(Ask("hello [[slow_ok:" + busy_id + "]]"), {}); });  // 300 ms in the slot
  for (int i = 0; i < 100 && Fake().Requests(busy_id) < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  CancelToken token;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    token.Cancel();
  });
  const auto start = Clock::now();
  auto g = p->Generate(Ask("hello [[ok:" + waiter_id + "]]"), {}, &token);
  const double waited = SecondsSince(start);
  canceller.join();
  busy.join();
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code(), ErrorCode::kCancelled);
  EXPECT_LT(waited, 0.2) << "gave up while waiting, not after the slot came free";
  EXPECT_EQ(Fake().Requests(waiter_id), 0);
}

}  // namespace
}  // namespace modulo::generate
