#include "modulo/index/keyword_index_contract.h"

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace modulo::index {
namespace {

IndexKey Key(const std::string& collection = "c1", std::int64_t generation = 1) {
  IndexKey k;
  k.collection_id = collection;
  k.generation = generation;
  k.owner_id = "u1";
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

std::vector<std::int64_t> Ids(const std::vector<Hit>& hits) {
  std::vector<std::int64_t> out;
  for (const auto& h : hits) out.push_back(h.chunk_id);
  return out;
}

class Helper {
 public:
  explicit Helper(KeywordIndex& index) : index_(index) {}
  std::vector<Hit> Search(std::string_view q, std::size_t k = 10, const SearchFilter& f = {},
                          const IndexKey& key = Key()) {
    auto r = index_.Search(key, q, k, f);
    EXPECT_TRUE(r) << "query '" << q << "': " << r.error().ToString();
    return r ? *r : std::vector<Hit>{};
  }
  std::vector<std::int64_t> SearchIds(std::string_view q, std::size_t k = 10, const SearchFilter& f = {},
                                      const IndexKey& key = Key()) {
    return Ids(Search(q, k, f, key));
  }
  std::size_t Count(const IndexKey& key = Key()) {
    auto r = index_.Count(key);
    EXPECT_TRUE(r) << r.error().ToString();
    return r ? *r : 0;
  }

 private:
  KeywordIndex& index_;
};

using ::testing::Test;

TEST_P(KeywordIndexContract, HasABackendName) {
  EXPECT_FALSE(index_->backend().empty());
}

TEST_P(KeywordIndexContract, MissingIndexIsEmptyAndHarmless) {
  Helper h(*index_);
  EXPECT_EQ(h.Count(Key("nope")), 0u);
  EXPECT_TRUE(h.Search("anything at all", 10, {}, Key("nope")).empty());
  const std::vector<std::int64_t> ids = {1, 2};
  EXPECT_TRUE(index_->Remove(Key("nope"), ids));
  EXPECT_TRUE(index_->Drop(Key("nope")));
}

TEST_P(KeywordIndexContract, CountsChunksAndReplacesOnReupsert) {
  Helper h(*index_);
  const std::vector<IndexedChunk> batch = {Chunk(1, "alpha beta"), Chunk(2, "gamma delta"), Chunk(3, "the of and")};
  ASSERT_TRUE(index_->Upsert(Key(), batch));
  EXPECT_EQ(h.Count(), 3u);
  const std::vector<IndexedChunk> again = {Chunk(2, "epsilon zeta")};
  ASSERT_TRUE(index_->Upsert(Key(), again));
  EXPECT_EQ(h.Count(), 3u);
  EXPECT_TRUE(h.SearchIds("gamma").empty()) << "the old text of a re-upserted chunk must not match";
  EXPECT_EQ(h.SearchIds("epsilon"), std::vector<std::int64_t>{2});
  EXPECT_EQ(h.SearchIds("alpha"), std::vector<std::int64_t>{1});
}

TEST_P(KeywordIndexContract, EmptyBatchIsANoOp) {
  Helper h(*index_);
  ASSERT_TRUE(index_->Upsert(Key(), std::span<const IndexedChunk>{}));
  EXPECT_EQ(h.Count(), 0u);
}

TEST_P(KeywordIndexContract, MoreMatchesOfATermRankHigher) {
  Helper h(*index_);
  const std::vector<IndexedChunk> batch = {
      Chunk(1, "zebra grazing near the river bank today"),
      Chunk(2, "zebra zebra zebra herds near the river"),
      Chunk(3, "lions resting near the river bank today"),
      Chunk(4, "zebra zebra crossing near the river"),
  };
  ASSERT_TRUE(index_->Upsert(Key(), batch));
  EXPECT_EQ(h.SearchIds("zebra"), (std::vector<std::int64_t>{2, 4, 1}));
}

TEST_P(KeywordIndexContract, RarerTermsWeighMore) {
  Helper h(*index_);
  // "common" is in every chunk, "okapi" in one: a query with both ranks the okapi chunk first,
  // and a chunk with only the rare term beats a chunk with only the common one.
  const std::vector<IndexedChunk> batch = {
      Chunk(1, "common words fill this chunk"), Chunk(2, "common okapi appears here once"),
      Chunk(3, "common text without anything"), Chunk(4, "common filler sentence again"),
      Chunk(5, "okapi lives in the forest"),    Chunk(6, "more filler that is common"),
  };
  ASSERT_TRUE(index_->Upsert(Key(), batch));
  const auto ids = h.SearchIds("okapi common");
  ASSERT_EQ(ids.size(), 6u);
  EXPECT_EQ(ids[0], 2);
  EXPECT_EQ(ids[1], 5);
}

TEST_P(KeywordIndexContract, AnyQueryTermMatches) {
  Helper h(*index_);
  const std::vector<IndexedChunk> batch = {Chunk(1, "a cat on the mat"), Chunk(2, "a dog in the fog")};
  ASSERT_TRUE(index_->Upsert(Key(), batch));
  EXPECT_EQ(h.SearchIds("cat unicorn"), std::vector<std::int64_t>{1});
  EXPECT_EQ(h.SearchIds("unicorn").size(), 0u);
  const auto both = h.SearchIds("cat dog");
  EXPECT_EQ(both.size(), 2u);
}

TEST_P(KeywordIndexContract, StemmingMatchesWordForms) {
  Helper h(*index_);
  const std::vector<IndexedChunk> batch = {Chunk(1, "She was running every morning"),
                                           Chunk(2, "Connections between the servers"),
                                           Chunk(3, "Nothing relevant here")};
  ASSERT_TRUE(index_->Upsert(Key(), batch));
  EXPECT_EQ(h.SearchIds("runs"), std::vector<std::int64_t>{1});
  EXPECT_EQ(h.SearchIds("run"), std::vector<std::int64_t>{1});
  EXPECT_EQ(h.SearchIds("connected server"), std::vector<std::int64_t>{2});
}

TEST_P(KeywordIndexContract, CaseAndAccentsAreFolded) {
  Helper h(*index_);
  const std::vector<IndexedChunk> batch = {Chunk(1, "Café CRÈME brûlée at the NAÏVE bistro"), Chunk(2, "plain coffee")};
  ASSERT_TRUE(index_->Upsert(Key(), batch));
  EXPECT_EQ(h.SearchIds("cafe"), std::vector<std::int64_t>{1});
  EXPECT_EQ(h.SearchIds("CAFÉ"), std::vector<std::int64_t>{1});
  EXPECT_EQ(h.SearchIds("creme brulee"), std::vector<std::int64_t>{1});
  EXPECT_EQ(h.SearchIds("Naive"), std::vector<std::int64_t>{1});
  EXPECT_EQ(h.SearchIds("COFFEE"), std::vector<std::int64_t>{2});
}

TEST_P(KeywordIndexContract, NumbersAreTerms) {
  Helper h(*index_);
  const std::vector<IndexedChunk> batch = {Chunk(1, "released in 2021 as version 42"), Chunk(2, "released later")};
  ASSERT_TRUE(index_->Upsert(Key(), batch));
  EXPECT_EQ(h.SearchIds("2021"), std::vector<std::int64_t>{1});
  EXPECT_EQ(h.SearchIds("42"), std::vector<std::int64_t>{1});
}

TEST_P(KeywordIndexContract, StopWordOnlyQueriesReturnNothing) {
  Helper h(*index_);
  const std::vector<IndexedChunk> batch = {Chunk(1, "the cat and the hat"), Chunk(2, "to be or not to be")};
  ASSERT_TRUE(index_->Upsert(Key(), batch));
  EXPECT_TRUE(h.SearchIds("the").empty());
  EXPECT_TRUE(h.SearchIds("to be or not to be").empty());
  EXPECT_TRUE(h.SearchIds("THE AND OF").empty());
  EXPECT_EQ(h.SearchIds("the hat"), std::vector<std::int64_t>{1});
}

TEST_P(KeywordIndexContract, EmptyAndPunctuationOnlyQueriesReturnNothing) {
  Helper h(*index_);
  const std::vector<IndexedChunk> batch = {Chunk(1, "some text")};
  ASSERT_TRUE(index_->Upsert(Key(), batch));
  for (std::string_view q : {"", "   ", "\n\t", "!!!", "*", "()", "\"\"", "--", ":^"}) {
    EXPECT_TRUE(h.SearchIds(q).empty()) << "query '" << q << "'";
  }
}

TEST_P(KeywordIndexContract, QuerySyntaxAndInjectionAreInert) {
  Helper h(*index_);
  const std::vector<IndexedChunk> batch = {Chunk(1, "the cat sat quietly"), Chunk(2, "a dog barked loudly")};
  ASSERT_TRUE(index_->Upsert(Key(), batch));
  const std::vector<std::string> queries = {
      "\"cat",
      "cat\"",
      "cat AND",
      "OR cat",
      "NOT cat",
      "cat*",
      "(cat",
      "cat)",
      "cat:",
      "title:cat",
      "cat^2",
      "-cat",
      "+cat",
      "cat~",
      "cat & | ! <->",
      "cat'",
      "'cat'",
      "cat''",
      "cat\\",
      "cat%",
      "cat_",
      "cat;",
      "[cat]",
      "{cat}",
      "cat' OR '1'='1",
      "cat'); DELETE FROM chunks; --",
      "cat $$ $1 ?",
      "cat /* */",
      std::string("cat\0zzz", 7),
  };
  for (const auto& q : queries) {
    const auto ids = h.SearchIds(q);
    ASSERT_FALSE(ids.empty()) << "query '" << q << "'";
    EXPECT_EQ(ids[0], 1) << "query '" << q << "'";
  }
  // And nothing was harmed.
  EXPECT_EQ(h.Count(), 2u);
  EXPECT_EQ(h.SearchIds("dog"), std::vector<std::int64_t>{2});
}

TEST_P(KeywordIndexContract, InvalidUtf8IsTolerated) {
  Helper h(*index_);
  const std::string bad_text = std::string("valid words \xff\xfe then \xc3 more \xed\xa0\x80 text ") + "ok";
  const std::vector<IndexedChunk> batch = {Chunk(1, bad_text), Chunk(2, "other")};
  ASSERT_TRUE(index_->Upsert(Key(), batch));
  EXPECT_EQ(h.SearchIds("valid"), std::vector<std::int64_t>{1});
  EXPECT_EQ(h.SearchIds("text"), std::vector<std::int64_t>{1});
  const std::string bad_query = "\xff valid \xc3";
  EXPECT_EQ(h.SearchIds(bad_query), std::vector<std::int64_t>{1});
}

TEST_P(KeywordIndexContract, ScoresArePositiveAndBestFirst) {
  Helper h(*index_);
  const std::vector<IndexedChunk> batch = {Chunk(1, "apple banana cherry"), Chunk(2, "apple apple banana"),
                                           Chunk(3, "apple"), Chunk(4, "banana split"), Chunk(5, "nothing here")};
  ASSERT_TRUE(index_->Upsert(Key(), batch));
  const auto hits = h.Search("apple banana cherry");
  ASSERT_EQ(hits.size(), 4u);
  EXPECT_EQ(hits[0].chunk_id, 1);
  for (std::size_t i = 0; i < hits.size(); ++i) {
    EXPECT_GT(hits[i].score, 0.0f);
    if (i > 0) {
      EXPECT_TRUE(hits[i - 1].score > hits[i].score ||
                  (hits[i - 1].score == hits[i].score && hits[i - 1].chunk_id < hits[i].chunk_id));
    }
  }
}

TEST_P(KeywordIndexContract, TiesAreBrokenByChunkId) {
  Helper h(*index_);
  const std::vector<IndexedChunk> batch = {Chunk(30, "identical text about owls"),
                                           Chunk(10, "identical text about owls"),
                                           Chunk(20, "identical text about owls"), Chunk(5, "unrelated")};
  ASSERT_TRUE(index_->Upsert(Key(), batch));
  const auto hits = h.Search("owls");
  ASSERT_EQ(Ids(hits), (std::vector<std::int64_t>{10, 20, 30}));
  EXPECT_EQ(hits[0].score, hits[1].score);
  EXPECT_EQ(hits[1].score, hits[2].score);
  EXPECT_EQ(h.SearchIds("owls", 2), (std::vector<std::int64_t>{10, 20}));
}

TEST_P(KeywordIndexContract, KLimitsResultsAndZeroIsInvalid) {
  Helper h(*index_);
  std::vector<std::string> texts;
  for (int i = 0; i < 30; ++i)
    texts.push_back("lantern " + std::string(static_cast<std::size_t>(i % 5), 'x') + " glow");
  std::vector<IndexedChunk> batch;
  for (int i = 0; i < 30; ++i) batch.push_back(Chunk(i + 1, texts[static_cast<std::size_t>(i)]));
  ASSERT_TRUE(index_->Upsert(Key(), batch));
  EXPECT_EQ(h.SearchIds("lantern", 7).size(), 7u);
  EXPECT_EQ(h.SearchIds("lantern", 100).size(), 30u);
  EXPECT_EQ(h.SearchIds("lantern", 1).size(), 1u);
  auto zero = index_->Search(Key(), "lantern", 0, {});
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().code(), ErrorCode::kInvalidArgument);
}

TEST_P(KeywordIndexContract, FiltersAreAppliedExactlyWithoutUnderfilling) {
  Helper h(*index_);
  std::vector<std::string> texts;
  std::vector<IndexedChunk> batch;
  texts.reserve(40);
  // File "a": 20 strong matches on pages 1..20; file "b": 10 weak matches on pages 1..10.
  for (int i = 0; i < 20; ++i) texts.push_back("quartz quartz quartz crystal");
  for (int i = 0; i < 10; ++i) texts.push_back("quartz mentioned once among many other long words here");
  for (int i = 0; i < 20; ++i) batch.push_back(Chunk(i + 1, texts[static_cast<std::size_t>(i)], "file-a", i + 1));
  for (int i = 0; i < 10; ++i)
    batch.push_back(Chunk(100 + i, texts[static_cast<std::size_t>(20 + i)], "file-b", i + 1));
  ASSERT_TRUE(index_->Upsert(Key(), batch));

  SearchFilter only_b;
  only_b.file_ids = std::vector<std::string>{"file-b"};
  auto ids = h.SearchIds("quartz", 5, only_b);
  ASSERT_EQ(ids.size(), 5u) << "a filter must not underfill k";
  for (auto id : ids) EXPECT_GE(id, 100);

  SearchFilter both;
  both.file_ids = std::vector<std::string>{"file-b", "file-a", "unknown"};
  EXPECT_EQ(h.SearchIds("quartz", 100, both).size(), 30u);

  SearchFilter unknown;
  unknown.file_ids = std::vector<std::string>{"unknown"};
  EXPECT_TRUE(h.SearchIds("quartz", 100, unknown).empty());

  SearchFilter none;
  none.file_ids = std::vector<std::string>{};
  EXPECT_TRUE(h.SearchIds("quartz", 100, none).empty()) << "an empty file id list matches no chunk";

  SearchFilter pages;
  pages.page_min = 3;
  pages.page_max = 4;
  ids = h.SearchIds("quartz", 100, pages);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::int64_t>{3, 4, 102, 103}));

  SearchFilter from;
  from.page_min = 10;
  EXPECT_EQ(h.SearchIds("quartz", 100, from).size(), 11u + 1u);  // a: 10..20, b: 10

  SearchFilter upto;
  upto.page_max = 2;
  EXPECT_EQ(h.SearchIds("quartz", 100, upto).size(), 4u);

  SearchFilter b_pages;
  b_pages.file_ids = std::vector<std::string>{"file-b"};
  b_pages.page_min = 5;
  b_pages.page_max = 6;
  ids = h.SearchIds("quartz", 1, b_pages);
  EXPECT_EQ(ids, std::vector<std::int64_t>{104});

  SearchFilter inverted;
  inverted.page_min = 5;
  inverted.page_max = 4;
  EXPECT_TRUE(h.SearchIds("quartz", 100, inverted).empty());
}

