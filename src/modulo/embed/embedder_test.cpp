#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <optional>
#include <fstream>
#include <oneapi/dnnl/dnnl.hpp>
#include <thread>

#include "modulo/embed/embedding_cache.h"
#include "modulo/embed/local_embedder.h"
#include "modulo/embed/query_batcher.h"
#include "modulo/embed/test_util.h"

namespace modulo::embed {
namespace {

// Peak resident memory of this process in kB (VmHWM).
long PeakRssKb() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

LocalEmbedderOptions Options(Precision p = Precision::kFp32) {
  LocalEmbedderOptions o;
  o.model_dir = testing::ModelDir();
  o.precision = p;
  o.threads = 2;
  return o;
}

class LocalEmbedderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::ModelPresent()) return;
    auto e = LocalEmbedder::Create(Options());
    if (e) embedder_ = std::shared_ptr<LocalEmbedder>(std::move(*e));
  }
  static void TearDownTestSuite() { embedder_.reset(); }
  void SetUp() override {
    ASSERT_TRUE(testing::ModelPresent()) << testing::MissingModelMessage();
    ASSERT_NE(embedder_, nullptr);
  }
  static std::shared_ptr<LocalEmbedder> embedder_;
};
std::shared_ptr<LocalEmbedder> LocalEmbedderTest::embedder_;

TEST_F(LocalEmbedderTest, InfoDescribesTheModel) {
  const ModelInfo& info = embedder_->info();
  EXPECT_EQ(info.name, "all-MiniLM-L6-v2");
  EXPECT_EQ(info.dimension, 384u);
  EXPECT_EQ(info.max_tokens, 256u);
  EXPECT_EQ(info.precision, "fp32");
}

TEST_F(LocalEmbedderTest, EmbedsGoldenTextsInOrder) {
  const auto golden = testing::LoadGolden();
  ASSERT_FALSE(golden.empty());
  std::vector<std::string> texts;
  for (const auto& g : golden) texts.push_back(g.text);
  auto out = embedder_->Embed(texts, InputKind::kPassage);
  ASSERT_TRUE(out.has_value()) << out.error().ToString();
  ASSERT_EQ(out->size(), golden.size());
  for (std::size_t i = 0; i < golden.size(); ++i) {
    EXPECT_GE(testing::Cosine(out->Row(i).data(), golden[i].embedding.data(), 384), 0.9999) << i;
    EXPECT_EQ(out->token_counts[i], golden[i].ids.size());
  }
  auto empty = embedder_->Embed({}, InputKind::kQuery);
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->size(), 0u);
}

TEST_F(LocalEmbedderTest, CountsTokens) {
  EXPECT_EQ(*embedder_->CountTokens("Hello, world!"), 4u);
  EXPECT_EQ(*embedder_->CountTokens(""), 0u);
}

TEST_F(LocalEmbedderTest, MegabyteTextAndInvalidUtf8) {
  std::string big;
  while (big.size() < (1u << 20)) big += "lorem ipsum dolor sit amet \xff\xfe ";
  std::vector<std::string> texts = {big, std::string("\xc3\x28\xa0\xa1 broken \xe2\x28\xa1", 14)};
  auto out = embedder_->Embed(texts, InputKind::kPassage);
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->token_counts[0], 256u);
  for (std::size_t i = 0; i < 2; ++i) {
    double norm = 0;
    for (float v : out->Row(i)) norm += static_cast<double>(v) * v;
    EXPECT_NEAR(norm, 1.0, 1e-4);
  }
}

TEST_F(LocalEmbedderTest, TenThousandTextsInBoundedMemory) {
  std::vector<std::string> texts;
  for (int i = 0; i < 10000; ++i) texts.push_back("item " + std::to_string(i));
  const long before = PeakRssKb();
  auto out = embedder_->Embed(texts, InputKind::kPassage);
  ASSERT_TRUE(out.has_value());
  ASSERT_EQ(out->size(), 10000u);
  const long growth_mb = (PeakRssKb() - before) / 1024;
  // The output alone is 15 MB; activations are bounded by max_batch_tokens per thread.
  EXPECT_LT(growth_mb, 120) << "peak RSS grew by " << growth_mb << " MB";
  // Distinct texts give distinct vectors; equal texts equal ones.
  EXPECT_LT(testing::Cosine(out->Row(0).data(), out->Row(1).data(), 384), 0.9999);
}

