#include "modulo/index/bm25/bm25_index.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "modulo/index/keyword_index_contract.h"

namespace modulo::index {

std::shared_ptr<KeywordIndex> MakeBm25Index() {
  return std::make_shared<Bm25Index>();
}

INSTANTIATE_TEST_SUITE_P(Bm25, KeywordIndexContract, ::testing::Values(&MakeBm25Index));

namespace {

IndexKey Key(const std::string& collection = "c1") {
  IndexKey k;
  k.collection_id = collection;
  return k;
}

IndexedChunk Chunk(std::int64_t id, std::string_view text, std::string file = "f1", std::int32_t page = 1) {
  IndexedChunk c;
  c.chunk_id = id;
  c.file_id = std::move(file);
  c.page_number = page;
  c.text = text;
  return c;
}

// Lucene BM25 for one query term occurrence, computed independently in double precision.
double Bm25(double n, double df, double tf, double dl, double avgdl, double k1 = 0.9, double b = 0.4) {
  const double idf = std::log(1.0 + (n - df + 0.5) / (df + 0.5));
  return idf * tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * dl / avgdl));
}

std::vector<Hit> Search(const Bm25Index& index, std::string_view q, std::size_t k = 10, const IndexKey& key = Key()) {
  auto r = index.Search(key, q, k, {});
  EXPECT_TRUE(r) << r.error().ToString();
  return r ? *r : std::vector<Hit>{};
}

// Words chosen so that the analyzer keeps them as they are (no stop words, no stemming change).
TEST(Bm25IndexTest, ScoresMatchTheLuceneFormula) {
  Bm25Index index;
  const std::vector<IndexedChunk> docs = {
      Chunk(1, "apple banana"),           // dl 2
      Chunk(2, "apple apple cherry"),     // dl 3
      Chunk(3, "cherry date elder fig"),  // dl 4
  };
  ASSERT_TRUE(index.Upsert(Key(), docs));
  const double n = 3, avgdl = 9.0 / 3.0;

  auto hits = Search(index, "apple");
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].chunk_id, 2);
  EXPECT_NEAR(hits[0].score, Bm25(n, 2, 2, 3, avgdl), 1e-5);
  EXPECT_EQ(hits[1].chunk_id, 1);
  EXPECT_NEAR(hits[1].score, Bm25(n, 2, 1, 2, avgdl), 1e-5);

  hits = Search(index, "cherry fig");
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].chunk_id, 3);
  EXPECT_NEAR(hits[0].score, Bm25(n, 2, 1, 4, avgdl) + Bm25(n, 1, 1, 4, avgdl), 1e-5);
  EXPECT_NEAR(hits[1].score, Bm25(n, 2, 1, 3, avgdl), 1e-5);

  // A repeated query term counts twice (Lucene sums its clauses).
  hits = Search(index, "banana banana");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_NEAR(hits[0].score, 2 * Bm25(n, 1, 1, 2, avgdl), 1e-5);

  // Stop words neither count in dl nor match.
  ASSERT_TRUE(index.Upsert(Key(), std::vector<IndexedChunk>{Chunk(4, "the fig and the")}));
  hits = Search(index, "fig");
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].chunk_id, 4);
  EXPECT_NEAR(hits[0].score, Bm25(4, 2, 1, 1, 10.0 / 4.0), 1e-5);
}

TEST(Bm25IndexTest, CustomParameters) {
  Bm25Options options;
  options.k1 = 1.2f;
  options.b = 0.75f;
  Bm25Index index(options);
  ASSERT_TRUE(index.Upsert(Key(), std::vector<IndexedChunk>{Chunk(1, "kiwi kiwi lime"), Chunk(2, "lime")}));
  auto hits = Search(index, "kiwi");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_NEAR(hits[0].score, Bm25(2, 1, 2, 3, 2.0, 1.2, 0.75), 1e-5);
}