TEST_P(KeywordIndexContract, RemovedChunksAreGone) {
  Helper h(*index_);
  const std::vector<IndexedChunk> batch = {Chunk(1, "meteor shower tonight"), Chunk(2, "meteor crater"),
                                           Chunk(3, "crater lake")};
  ASSERT_TRUE(index_->Upsert(Key(), batch));
  const std::vector<std::int64_t> gone = {2, 999};
  ASSERT_TRUE(index_->Remove(Key(), gone));
  EXPECT_EQ(h.Count(), 2u);
  EXPECT_EQ(h.SearchIds("meteor"), std::vector<std::int64_t>{1});
  EXPECT_EQ(h.SearchIds("crater"), std::vector<std::int64_t>{3});
  ASSERT_TRUE(index_->Remove(Key(), gone));  // again: not an error
  const std::vector<IndexedChunk> back = {Chunk(2, "meteor returns")};
  ASSERT_TRUE(index_->Upsert(Key(), back));
  EXPECT_EQ(h.Count(), 3u);
  const auto ids = h.SearchIds("meteor");
  EXPECT_EQ(ids.size(), 2u);
}

TEST_P(KeywordIndexContract, ManyRemovalsKeepResultsRight) {
  Helper h(*index_);
  std::vector<std::string> texts;
  for (int i = 0; i < 300; ++i) texts.push_back("token" + std::to_string(i % 7) + " shared body " + std::to_string(i));
  std::vector<IndexedChunk> batch;
  for (int i = 0; i < 300; ++i)
    batch.push_back(Chunk(i, texts[static_cast<std::size_t>(i)], "f" + std::to_string(i % 3), i));
  ASSERT_TRUE(index_->Upsert(Key(), batch));
  std::vector<std::int64_t> odd;
  for (int i = 1; i < 300; i += 2) odd.push_back(i);
  ASSERT_TRUE(index_->Remove(Key(), odd));
  EXPECT_EQ(h.Count(), 150u);
  auto ids = h.SearchIds("shared", 1000);
  EXPECT_EQ(ids.size(), 150u);
  for (auto id : ids) EXPECT_EQ(id % 2, 0);
  SearchFilter f;
  f.file_ids = std::vector<std::string>{"f1"};
  ids = h.SearchIds("token3", 1000, f);
  for (auto id : ids) {
    EXPECT_EQ(id % 2, 0);
    EXPECT_EQ(id % 3, 1);
    EXPECT_EQ(id % 7, 3);
  }
  EXPECT_EQ(ids.size(), 7u);  // i in [0, 300): even, i%3==1, i%7==3 -> i%42==10: 10, 52, ..., 262
  EXPECT_EQ(h.SearchIds("body", 1000).size(), 150u);
}

