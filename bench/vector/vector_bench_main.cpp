// modulo_vector_bench: the vector index alone, HnswVectorStore vs raw hnswlib in the same run.
//
//   modulo_vector_bench [--n 1000000] [--dim 384] [--queries 500] [--clusters 2000]
//                       [--build-threads 2] [--efs 32,64,128,256] [--crossover] [--skip-raw]
//
// Prints the machine, build time (with --build-threads threads), memory per vector (RSS delta / N),
// and for each ef: single-thread query p50/p99 and recall@10 against exact search (brute force
// with the SIMD dot over 2 threads). The data is bench/vector/synthetic.h: a mixture of anisotropic
// Gaussian clusters, L2-normalised; queries come from the same mixture, not from the base set.
// --crossover measures exact scan vs HNSW query time for small sizes (the exact_threshold choice).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include <hnswlib/hnswlib.h>

#include "modulo/index/hnsw/hnsw_vector_store.h"
#include "modulo/index/hnsw/simd_distance.h"
#include "synthetic.h"

namespace {

using Clock = std::chrono::steady_clock;
using modulo::index::HnswOptions;
using modulo::index::HnswVectorStore;
using modulo::index::IndexedChunk;
using modulo::index::IndexKey;

double Seconds(Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); }

std::size_t RssBytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6)) * 1024;
  return 0;
}

std::string CpuModel() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "?";
}

struct Args {
  std::size_t n = 1000000, dim = 384, queries = 500, clusters = 2000, build_threads = 2;
  std::vector<std::size_t> efs{32, 64, 128, 256};
  bool crossover = false, skip_raw = false;
};

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) { std::fprintf(stderr, "%s needs a value\n", k.c_str()); std::exit(2); }
      return argv[++i];
    };
    if (k == "--n") a.n = std::stoul(next());
    else if (k == "--dim") a.dim = std::stoul(next());
    else if (k == "--queries") a.queries = std::stoul(next());
    else if (k == "--clusters") a.clusters = std::stoul(next());
    else if (k == "--build-threads") a.build_threads = std::stoul(next());
    else if (k == "--crossover") a.crossover = true;
    else if (k == "--skip-raw") a.skip_raw = true;
    else if (k == "--efs") {
      a.efs.clear();
      std::stringstream ss(next());
      for (std::string t; std::getline(ss, t, ',');) a.efs.push_back(std::stoul(t));
    } else {
      std::fprintf(stderr, "unknown argument %s\n", k.c_str());
      std::exit(2);
    }
  }
  return a;
}

// Exact top-10 labels (row numbers) for every query; blocks of base rows stay in cache while all
// queries of a thread's share pass over them.
std::vector<std::vector<std::size_t>> GroundTruth(const std::vector<float>& base, const std::vector<float>& q,
                                                  std::size_t n, std::size_t nq, std::size_t d) {
  std::vector<std::vector<std::pair<float, std::size_t>>> heaps(nq);
  auto work = [&](std::size_t t) {
    constexpr std::size_t kBlock = 2048;
    for (std::size_t b = 0; b < n; b += kBlock) {
      const std::size_t e = std::min(n, b + kBlock);
      for (std::size_t i = t; i < nq; i += 2) {
        auto& h = heaps[i];  // min-heap on score of the 10 best
        for (std::size_t j = b; j < e; ++j) {
          const float s = modulo::index::hnsw::Dot(&q[i * d], &base[j * d], d);
          if (h.size() < 10) {
            h.emplace_back(-s, j);
            std::push_heap(h.begin(), h.end());
          } else if (-s < h.front().first) {
            std::pop_heap(h.begin(), h.end());
            h.back() = {-s, j};
            std::push_heap(h.begin(), h.end());
          }
        }
      }
    }
  };
  std::thread other(work, 1);
  work(0);
  other.join();
  std::vector<std::vector<std::size_t>> out(nq);
  for (std::size_t i = 0; i < nq; ++i)
    for (auto& [s, j] : heaps[i]) out[i].push_back(j);
  return out;
}

struct Measured {
  double p50_ms, p99_ms, recall;
};

template <class SearchFn>
Measured Measure(const std::vector<float>& q, std::size_t nq, std::size_t d,
                 const std::vector<std::vector<std::size_t>>& truth, SearchFn&& search) {
  std::vector<double> lat(nq);
  double hit = 0, total = 0;
  for (std::size_t i = 0; i < nq; ++i) {
    const auto t0 = Clock::now();
    std::vector<std::size_t> got = search(&q[i * d]);
    lat[i] = Seconds(t0) * 1000;
    std::unordered_set<std::size_t> g(got.begin(), got.end());
    for (auto j : truth[i]) hit += double(g.count(j));
    total += double(truth[i].size());
  }
  std::sort(lat.begin(), lat.end());
  return {lat[nq / 2], lat[std::min(nq - 1, nq * 99 / 100)], total ? hit / total : 1};
}