TEST(Bm25IndexTest, StatisticsFollowLiveChunksAfterRemoveAndReplace) {
  const std::vector<std::string> texts = {"apple banana", "apple apple cherry", "cherry date elder fig",
                                          "banana fig fig", "elder apple"};
  Bm25Index changed;
  std::vector<IndexedChunk> all;
  for (std::size_t i = 0; i < texts.size(); ++i) all.push_back(Chunk(static_cast<std::int64_t>(i + 1), texts[i]));
  ASSERT_TRUE(changed.Upsert(Key(), all));
  ASSERT_TRUE(changed.Remove(Key(), std::vector<std::int64_t>{2}));
  ASSERT_TRUE(changed.Upsert(Key(), std::vector<IndexedChunk>{Chunk(4, "grape apple")}));

  // The same live content, indexed from scratch.
  Bm25Index fresh;
  ASSERT_TRUE(fresh.Upsert(Key(), std::vector<IndexedChunk>{Chunk(1, texts[0]), Chunk(3, texts[2]),
                                                            Chunk(4, "grape apple"), Chunk(5, texts[4])}));
  for (std::string_view q : {"apple", "banana fig", "cherry", "elder grape apple", "date"}) {
    const auto a = Search(changed, q);
    const auto b = Search(fresh, q);
    ASSERT_EQ(a.size(), b.size()) << q;
    for (std::size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].chunk_id, b[i].chunk_id) << q;
      EXPECT_FLOAT_EQ(a[i].score, b[i].score) << q;
    }
  }
  const auto stats = changed.Stats(Key());
  EXPECT_EQ(stats.live_chunks, 4u);
  EXPECT_EQ(stats.dead_chunks, 2u);  // removed 2, replaced 4; not compacted yet (< 64 dead)
}

TEST(Bm25IndexTest, CompactionKeepsResultsIdentical) {
  Bm25Options options;
  options.compact_dead_ratio = 0.1;
  Bm25Index changed(options);
  Bm25Index fresh;
  std::mt19937 rng(42);
  const std::vector<std::string> vocab = {"alpha", "bravo",  "charlie", "delta", "echo", "foxtrot",  "golf",  "hotel",
                                          "india", "juliet", "kilo",    "lima",  "mike", "november", "oscar", "papa"};
  std::vector<std::string> texts(1000);
  for (auto& t : texts) {
    const int len = 3 + static_cast<int>(rng() % 12);
    for (int i = 0; i < len; ++i) t += vocab[rng() % vocab.size()] + " ";
  }
  std::vector<IndexedChunk> all, kept;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    all.push_back(Chunk(static_cast<std::int64_t>(i), texts[i], "file" + std::to_string(i % 10),
                        static_cast<std::int32_t>(i % 50)));
  }
  ASSERT_TRUE(changed.Upsert(Key(), all));
  std::vector<std::int64_t> gone;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    if (i % 3 == 0 || i % 10 == 7) {
      gone.push_back(static_cast<std::int64_t>(i));
    } else {
      kept.push_back(all[i]);
    }
  }
  ASSERT_TRUE(changed.Remove(Key(), gone));
  ASSERT_TRUE(fresh.Upsert(Key(), kept));
  const auto stats = changed.Stats(Key());
  EXPECT_EQ(stats.dead_chunks, 0u) << "expected a compaction";
  EXPECT_EQ(stats.live_chunks, kept.size());
  EXPECT_EQ(*changed.Count(Key()), kept.size());
  SearchFilter filter;
  filter.file_ids = std::vector<std::string>{"file3", "file7", "file8"};
  filter.page_min = 10;
  for (std::string_view q : {"alpha", "bravo kilo", "papa oscar november", "zulu", "echo echo golf"}) {
    for (const SearchFilter& f : {SearchFilter{}, filter}) {
      const auto a = changed.Search(Key(), q, 20, f);
      const auto b = fresh.Search(Key(), q, 20, f);
      ASSERT_TRUE(a && b);
      ASSERT_EQ(a->size(), b->size()) << q;
      for (std::size_t i = 0; i < a->size(); ++i) {
        EXPECT_EQ((*a)[i].chunk_id, (*b)[i].chunk_id) << q;
        EXPECT_FLOAT_EQ((*a)[i].score, (*b)[i].score) << q;
      }
    }
  }
  // file7 has no live chunk any more; its ordinal was reclaimed, and filtering on it finds nothing.
  SearchFilter only7;
  only7.file_ids = std::vector<std::string>{"file7"};
  EXPECT_TRUE(changed.Search(Key(), "alpha bravo charlie", 100, only7)->empty());
  // Upserts after a compaction still work.
  ASSERT_TRUE(changed.Upsert(Key(), std::vector<IndexedChunk>{Chunk(5000, "zulu", "file7")}));
  EXPECT_EQ(changed.Search(Key(), "zulu", 10, only7)->size(), 1u);
}

