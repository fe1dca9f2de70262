#include "modulo/index/hnsw/hnsw_vector_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <atomic>
#include <cmath>
#include <random>
#include <set>
#include <thread>
#include <unordered_set>

#include "modulo/index/hnsw/room_lock.h"
#include "modulo/index/hnsw/simd_distance.h"
#include "modulo/index/vector_store_contract.h"

namespace modulo::index {
namespace {

// The contract with the defaults (every contract case stays below the exact threshold) ...
std::shared_ptr<VectorStore> MakeHnswStore(std::size_t dim) { return std::make_shared<HnswVectorStore>(dim); }
// ... and with tiny thresholds, so the same cases run through the graph and the in-graph filter.
std::shared_ptr<VectorStore> MakeGraphHnswStore(std::size_t dim) {
  HnswOptions o;
  o.exact_threshold = 3;
  o.filter_exact_threshold = 8;
  o.ef_construction = 64;
  o.build_threads = 2;
  return std::make_shared<HnswVectorStore>(dim, o);
}
INSTANTIATE_TEST_SUITE_P(Hnsw, VectorStoreContract, ::testing::Values(&MakeHnswStore));
INSTANTIATE_TEST_SUITE_P(HnswGraph, VectorStoreContract, ::testing::Values(&MakeGraphHnswStore));

IndexKey Key(const std::string& c) {
  IndexKey k;
  k.collection_id = c;
  return k;
}

// n clustered, L2-normalised vectors (a few hundred Gaussian clusters) with their chunks.
struct Data {
  std::size_t dim;
  std::vector<float> v;
  std::vector<IndexedChunk> chunks;
  Data(std::size_t n, std::size_t d, std::uint32_t seed, std::int64_t first_id = 1, std::size_t clusters = 200,
       float noise = 0.8f)
      : dim(d), v(n * d) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> n01;
    std::vector<float> centres(clusters * d);
    // Anisotropic noise with a decaying spectrum: a low intrinsic dimension, like real embeddings.
    std::vector<float> decay(d);
    for (std::size_t j = 0; j < d; ++j) decay[j] = 2.0f * std::exp(-float(j) / 8.0f);
    for (auto& x : centres) x = n01(rng);
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t c = rng() % clusters;
      double norm = 0;
      for (std::size_t j = 0; j < d; ++j) {
        v[i * d + j] = centres[c * d + j] + noise * decay[j] * n01(rng);
        norm += double(v[i * d + j]) * v[i * d + j];
      }
      for (std::size_t j = 0; j < d; ++j) v[i * d + j] = float(v[i * d + j] / std::sqrt(norm));
    }
    for (std::size_t i = 0; i < n; ++i) {
      IndexedChunk c;
      c.chunk_id = first_id + std::int64_t(i);
      c.file_id = "file-" + std::to_string(i % 50);
      c.page_number = std::int32_t(i % 20);
      c.embedding = &v[i * d];
      chunks.push_back(std::move(c));
    }
  }
  const float* vec(std::size_t i) const { return &v[i * dim]; }
};

template <class Ok>
std::vector<Hit> Exact(const Data& data, const float* q, std::size_t k, Ok ok) {
  std::vector<Hit> all;
  for (std::size_t i = 0; i < data.chunks.size(); ++i) {
    if (!ok(data.chunks[i])) continue;
    all.push_back({data.chunks[i].chunk_id, hnsw::Dot(q, data.vec(i), data.dim)});
  }
  std::sort(all.begin(), all.end(), [](const Hit& a, const Hit& b) {
    return a.score != b.score ? a.score > b.score : a.chunk_id < b.chunk_id;
  });
  if (all.size() > k) all.resize(k);
  return all;
}

double Recall(const std::vector<Hit>& truth, const std::vector<Hit>& got) {
  std::unordered_set<std::int64_t> g;
  for (const auto& h : got) g.insert(h.chunk_id);
  double hit = 0;
  for (const auto& h : truth) hit += g.count(h.chunk_id);
  return truth.empty() ? 1.0 : hit / double(truth.size());
}

