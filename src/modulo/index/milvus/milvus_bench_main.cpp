// Search latency and recall of MilvusVectorStore against HnswVectorStore, same data, same run.
//
//   modulo_milvus_bench --url http://127.0.0.1:19530 [--n 100000] [--dim 384] [--queries 300] [--k 10]
//                       [--batch 1000]
//
// Both stores get the same N clustered, L2-normalised vectors (bench/vector/synthetic.h; 50
// files, 20 pages); then the same queries run one at a time: unfiltered, and filtered to one
// file (2 % of the vectors). Printed per store: ingest time, p50/p99 search latency (for Milvus
// the whole REST round trip) and recall@k against an exact scan. The Milvus collection is
// dropped at the end. bench/vector/milvus_bench.sh starts a Milvus and runs this.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "modulo/index/hnsw/hnsw_vector_store.h"
#include "modulo/index/milvus/milvus_vector_store.h"
#include "synthetic.h"

namespace {

using modulo::index::Hit;
using modulo::index::IndexedChunk;
using modulo::index::IndexKey;
using modulo::index::SearchFilter;
using modulo::index::VectorStore;
using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * double(v.size() - 1) + 0.5))];
}

struct Figures {
  double p50 = 0, p99 = 0, recall = 0;
  int errors = 0;
};