IndexKey Key() {
  IndexKey k;
  k.collection_id = "bench";
  return k;
}

std::vector<IndexedChunk> Chunks(const std::vector<float>& base, std::size_t first, std::size_t last, std::size_t d) {
  std::vector<IndexedChunk> c(last - first);
  for (std::size_t i = first; i < last; ++i) {
    c[i - first].chunk_id = std::int64_t(i) + 1;  // label = row + 1
    c[i - first].file_id = "file-" + std::to_string(i / 40);
    c[i - first].page_number = std::int32_t(i % 40);
    c[i - first].embedding = &base[i * d];
  }
  return c;
}

void Crossover(const Args& a) {
  std::printf("\n== exact scan vs HNSW (ef=64), 1 query thread, dim %zu ==\n", a.dim);
  std::printf("%8s %14s %14s %10s\n", "n", "exact p50 ms", "hnsw p50 ms", "hnsw R@10");
  const std::size_t nmax = 40000, nq = 200;
  // Small collections have few topics: 100 clusters (10 to 400 vectors each), not --clusters.
  bench::ClusteredMixture mix(a.dim, 100, 7);
  std::vector<float> base(nmax * a.dim), q(nq * a.dim);
  mix.Generate(nmax, 11, base.data());
  mix.Generate(nq, 12, q.data());
  HnswOptions exact_o;
  exact_o.exact_threshold = SIZE_MAX;
  exact_o.filter_exact_threshold = SIZE_MAX;
  HnswOptions graph_o;
  graph_o.exact_threshold = 0;
  graph_o.build_threads = a.build_threads;
  HnswVectorStore exact(a.dim, exact_o), graph(a.dim, graph_o);
  std::size_t have = 0;
  for (std::size_t n : {1000, 2500, 5000, 10000, 20000, 40000}) {
    auto c = Chunks(base, have, n, a.dim);
    if (!exact.Upsert(Key(), c) || !graph.Upsert(Key(), c)) std::abort();
    have = n;
    auto truth = GroundTruth(base, q, n, nq, a.dim);
    auto run = [&](HnswVectorStore& s) {
      return Measure(q, nq, a.dim, truth, [&](const float* x) {
        auto hits = s.Search(Key(), std::span<const float>(x, a.dim), 10, {});
        std::vector<std::size_t> ids;
        for (const auto& h : *hits) ids.push_back(std::size_t(h.chunk_id - 1));
        return ids;
      });
    };
    const auto e = run(exact), g = run(graph);
    std::printf("%8zu %14.3f %14.3f %10.4f\n", n, e.p50_ms, g.p50_ms, g.recall);
    std::fflush(stdout);
  }
}