TEST(SimdDot, VariantsAgreeWithScalarForEveryLength) {
  std::mt19937 rng(1);
  std::normal_distribution<float> n01;
  for (std::size_t n = 0; n <= 130; ++n) {
    std::vector<float> a(n), b(n);
    for (auto& x : a) x = n01(rng);
    for (auto& x : b) x = n01(rng);
    double exact = 0;
    for (std::size_t i = 0; i < n; ++i) exact += double(a[i]) * b[i];
    EXPECT_NEAR(hnsw::DotScalar(a.data(), b.data(), n), exact, 1e-3) << n;
    if (hnsw::CpuHasAvx2Fma()) {
      EXPECT_NEAR(hnsw::DotAvx2(a.data(), b.data(), n), exact, 1e-3) << n;
    }
    if (hnsw::CpuHasAvx512()) {
      EXPECT_NEAR(hnsw::DotAvx512(a.data(), b.data(), n), exact, 1e-3) << n;
    }
    EXPECT_NEAR(hnsw::Dot(a.data(), b.data(), n), exact, 1e-3) << n;
  }
  EXPECT_FALSE(hnsw::DotVariantName().empty());
}

TEST(RoomLock, RoomsExcludeEachOtherButAdmitManyOfTheSameKind) {
  hnsw::RoomLock lock;
  std::atomic<int> in[2] = {0, 0};
  std::atomic<int> max_same{0}, violations{0};
  auto worker = [&](hnsw::RoomLock::Room r, int rounds) {
    for (int i = 0; i < rounds; ++i) {
      hnsw::InRoom guard(lock, r);
      const int mine = ++in[r];
      if (in[1 - r].load() != 0) ++violations;
      int m = max_same.load();
      while (mine > m && !max_same.compare_exchange_weak(m, mine)) {
      }
      std::this_thread::yield();
      --in[r];
    }
  };
  std::vector<std::thread> ts;
  for (int t = 0; t < 3; ++t) ts.emplace_back(worker, hnsw::RoomLock::kSearch, 3000);
  for (int t = 0; t < 2; ++t) ts.emplace_back(worker, hnsw::RoomLock::kWrite, 3000);
  for (auto& t : ts) t.join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_GE(max_same.load(), 1);
}

TEST(HnswVectorStore, ExactBelowTheThresholdIsTheBruteForceAnswer) {
  HnswVectorStore store(32);
  Data data(3000, 32, 11);
  ASSERT_TRUE(store.Upsert(Key("exact"), data.chunks));
  auto st = store.Stats(Key("exact"));
  ASSERT_TRUE(st);
  EXPECT_FALSE(st->graph);
  EXPECT_EQ(st->live, 3000u);
  Data queries(50, 32, 12);
  for (std::size_t i = 0; i < 50; ++i) {
    std::span<const float> q(queries.vec(i), 32);
    auto hits = store.Search(Key("exact"), q, 10, {});
    ASSERT_TRUE(hits);
    auto truth = Exact(data, queries.vec(i), 10, [](const IndexedChunk&) { return true; });
    ASSERT_EQ(hits->size(), truth.size());
    for (std::size_t j = 0; j < truth.size(); ++j) {
      EXPECT_EQ((*hits)[j].chunk_id, truth[j].chunk_id);
      EXPECT_FLOAT_EQ((*hits)[j].score, truth[j].score);
    }
  }
}

TEST(HnswVectorStore, CrossingTheThresholdBuildsTheGraphTransparently) {
  HnswOptions o;
  o.exact_threshold = 1000;
  o.build_threads = 2;
  HnswVectorStore store(24, o);
  Data data(2500, 24, 21);
  std::span<const IndexedChunk> all(data.chunks);
  ASSERT_TRUE(store.Upsert(Key("switch"), all.subspan(0, 900)));
  EXPECT_FALSE(store.Stats(Key("switch"))->graph);
  ASSERT_TRUE(store.Upsert(Key("switch"), all.subspan(900, 300)));  // 1200 > 1000
  EXPECT_TRUE(store.Stats(Key("switch"))->graph);
  ASSERT_TRUE(store.Upsert(Key("switch"), all.subspan(1200)));  // grows the graph
  auto st = store.Stats(Key("switch"));
  EXPECT_EQ(st->live, 2500u);
  EXPECT_GE(st->capacity, 2500u);
  EXPECT_GT(st->bytes, 2500u * 24 * 4);
  for (std::size_t i = 0; i < 2500; i += 101) {
    auto hits = store.Search(Key("switch"), std::span<const float>(data.vec(i), 24), 1, {});
    ASSERT_TRUE(hits);
    ASSERT_EQ(hits->size(), 1u);
    EXPECT_EQ((*hits)[0].chunk_id, data.chunks[i].chunk_id);
  }
}