TEST(LocalEmbedderPrefixTest, QueryAndPassagePrefixes) {
  ASSERT_TRUE(testing::ModelPresent()) << testing::MissingModelMessage();
  auto o = Options();
  o.query_prefix = "query: ";
  o.passage_prefix = "passage: ";
  o.model_name = "prefixed";
  auto e = LocalEmbedder::Create(o);
  ASSERT_TRUE(e.has_value()) << e.error().ToString();
  EXPECT_EQ((*e)->info().name, "prefixed");
  auto plain = LocalEmbedder::Create(Options());
  ASSERT_TRUE(plain.has_value());
  const std::vector<std::string> text = {"how tall is the eiffel tower"};
  auto q = (*e)->Embed(text, InputKind::kQuery);
  auto p = (*e)->Embed(text, InputKind::kPassage);
  auto manual = (*plain)->Embed(std::vector<std::string>{"query: how tall is the eiffel tower"}, InputKind::kQuery);
  ASSERT_TRUE(q && p && manual);
  EXPECT_GE(testing::Cosine(q->Row(0).data(), manual->Row(0).data(), 384), 0.99999);
  EXPECT_LT(testing::Cosine(q->Row(0).data(), p->Row(0).data(), 384), 0.9999);
  EXPECT_EQ(q->token_counts[0], manual->token_counts[0]);
}

TEST(LocalEmbedderErrorsTest, MissingModelNamesTheFetchScript) {
  auto o = Options();
  o.model_dir = "/nonexistent/all-MiniLM-L6-v2";
  auto e = LocalEmbedder::Create(o);
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(e.error().message().find("scripts/fetch-model.sh"), std::string::npos);
}