TEST_P(KeywordIndexContract, DropRemovesTheIndexOnly) {
  Helper h(*index_);
  const std::vector<IndexedChunk> batch = {Chunk(1, "granite cliffs")};
  ASSERT_TRUE(index_->Upsert(Key("c1", 1), batch));
  const std::vector<IndexedChunk> other = {Chunk(2, "granite quarry")};
  ASSERT_TRUE(index_->Upsert(Key("c1", 2), other));
  ASSERT_TRUE(index_->Drop(Key("c1", 1)));
  EXPECT_EQ(h.Count(Key("c1", 1)), 0u);
  EXPECT_TRUE(h.SearchIds("granite", 10, {}, Key("c1", 1)).empty());
  EXPECT_EQ(h.SearchIds("granite", 10, {}, Key("c1", 2)), std::vector<std::int64_t>{2});
  ASSERT_TRUE(index_->Upsert(Key("c1", 1), batch));
  EXPECT_EQ(h.SearchIds("granite", 10, {}, Key("c1", 1)), std::vector<std::int64_t>{1});
}

TEST_P(KeywordIndexContract, IndexesAreIndependent) {
  Helper h(*index_);
  const std::vector<IndexedChunk> a = {Chunk(1, "shared word alpha")};
  const std::vector<IndexedChunk> b = {Chunk(2, "shared word beta")};
  const std::vector<IndexedChunk> c = {Chunk(3, "shared word gamma")};
  ASSERT_TRUE(index_->Upsert(Key("ca", 1), a));
  ASSERT_TRUE(index_->Upsert(Key("ca", 2), b));
  ASSERT_TRUE(index_->Upsert(Key("cb", 1), c));
  EXPECT_EQ(h.SearchIds("shared", 10, {}, Key("ca", 1)), std::vector<std::int64_t>{1});
  EXPECT_EQ(h.SearchIds("shared", 10, {}, Key("ca", 2)), std::vector<std::int64_t>{2});
  EXPECT_EQ(h.SearchIds("shared", 10, {}, Key("cb", 1)), std::vector<std::int64_t>{3});
  const std::vector<std::int64_t> ids = {1, 2, 3};
  ASSERT_TRUE(index_->Remove(Key("ca", 1), ids));
  EXPECT_EQ(h.Count(Key("ca", 1)), 0u);
  EXPECT_EQ(h.Count(Key("ca", 2)), 1u);
  EXPECT_EQ(h.Count(Key("cb", 1)), 1u);
}

TEST_P(KeywordIndexContract, SearchesRunConcurrentlyWithWrites) {
  Helper h(*index_);
  std::vector<std::string> texts;
  for (int i = 0; i < 400; ++i) texts.push_back("stable anchor text number " + std::to_string(i));
  std::vector<IndexedChunk> base;
  for (int i = 0; i < 100; ++i) base.push_back(Chunk(i, texts[static_cast<std::size_t>(i)]));
  ASSERT_TRUE(index_->Upsert(Key(), base));

  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      while (!done.load()) {
        auto res = index_->Search(Key(), "anchor", 10, {});
        if (!res || res->size() != 10) failures.fetch_add(1);
      }
    });
  }
  for (int i = 100; i < 400; i += 20) {
    std::vector<IndexedChunk> batch;
    for (int j = i; j < i + 20; ++j) batch.push_back(Chunk(j, texts[static_cast<std::size_t>(j)]));
    ASSERT_TRUE(index_->Upsert(Key(), batch));
    const std::vector<std::int64_t> gone = {i - 100};
    ASSERT_TRUE(index_->Remove(Key(), gone));
  }
  done.store(true);
  for (auto& t : readers) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(h.Count(), 400u - 15u);
}

}  // namespace
}  // namespace modulo::index