TEST(HnswVectorStore, RecallAtTenAboveTheThresholdIsAtLeast95Percent) {
  HnswOptions o;
  o.exact_threshold = 1000;
  o.filter_exact_threshold = 1000;  // so the 40% filter below runs inside the graph
  o.build_threads = 1;              // a deterministic graph
  HnswVectorStore store(48, o);
  Data data(20000, 48, 31, 1, 400);
  ASSERT_TRUE(store.Upsert(Key("recall"), data.chunks));
  ASSERT_TRUE(store.Stats(Key("recall"))->graph);
  Data queries(200, 48, 32, 1, 400);
  double recall = 0;
  double filtered_recall = 0;
  SearchFilter f;  // ~ 40% of the vectors: searched inside the graph
  f.page_min = 0;
  f.page_max = 7;
  for (std::size_t i = 0; i < 200; ++i) {
    std::span<const float> q(queries.vec(i), 48);
    auto hits = store.Search(Key("recall"), q, 10, {});
    ASSERT_TRUE(hits);
    recall += Recall(Exact(data, queries.vec(i), 10, [](const IndexedChunk&) { return true; }), *hits);
    auto fh = store.Search(Key("recall"), q, 10, f);
    ASSERT_TRUE(fh);
    ASSERT_EQ(fh->size(), 10u);
    filtered_recall += Recall(Exact(data, queries.vec(i), 10, [](const IndexedChunk& c) { return c.page_number <= 7; }), *fh);
  }
  std::printf("[ hnsw ] 20k x 48, M=16 efC=256 ef=64: recall@10 %.4f, filtered (40%%) %.4f\n", recall / 200,
              filtered_recall / 200);
  EXPECT_GE(recall / 200, 0.95);
  EXPECT_GE(filtered_recall / 200, 0.95);
}

TEST(HnswVectorStore, FiltersInTheGraphNeverLeakAndSelectiveOnesAreExact) {
  HnswOptions o;
  o.exact_threshold = 500;
  o.filter_exact_threshold = 100;
  o.ef_construction = 100;
  o.build_threads = 1;
  HnswVectorStore store(16, o);
  Data data(4000, 16, 41);
  ASSERT_TRUE(store.Upsert(Key("filters"), data.chunks));
  Data queries(30, 16, 42);
  for (std::size_t i = 0; i < 30; ++i) {
    std::span<const float> q(queries.vec(i), 16);
    SearchFilter many;  // 10 files of 50, pages 3..12: ~800 vectors, in-graph
    many.file_ids = std::vector<std::string>{};
    for (int f = 0; f < 10; ++f) many.file_ids->push_back("file-" + std::to_string(f * 5));
    many.page_min = 3;
    many.page_max = 12;
    auto hits = store.Search(Key("filters"), q, 20, many);
    ASSERT_TRUE(hits);
    EXPECT_EQ(hits->size(), 20u);
    std::set<std::int64_t> seen;
    for (const auto& h : *hits) {
      const auto& c = data.chunks[std::size_t(h.chunk_id - 1)];
      EXPECT_EQ(std::stoi(c.file_id.substr(5)) % 5, 0);
      EXPECT_TRUE(c.page_number >= 3 && c.page_number <= 12);
      EXPECT_TRUE(seen.insert(h.chunk_id).second);
    }
    SearchFilter few;  // one file, one page: 40 vectors, scanned exactly
    few.file_ids = std::vector<std::string>{"file-7"};
    few.page_max = 8;
    hits = store.Search(Key("filters"), q, 5, few);
    ASSERT_TRUE(hits);
    auto truth = Exact(data, queries.vec(i), 5,
                       [](const IndexedChunk& c) { return c.file_id == "file-7" && c.page_number <= 8; });
    ASSERT_EQ(hits->size(), truth.size());
    for (std::size_t j = 0; j < truth.size(); ++j) EXPECT_EQ((*hits)[j].chunk_id, truth[j].chunk_id);
  }
}