TEST(LocalEmbedderErrorsTest, ReducedPrecisionFallsBackWithoutBf16) {
  ASSERT_TRUE(testing::ModelPresent()) << testing::MissingModelMessage();
  // In a fresh process oneDNN is capped at AVX2 (a CPU without AVX512_BF16): bf16 must fall
  // back to exact fp32 rather than fail or execute an unsupported instruction.
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_EXIT(
      {
        (void)dnnl::set_max_cpu_isa(dnnl::cpu_isa::avx2);
        auto e = LocalEmbedder::Create(Options(Precision::kAuto));
        if (!e || (*e)->effective_precision() != Precision::kFp32) std::exit(2);
        const auto golden = testing::LoadGolden();
        std::vector<std::string> texts;
        for (std::size_t i = 0; i < golden.size(); i += 5) texts.push_back(golden[i].text);
        auto out = (*e)->Embed(texts, InputKind::kPassage);
        if (!out) std::exit(3);
        for (std::size_t i = 0, j = 0; i < golden.size(); i += 5, ++j) {
          if (testing::Cosine(out->Row(j).data(), golden[i].embedding.data(), 384) < 0.9999) std::exit(4);
        }
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(EmbeddingCacheTest, LruEvictsLeastRecentlyUsed) {
  EmbeddingCache cache(2);
  const auto k1 = EmbeddingCache::MakeKey("m", InputKind::kQuery, "one");
  const auto k2 = EmbeddingCache::MakeKey("m", InputKind::kQuery, "two");
  const auto k3 = EmbeddingCache::MakeKey("m", InputKind::kQuery, "three");
  EXPECT_NE(k1, EmbeddingCache::MakeKey("m", InputKind::kPassage, "one"));
  EXPECT_NE(k1, EmbeddingCache::MakeKey("other", InputKind::kQuery, "one"));
  const std::vector<float> v1 = {1}, v2 = {2}, v3 = {3};
  cache.Put(k1, v1, 1);
  cache.Put(k2, v2, 2);
  ASSERT_TRUE(cache.Get(k1).has_value());  // k1 now most recent
  cache.Put(k3, v3, 3);                    // evicts k2
  EXPECT_FALSE(cache.Get(k2).has_value());
  EXPECT_EQ(cache.Get(k1)->first, v1);
  EXPECT_EQ(cache.Get(k3)->second, 3u);
  EXPECT_EQ(cache.stats().size, 2u);
}

// A fake embedder that counts calls, for the cache and batcher.
class CountingEmbedder final : public Embedder {
 public:
  const ModelInfo& info() const noexcept override { return info_; }
  Result<Embeddings> Embed(std::span<const std::string> texts, InputKind) override {
    ++calls;
    texts_seen += texts.size();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    Embeddings e;
    e.dimension = 2;
    for (const auto& t : texts) {
      e.values.push_back(static_cast<float>(t.size()));
      e.values.push_back(1);
      e.token_counts.push_back(static_cast<std::uint32_t>(t.size()));
    }
    return e;
  }
  Result<std::size_t> CountTokens(std::string_view t) const override { return t.size(); }
  std::atomic<int> calls{0};
  std::atomic<std::size_t> texts_seen{0};

 private:
  ModelInfo info_{"fake", 2, 16, "fp32"};
};

TEST(CachingEmbedderTest, ServesRepeatsFromCache) {
  auto inner = std::make_shared<CountingEmbedder>();
  CachingEmbedder caching(inner, std::make_shared<EmbeddingCache>(100));
  const std::vector<std::string> a = {"x", "yy"}, b = {"yy", "zzz", "x"};
  ASSERT_TRUE(caching.Embed(a, InputKind::kQuery).has_value());
  auto out = caching.Embed(b, InputKind::kQuery);
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(inner->texts_seen.load(), 3u);  // only "zzz" was new
  EXPECT_EQ(out->Row(0)[0], 2.f);
  EXPECT_EQ(out->Row(1)[0], 3.f);
  EXPECT_EQ(out->Row(2)[0], 1.f);
  EXPECT_EQ(out->token_counts[1], 3u);
}

TEST(QueryBatcherTest, CoalescesConcurrentQueries) {
  auto inner = std::make_shared<CountingEmbedder>();
  ThreadPool pool("cpu", 2);
  QueryBatcherOptions opt;
  opt.max_wait = std::chrono::milliseconds(20);
  opt.max_batch = 64;
  auto cache = std::make_shared<EmbeddingCache>(100);
  {
    QueryBatcher batcher(inner, pool, opt, cache);
    std::vector<std::future<Result<std::vector<float>>>> futures;
    for (int i = 0; i < 40; ++i) futures.push_back(batcher.Submit(std::string(static_cast<std::size_t>(i + 1), 'a'),
                                                                  InputKind::kQuery));
    for (int i = 0; i < 40; ++i) {
      auto r = futures[static_cast<std::size_t>(i)].get();
      ASSERT_TRUE(r.has_value());
      EXPECT_EQ((*r)[0], static_cast<float>(i + 1));
    }
    const auto [batches, requests] = batcher.batch_stats();
    EXPECT_EQ(requests, 40u);
    EXPECT_LE(batches, 3u);  // 40 submissions within 20 ms coalesce
    // A repeat is a cache hit: answered at once, no new batch.
    auto again = batcher.Submit("aaa", InputKind::kQuery).get();
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(batcher.batch_stats().first, batches);
  }
}

// An embedder whose calls block until the test opens the gate, to observe how batches form.
class GatedEmbedder final : public Embedder {
 public:
  const ModelInfo& info() const noexcept override { return info_; }
  Result<Embeddings> Embed(std::span<const std::string> texts, InputKind) override {
    {
      std::unique_lock lock(mu);
      sizes.push_back(texts.size());
      ++running;
      cv.notify_all();
      cv.wait(lock, [&] { return open; });
      --running;
    }
    Embeddings e;
    e.dimension = 1;
    for (const auto& t : texts) e.values.push_back(static_cast<float>(t.size()));
    e.token_counts.assign(texts.size(), 1);
    return e;
  }
  Result<std::size_t> CountTokens(std::string_view t) const override { return t.size(); }
  // Waits until `n` calls are blocked in Embed.
  void WaitRunning(int n) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return running == n; });
  }
  void Open() {
    std::lock_guard lock(mu);
    open = true;
    cv.notify_all();
  }
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  int running = 0;
  std::vector<std::size_t> sizes;

 private:
  ModelInfo info_{"gated", 1, 16, "fp32"};
};

TEST(QueryBatcherTest, LoneQueriesLeaveAtOnceAndBatchesFormWhileSlotsAreBusy) {
  auto inner = std::make_shared<GatedEmbedder>();
  ThreadPool pool("cpu", 2);
  QueryBatcherOptions opt;  // max_wait 0, max_concurrent = the pool's 2 threads
  opt.max_batch = 8;
  QueryBatcher batcher(inner, pool, opt);
  // Two lone queries each take a slot at once, without waiting for company.
  auto a = batcher.Submit("a", InputKind::kQuery);
  inner->WaitRunning(1);
  auto b = batcher.Submit("bb", InputKind::kQuery);
  inner->WaitRunning(2);
  // Both slots are busy: the next 10 queue up and leave as batches of at most 8 once slots free.
  std::vector<std::future<Result<std::vector<float>>>> rest;
  for (int i = 0; i < 10; ++i) rest.push_back(batcher.Submit(std::string(static_cast<std::size_t>(i + 3), 'x'), InputKind::kQuery));
  inner->Open();
  ASSERT_TRUE(a.get().has_value());
  ASSERT_TRUE(b.get().has_value());
  for (int i = 0; i < 10; ++i) {
    auto r = rest[static_cast<std::size_t>(i)].get();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ((*r)[0], static_cast<float>(i + 3));
  }
  std::lock_guard lock(inner->mu);
  ASSERT_EQ(inner->sizes.size(), 4u);
  EXPECT_EQ(inner->sizes[0], 1u);
  EXPECT_EQ(inner->sizes[1], 1u);
  // The queue formed while both slots were busy leaves as 8 then 2; the two batches run on the
  // pool's two threads at once, so they may reach the embedder in either order.
  std::vector<std::size_t> queued(inner->sizes.begin() + 2, inner->sizes.end());
  std::sort(queued.begin(), queued.end());
  EXPECT_EQ(queued, (std::vector<std::size_t>{2, 8}));
}