// hnswlib's own InnerProductSpace, as a user of the library would write it.
void RawHnswlib(const Args& a, const std::vector<float>& base, const std::vector<float>& q,
                const std::vector<std::vector<std::size_t>>& truth) {
  const std::size_t rss0 = RssBytes();
  hnswlib::InnerProductSpace space(a.dim);
  auto index = std::make_unique<hnswlib::HierarchicalNSW<float>>(&space, a.n, 16, 256, 100);
  const auto t0 = Clock::now();
  std::vector<std::thread> pool;
  std::atomic<std::size_t> next{0};
  for (std::size_t t = 0; t < a.build_threads; ++t)
    pool.emplace_back([&] {
      for (std::size_t i; (i = next.fetch_add(1)) < a.n;) index->addPoint(&base[i * a.dim], i);
    });
  for (auto& t : pool) t.join();
  const double build = Seconds(t0);
  const double per_vec = double(RssBytes() - rss0) / double(a.n);
  std::printf("\n== raw hnswlib 0.8.0 (HierarchicalNSW + its InnerProductSpace, compiled without -mavx*) ==\n");
  std::printf("build: %.1f s with %zu threads (%.0f vectors/s); memory: %.0f bytes/vector (RSS delta)\n", build,
              a.build_threads, double(a.n) / build, per_vec);
  std::printf("%6s %10s %10s %10s\n", "ef", "p50 ms", "p99 ms", "R@10");
  for (std::size_t ef : a.efs) {
    index->setEf(ef);
    auto m = Measure(q, a.queries, a.dim, truth, [&](const float* x) {
      auto r = index->searchKnn(x, 10);
      std::vector<std::size_t> ids;
      for (; !r.empty(); r.pop()) ids.push_back(r.top().second);
      return ids;
    });
    std::printf("%6zu %10.3f %10.3f %10.4f\n", ef, m.p50_ms, m.p99_ms, m.recall);
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = Parse(argc, argv);
  std::printf("machine: %s, %u cores; SIMD dot: %s\n", CpuModel().c_str(), std::thread::hardware_concurrency(),
              std::string(modulo::index::hnsw::DotVariantName()).c_str());
  std::printf("data: N=%zu dim=%zu queries=%zu, %zu anisotropic Gaussian clusters, L2-normalised\n", a.n, a.dim,
              a.queries, a.clusters);
  std::printf("index: M=16 efConstruction=256; build threads %zu; queries 1 thread, k=10\n", a.build_threads);
  if (a.crossover) Crossover(a);

  bench::ClusteredMixture mix(a.dim, a.clusters, 42);
  std::vector<float> base(a.n * a.dim), q(a.queries * a.dim);
  auto t0 = Clock::now();
  mix.Generate(a.n, 1, base.data());
  mix.Generate(a.queries, 2, q.data());
  std::printf("\ngenerated in %.1f s\n", Seconds(t0));
  t0 = Clock::now();
  const auto truth = GroundTruth(base, q, a.n, a.queries, a.dim);
  std::printf("exact ground truth (brute force, SIMD dot, 2 threads): %.1f s, %.2f ms/query/thread\n", Seconds(t0),
              Seconds(t0) * 1000 * 2 / double(a.queries));
  std::fflush(stdout);

  {
    const std::size_t rss0 = RssBytes();
    HnswOptions o;
    o.build_threads = a.build_threads;
    HnswVectorStore store(a.dim, o);
    t0 = Clock::now();
    constexpr std::size_t kBatch = 10000;
    for (std::size_t b = 0; b < a.n; b += kBatch) {
      auto c = Chunks(base, b, std::min(a.n, b + kBatch), a.dim);
      if (auto s = store.Upsert(Key(), c); !s) {
        std::fprintf(stderr, "upsert: %s\n", s.error().ToString().c_str());
        return 1;
      }
      if ((b / kBatch) % 10 == 9) {
        std::printf("  ... %zu vectors, %.0f s\n", b + kBatch, Seconds(t0));
        std::fflush(stdout);
      }
    }
    const double build = Seconds(t0);
    const auto st = store.Stats(Key());
    const double per_vec = double(RssBytes() - rss0) / double(a.n);
    std::printf("\n== HnswVectorStore (hnswlib 0.8.0 + runtime-dispatched SIMD dot, Upsert batches of %zu) ==\n",
                kBatch);
    std::printf("build: %.1f s with %zu threads (%.0f vectors/s); memory: %.0f bytes/vector (RSS delta), "
                "%.0f estimated by Stats()\n",
                build, a.build_threads, double(a.n) / build, per_vec, double(st->bytes) / double(a.n));
    std::printf("%6s %10s %10s %10s\n", "ef", "p50 ms", "p99 ms", "R@10");
    for (std::size_t ef : a.efs) {
      o.ef_search = ef;
      if (!store.SetCollectionOptions("bench", o)) return 1;
      auto m = Measure(q, a.queries, a.dim, truth, [&](const float* x) {
        auto hits = store.Search(Key(), std::span<const float>(x, a.dim), 10, {});
        std::vector<std::size_t> ids;
        for (const auto& h : *hits) ids.push_back(std::size_t(h.chunk_id - 1));
        return ids;
      });
      std::printf("%6zu %10.3f %10.3f %10.4f\n", ef, m.p50_ms, m.p99_ms, m.recall);
      std::fflush(stdout);
    }
    // A filtered search: 1 file of 40 chunks (exact scan) and ~25% of the pages (inside the graph).
    o.ef_search = 64;
    if (!store.SetCollectionOptions("bench", o)) return 1;
    modulo::index::SearchFilter one_file, pages;
    one_file.file_ids = std::vector<std::string>{"file-123"};
    pages.page_min = 0;
    pages.page_max = 9;
    for (auto* f : {&one_file, &pages}) {
      std::vector<double> lat;
      for (std::size_t i = 0; i < a.queries; ++i) {
        const auto t1 = Clock::now();
        auto hits = store.Search(Key(), std::span<const float>(&q[i * a.dim], a.dim), 10, *f);
        lat.push_back(Seconds(t1) * 1000);
        if (!hits || hits->size() != 10) std::printf("  filtered search returned %zu hits\n", hits ? hits->size() : 0);
      }
      std::sort(lat.begin(), lat.end());
      std::printf("filtered (%s), ef=%zu: p50 %.3f ms, p99 %.3f ms\n",
                  f == &one_file ? "one file: 40 chunks, exact scan" : "pages 0-9: 25%, in-graph filter",
                  std::size_t(64), lat[lat.size() / 2], lat[lat.size() * 99 / 100]);
      std::fflush(stdout);
    }
  }
  if (!a.skip_raw) RawHnswlib(a, base, q, truth);
  return 0;
}