TEST(Bm25IndexTest, LastDuplicateInABatchWins) {
  Bm25Index index;
  ASSERT_TRUE(index.Upsert(Key(), std::vector<IndexedChunk>{Chunk(1, "first version"), Chunk(1, "second edition")}));
  EXPECT_EQ(*index.Count(Key()), 1u);
  EXPECT_TRUE(Search(index, "first").empty());
  EXPECT_EQ(Search(index, "edition").size(), 1u);
}

TEST(Bm25IndexTest, CjkTextIsSearchable) {
  Bm25Index index;
  ASSERT_TRUE(
      index.Upsert(Key(), std::vector<IndexedChunk>{Chunk(1, "私は東京都に住んでいます"), Chunk(2, "京都の寺")}));
  auto hits = Search(index, "東京");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].chunk_id, 1);
  hits = Search(index, "京都");
  ASSERT_EQ(hits.size(), 2u);  // "東京都" contains the bigram 京都 as well
}

TEST(Bm25IndexTest, ValidatesArgumentsAndOptions) {
  Bm25Index index;
  IndexKey empty;
  EXPECT_EQ(index.Upsert(empty, std::vector<IndexedChunk>{Chunk(1, "x")}).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(index.Search(empty, "x", 10, {}).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(index.Search(Key(), "x", 0, {}).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(index.backend(), "embedded-bm25");

  EXPECT_TRUE(Bm25Index::Create());
  Bm25Options bad;
  bad.b = 1.5f;
  EXPECT_EQ(Bm25Index::Create(bad).error().code(), ErrorCode::kInvalidArgument);
  bad = {};
  bad.k1 = -1;
  EXPECT_FALSE(Bm25Index::Create(bad));
  bad = {};
  bad.analyzer.stemmer = "klingon";
  EXPECT_FALSE(Bm25Index::Create(bad));
  bad = {};
  bad.analyzer.stemmer = "porter";
  EXPECT_TRUE(Bm25Index::Create(bad));
}

TEST(Bm25IndexTest, IsCompactOnTenThousandChunks) {
  // A synthetic corpus with a Zipf-like vocabulary: 10k chunks of ~120 terms.
  std::mt19937 rng(7);
  std::vector<std::string> vocab;
  for (int i = 0; i < 20000; ++i) {
    std::string w;
    int x = i;
    do {
      w.push_back(static_cast<char>('a' + x % 26));
      x /= 26;
    } while (x > 0);
    vocab.push_back("w" + w + "q");
  }
  std::vector<double> weights;
  for (int i = 0; i < 20000; ++i) weights.push_back(1.0 / (i + 1));
  std::discrete_distribution<int> zipf(weights.begin(), weights.end());
#ifdef NDEBUG
  constexpr std::size_t kChunks = 10000;
#else
  constexpr std::size_t kChunks = 2000;  // sanitizer and debug builds: keep the suite fast
#endif
  std::vector<std::string> texts(kChunks);
  for (auto& t : texts) {
    for (int i = 0; i < 120; ++i) t += vocab[static_cast<std::size_t>(zipf(rng))] + " ";
  }
  Bm25Index index;
  for (std::size_t start = 0; start < texts.size(); start += 200) {
    std::vector<IndexedChunk> batch;
    for (std::size_t i = start; i < start + 200; ++i) {
      batch.push_back(Chunk(static_cast<std::int64_t>(i), texts[i], "file" + std::to_string(i / 50),
                            static_cast<std::int32_t>(i % 50)));
    }
    ASSERT_TRUE(index.Upsert(Key(), batch));
  }
  const auto stats = index.Stats(Key());
  EXPECT_EQ(stats.live_chunks, kChunks);
  const double per_chunk = static_cast<double>(stats.memory_bytes) / static_cast<double>(kChunks);
  std::printf("[ bm25 ] %zu chunks: %zu terms, %zu postings, %.0f bytes/chunk\n", kChunks, stats.terms, stats.postings,
              per_chunk);
  EXPECT_LT(per_chunk, 4000.0);

  // A query over the whole corpus finds something (its speed is measured by
  // bm25_index_benchmark, not asserted here).
  std::string q;
  for (int i = 0; i < 8; ++i) q += vocab[static_cast<std::size_t>(zipf(rng))] + " ";
  EXPECT_FALSE(index.Search(Key(), q, 10, {})->empty());
}

}  // namespace
}  // namespace modulo::index