TEST(QueryBatcherTest, ConcurrentSmallAndLargeEncodesMatchSequential) {
  // Query-sized calls run one per lane, single-threaded, beside each other and beside large
  // calls that take the whole encoder; with int8, pauses let some calls find the encoder idle
  // and run in split mode among the others. Every result must equal the sequential one.
  ASSERT_TRUE(testing::ModelPresent()) << testing::MissingModelMessage();
  for (Precision p : {Precision::kFp32, Precision::kInt8}) {
    auto e = LocalEmbedder::Create(Options(p));
    ASSERT_TRUE(e.has_value());
    std::shared_ptr<Embedder> embedder = std::move(*e);
    std::vector<std::vector<std::string>> calls;
    for (int i = 0; i < 24; ++i) {
      std::vector<std::string> texts;
      const int n = i % 6 == 5 ? 40 : 1 + i % 4;  // mostly query-sized, some large
      for (int j = 0; j < n; ++j) texts.push_back("question " + std::to_string(i) + " about topic " + std::to_string(j * 7 + i) + std::string(static_cast<std::size_t>(j % 5) * 3, 'z'));
      calls.push_back(std::move(texts));
    }
    std::vector<Embeddings> expected;
    for (const auto& c : calls) {
      auto r = embedder->Embed(c, InputKind::kQuery);
      ASSERT_TRUE(r.has_value());
      expected.push_back(std::move(*r));
    }
    std::vector<std::optional<Embeddings>> got(calls.size());
    std::vector<std::thread> threads;
    std::atomic<std::size_t> next{0};
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (std::size_t k = next++; k < calls.size(); k = next++) {
          std::this_thread::sleep_for(std::chrono::microseconds(500 * (k % 3)));
          auto r = embedder->Embed(calls[k], InputKind::kQuery);
          if (r) got[k] = std::move(*r);
        }
      });
    }
    for (auto& t : threads) t.join();
    for (std::size_t k = 0; k < calls.size(); ++k) {
      ASSERT_TRUE(got[k].has_value()) << k;
      ASSERT_EQ(got[k]->values.size(), expected[k].values.size());
      for (std::size_t r = 0; r < calls[k].size(); ++r) {
        EXPECT_GT(testing::Cosine(got[k]->Row(r).data(), expected[k].Row(r).data(), 384), 0.99999)
            << PrecisionName(p) << " call " << k << " row " << r;
      }
    }
  }
}

TEST(QueryBatcherTest, RealEmbedderThroughBatcherMatchesDirect) {
  ASSERT_TRUE(testing::ModelPresent()) << testing::MissingModelMessage();
  auto e = LocalEmbedder::Create(Options());
  ASSERT_TRUE(e.has_value());
  std::shared_ptr<Embedder> embedder = std::move(*e);
  ThreadPool pool("cpu", 2);
  QueryBatcher batcher(embedder, pool);
  const std::vector<std::string> texts = {"what is rag", "how do embeddings work", "fastest cpu inference"};
  std::vector<std::future<Result<std::vector<float>>>> futures;
  std::vector<std::thread> threads;
  std::mutex mu;
  for (const auto& t : texts) {
    threads.emplace_back([&, t] {
      auto f = batcher.Submit(t, InputKind::kQuery);
      std::lock_guard lock(mu);
      futures.push_back(std::move(f));
    });
  }
  for (auto& t : threads) t.join();
  auto direct = embedder->Embed(texts, InputKind::kQuery);
  ASSERT_TRUE(direct.has_value());
  std::size_t matched = 0;
  for (auto& f : futures) {
    auto v = f.get();
    ASSERT_TRUE(v.has_value());
    for (std::size_t i = 0; i < texts.size(); ++i) {
      if (testing::Cosine(v->data(), direct->Row(i).data(), 384) > 0.99999) ++matched;
    }
  }
  EXPECT_EQ(matched, texts.size());
}

}  // namespace
}  // namespace modulo::embed