Figures Run(const VectorStore& store, const IndexKey& key, const std::vector<float>& queries, std::size_t dim,
            std::size_t k, const SearchFilter& filter, const std::vector<std::vector<std::int64_t>>& truth) {
  Figures f;
  std::vector<double> lat;
  double found = 0, wanted = 0;
  const std::size_t nq = queries.size() / dim;
  for (std::size_t q = 0; q < nq; ++q) {
    const auto t0 = Clock::now();
    auto hits = store.Search(key, std::span<const float>(&queries[q * dim], dim), k, filter);
    lat.push_back(Ms(Clock::now() - t0));
    if (!hits) {
      if (f.errors++ == 0) std::fprintf(stderr, "search failed: %s\n", hits.error().ToString().c_str());
      continue;
    }
    std::unordered_set<std::int64_t> t(truth[q].begin(), truth[q].end());
    for (const Hit& h : *hits) found += t.count(h.chunk_id);
    wanted += double(truth[q].size());
  }
  f.p50 = Percentile(lat, 0.5);
  f.p99 = Percentile(lat, 0.99);
  f.recall = wanted > 0 ? found / wanted : 0;
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  std::string url = "http://127.0.0.1:19530";
  std::size_t n = 100000, dim = 384, nq = 300, k = 10, batch = 1000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const char* v = argv[i + 1];
    if (a == "--url") url = v;
    else if (a == "--n") n = std::strtoull(v, nullptr, 10);
    else if (a == "--dim") dim = std::strtoull(v, nullptr, 10);
    else if (a == "--queries") nq = std::strtoull(v, nullptr, 10);
    else if (a == "--k") k = std::strtoull(v, nullptr, 10);
    else if (a == "--batch") batch = std::strtoull(v, nullptr, 10);
    else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  std::printf("N=%zu dim=%zu queries=%zu k=%zu batch=%zu milvus=%s\n", n, dim, nq, k, batch, url.c_str());
  bench::ClusteredMixture mix(dim, 500, 42);
  std::vector<float> base(n * dim), queries(nq * dim);
  mix.Generate(n, 1, base.data());
  mix.Generate(nq, 2, queries.data());
  std::vector<IndexedChunk> chunks(n);
  for (std::size_t i = 0; i < n; ++i) {
    chunks[i].chunk_id = std::int64_t(i + 1);
    chunks[i].file_id = "file-" + std::to_string(i % 50);
    chunks[i].page_number = std::int32_t(i % 20);
    chunks[i].embedding = &base[i * dim];
  }
  SearchFilter one_file;
  one_file.file_ids = std::vector<std::string>{"file-7"};

  // Exact top-k, unfiltered and filtered.
  std::vector<std::vector<std::int64_t>> truth(nq), truth_filtered(nq);
  {
    auto work = [&](std::size_t first, std::size_t step) {
      std::vector<std::pair<float, std::int64_t>> all(n), some;
      for (std::size_t q = first; q < nq; q += step) {
        some.clear();
        for (std::size_t i = 0; i < n; ++i) {
          float s = 0;
          for (std::size_t j = 0; j < dim; ++j) s += queries[q * dim + j] * base[i * dim + j];
          all[i] = {-s, std::int64_t(i + 1)};
          if (i % 50 == 7) some.push_back(all[i]);
        }
        std::partial_sort(all.begin(), all.begin() + std::ptrdiff_t(std::min(k, n)), all.end());
        std::partial_sort(some.begin(), some.begin() + std::ptrdiff_t(std::min(k, some.size())), some.end());
        for (std::size_t r = 0; r < std::min(k, n); ++r) truth[q].push_back(all[r].second);
        for (std::size_t r = 0; r < std::min(k, some.size()); ++r) truth_filtered[q].push_back(some[r].second);
      }
    };
    std::thread t(work, 1, 2);
    work(0, 2);
    t.join();
  }

  IndexKey key;
  key.collection_id = "bench";
  key.owner_id = "bench" + std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 1000000);

  modulo::index::HnswVectorStore hnsw(dim);
  auto t0 = Clock::now();
  if (auto s = hnsw.Upsert(key, chunks); !s) {
    std::fprintf(stderr, "hnsw upsert: %s\n", s.error().ToString().c_str());
    return 1;
  }
  const double hnsw_ingest = Ms(Clock::now() - t0);

  modulo::index::MilvusOptions o;
  o.url = url;
  o.batch_size = batch;
  o.timeout = std::chrono::seconds(120);
  auto created = modulo::index::MilvusVectorStore::Create(dim, o);
  if (!created) {
    std::fprintf(stderr, "milvus: %s\n", created.error().ToString().c_str());
    return 1;
  }
  auto& milvus = **created;
  t0 = Clock::now();
  if (auto s = milvus.Upsert(key, chunks); !s) {
    std::fprintf(stderr, "milvus upsert: %s\n", s.error().ToString().c_str());
    (void)milvus.Drop(key);
    return 1;
  }
  const double milvus_ack = Ms(Clock::now() - t0);
  for (;;) {  // until every row is searchable
    auto c = milvus.Count(key);
    if (c && *c == n) break;
    if (Ms(Clock::now() - t0) > 600000) {
      std::fprintf(stderr, "milvus shows %zu of %zu rows after 10 min\n", c ? *c : 0, n);
      (void)milvus.Drop(key);
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  const double milvus_visible = Ms(Clock::now() - t0);
  // Warm-up (connections, caches).
  for (std::size_t q = 0; q < std::min<std::size_t>(nq, 20); ++q) {
    (void)milvus.Search(key, std::span<const float>(&queries[q * dim], dim), k, {});
    (void)hnsw.Search(key, std::span<const float>(&queries[q * dim], dim), k, {});
  }

  const Figures h = Run(hnsw, key, queries, dim, k, {}, truth);
  const Figures hf = Run(hnsw, key, queries, dim, k, one_file, truth_filtered);
  const Figures m = Run(milvus, key, queries, dim, k, {}, truth);
  const Figures mf = Run(milvus, key, queries, dim, k, one_file, truth_filtered);
  (void)milvus.Drop(key);

  std::printf("ingest: embedded-hnsw %.1f s; milvus %.1f s acknowledged, %.1f s searchable\n", hnsw_ingest / 1000,
              milvus_ack / 1000, milvus_visible / 1000);
  std::printf("%-14s %-10s %9s %9s %8s %6s\n", "store", "filter", "p50 ms", "p99 ms", "R@k", "errors");
  auto row = [](const char* s, const char* f, const Figures& x) {
    std::printf("%-14s %-10s %9.3f %9.3f %8.4f %6d\n", s, f, x.p50, x.p99, x.recall, x.errors);
  };
  row("embedded-hnsw", "none", h);
  row("embedded-hnsw", "1 file", hf);
  row("milvus", "none", m);
  row("milvus", "1 file", mf);
  std::printf("ratio milvus/hnsw p50: %.1fx unfiltered, %.1fx filtered\n", m.p50 / std::max(h.p50, 1e-9),
              mf.p50 / std::max(hf.p50, 1e-9));
  return (m.errors + mf.errors) > 0 ? 1 : 0;
}