TEST(HnswVectorStore, RemoveAndReplaceInGraphMode) {
  HnswOptions o;
  o.exact_threshold = 500;
  o.ef_construction = 100;
  o.build_threads = 2;
  HnswVectorStore store(16, o);
  Data data(3000, 16, 51);
  ASSERT_TRUE(store.Upsert(Key("rr"), data.chunks));
  std::vector<std::int64_t> gone;
  for (std::int64_t id = 1; id <= 3000; id += 2) gone.push_back(id);
  ASSERT_TRUE(store.Remove(Key("rr"), gone));
  EXPECT_EQ(*store.Count(Key("rr")), 1500u);
  // New vectors for the even ids (replace) and new ids that reuse the removed slots.
  Data moved(1500, 16, 52, 2);
  for (std::size_t i = 0; i < moved.chunks.size(); ++i) moved.chunks[i].chunk_id = 2 * std::int64_t(i) + 2;
  Data fresh(1000, 16, 53, 10001);
  ASSERT_TRUE(store.Upsert(Key("rr"), moved.chunks));
  ASSERT_TRUE(store.Upsert(Key("rr"), fresh.chunks));
  EXPECT_EQ(*store.Count(Key("rr")), 2500u);
  EXPECT_LE(store.Stats(Key("rr"))->slots, 3000u);  // removed slots were reused
  for (std::size_t i = 0; i < 1500; i += 37) {
    auto hits = store.Search(Key("rr"), std::span<const float>(moved.vec(i), 16), 5, {});
    ASSERT_TRUE(hits);
    ASSERT_FALSE(hits->empty());
    EXPECT_EQ((*hits)[0].chunk_id, moved.chunks[i].chunk_id);
    EXPECT_NEAR((*hits)[0].score, 1.0f, 1e-4);
    for (const auto& h : *hits) EXPECT_TRUE(h.chunk_id % 2 == 0 || h.chunk_id > 10000) << h.chunk_id;
  }
  for (std::size_t i = 0; i < 1000; i += 41) {
    auto hits = store.Search(Key("rr"), std::span<const float>(fresh.vec(i), 16), 1, {});
    ASSERT_TRUE(hits);
    EXPECT_EQ((*hits)[0].chunk_id, fresh.chunks[i].chunk_id);
  }
}

TEST(HnswVectorStore, ConcurrentSearchesDuringParallelGraphInserts) {
  HnswOptions o;
  o.exact_threshold = 300;
  o.ef_construction = 64;
  o.filter_exact_threshold = 50;
  o.build_threads = 2;
  HnswVectorStore store(16, o);
  Data data(6000, 16, 61);
  std::span<const IndexedChunk> all(data.chunks);
  ASSERT_TRUE(store.Upsert(Key("conc"), all.subspan(0, 1000)));
  std::atomic<bool> done{false};
  std::atomic<int> bad{0}, searches{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&, t] {
      std::size_t i = std::size_t(t) * 7;
      while (!done.load()) {
        SearchFilter f;
        if (i % 2) f.file_ids = std::vector<std::string>{"file-1", "file-2", "file-3"};
        auto hits = store.Search(Key("conc"), std::span<const float>(data.vec(i % 1000), 16), 10, f);
        if (!hits || hits->size() != 10) {
          ++bad;
        } else {
          for (std::size_t j = 1; j < hits->size(); ++j)
            if ((*hits)[j - 1].score < (*hits)[j].score) ++bad;
        }
        ++searches;
        ++i;
      }
    });
  }
  for (std::size_t b = 1000; b < 6000; b += 1000) {
    EXPECT_TRUE(store.Upsert(Key("conc"), all.subspan(b, 1000)));
    std::vector<std::int64_t> gone;
    for (std::size_t j = b; j < b + 1000; j += 10) gone.push_back(std::int64_t(j) + 1);
    EXPECT_TRUE(store.Remove(Key("conc"), gone));
  }
  done = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(searches.load(), 0);
  EXPECT_EQ(*store.Count(Key("conc")), 6000u - 500u);
}

TEST(HnswVectorStore, CollectionOptionsAreValidatedAndApplied) {
  HnswVectorStore store(8);
  HnswOptions bad;
  bad.m = 1;
  EXPECT_EQ(store.SetCollectionOptions("c", bad).error().code(), ErrorCode::kInvalidArgument);
  bad = {};
  bad.ef_search = 0;
  EXPECT_EQ(store.SetCollectionOptions("c", bad).error().code(), ErrorCode::kInvalidArgument);
  HnswOptions o;
  o.exact_threshold = 10;
  o.ef_search = 200;
  ASSERT_TRUE(store.SetCollectionOptions("c", o));
  EXPECT_EQ(store.OptionsFor("c").ef_search, 200u);
  EXPECT_EQ(store.OptionsFor("other").ef_search, 64u);
  Data data(50, 8, 71);
  ASSERT_TRUE(store.Upsert(Key("c"), data.chunks));
  ASSERT_TRUE(store.Upsert(Key("other"), data.chunks));
  EXPECT_TRUE(store.Stats(Key("c"))->graph);
  EXPECT_FALSE(store.Stats(Key("other"))->graph);
  o.ef_search = 10;  // applies to the existing index at once
  ASSERT_TRUE(store.SetCollectionOptions("c", o));
  auto hits = store.Search(Key("c"), std::span<const float>(data.vec(3), 8), 20, {});
  ASSERT_TRUE(hits);
  EXPECT_EQ(hits->size(), 20u);
  store.ClearCollectionOptions("c");
  EXPECT_EQ(store.OptionsFor("c").ef_search, 64u);
  EXPECT_FALSE(store.Stats(Key("missing")));
}

}  // namespace
}  // namespace modulo::index
