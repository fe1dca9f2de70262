// One-off measurement behind the library choice (bench/vector/README.md): builds the same
// synthetic set with one candidate library and prints build time, query latency, recall@10,
// and what deletes and filtered search cost. Compiled once per candidate by compare_libs.sh:
//   -DCAND_HNSWLIB -I<dir with hnswlib/>   (Debian 0.6.2 or vendored 0.8.0; SIMD IP space)
//   -DCAND_FAISS                          (Debian FAISS 1.7.3, IndexHNSWFlat, inner product)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "synthetic.h"
#include "modulo/index/hnsw/simd_distance.h"

#ifdef CAND_HNSWLIB
#include <hnswlib/hnswlib.h>
struct SimdIpSpace : hnswlib::SpaceInterface<float> {
  std::size_t dim;
  explicit SimdIpSpace(std::size_t d) : dim(d) {}
  std::size_t get_data_size() override { return dim * sizeof(float); }
  hnswlib::DISTFUNC<float> get_dist_func() override { return modulo::index::hnsw::IpDistanceFunction(); }
  void* get_dist_func_param() override { return &dim; }
};
#endif
#ifdef CAND_FAISS
#include <faiss/IndexHNSW.h>
#include <faiss/impl/IDSelector.h>
#include <omp.h>
#endif

using Clock = std::chrono::steady_clock;
using modulo::index::hnsw::Dot;
static double Ms(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

struct Truth { std::vector<std::vector<std::size_t>> ids; };

// Exact top-10 among ids allowed by `ok`.
template <class Ok>
Truth Exact(const std::vector<float>& base, const std::vector<float>& q, std::size_t n, std::size_t nq, std::size_t d, Ok ok) {
  Truth t;
  t.ids.resize(nq);
  auto work = [&](unsigned th) {
    for (std::size_t i = th; i < nq; i += 2) {
      std::vector<std::pair<float, std::size_t>> s;
      s.reserve(n);
      for (std::size_t j = 0; j < n; ++j)
        if (ok(j)) s.emplace_back(-Dot(&q[i * d], &base[j * d], d), j);
      const std::size_t k = std::min<std::size_t>(10, s.size());
      std::partial_sort(s.begin(), s.begin() + k, s.end());
      for (std::size_t r = 0; r < k; ++r) t.ids[i].push_back(s[r].second);
    }
  };
  std::thread a(work, 1);
  work(0);
  a.join();
  return t;
}

double Recall(const Truth& t, const std::vector<std::vector<std::size_t>>& got) {
  double hit = 0, tot = 0;
  for (std::size_t i = 0; i < t.ids.size(); ++i) {
    std::unordered_set<std::size_t> g(got[i].begin(), got[i].end());
    for (auto id : t.ids[i]) hit += g.count(id);
    tot += double(t.ids[i].size());
  }
  return tot ? hit / tot : 1.0;
}

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100000, d = 384, nq = 300;
  const std::size_t M = 16, efc = 256;
  bench::ClusteredMixture mix(d, 2000, 42);
  std::vector<float> base(n * d), q(nq * d);
  mix.Generate(n, 1, base.data());
  mix.Generate(nq, 2, q.data());
  const Truth all = Exact(base, q, n, nq, d, [](std::size_t) { return true; });
  // Deletes: every 10th id removed. Filters: 1% (id % 100 == 7) and 20% (id % 5 == 3).
  const Truth del = Exact(base, q, n, nq, d, [](std::size_t j) { return j % 10 != 0; });
  const Truth f1 = Exact(base, q, n, nq, d, [](std::size_t j) { return j % 100 == 7; });
  const Truth f20 = Exact(base, q, n, nq, d, [](std::size_t j) { return j % 5 == 3; });

  auto report = [&](const char* what, const Truth& t, auto&& search) {
    std::vector<std::vector<std::size_t>> got(nq);
    std::vector<double> lat(nq);
    for (std::size_t i = 0; i < nq; ++i) {
      auto t0 = Clock::now();
      got[i] = search(&q[i * d]);
      lat[i] = Ms(t0, Clock::now());
    }
    std::sort(lat.begin(), lat.end());
    std::printf("  %-28s p50 %.3f ms  p99 %.3f ms  recall@10 %.4f\n", what, lat[nq / 2], lat[nq * 99 / 100], Recall(t, got));
  };

#ifdef CAND_HNSWLIB
  std::printf("candidate: hnswlib %s (M=%zu efC=%zu, SIMD IP space: %s), n=%zu d=%zu\n", CAND_NAME, M, efc,
              std::string(modulo::index::hnsw::DotVariantName()).c_str(), n, d);
  SimdIpSpace space(d);
  hnswlib::HierarchicalNSW<float> h(&space, n, M, efc);
  auto t0 = Clock::now();
  {
    std::vector<std::thread> ths;
    for (unsigned th = 0; th < 2; ++th)
      ths.emplace_back([&, th] { for (std::size_t i = th; i < n; i += 2) h.addPoint(&base[i * d], i); });
    for (auto& th : ths) th.join();
  }
  std::printf("  build (2 threads): %.1f s\n", Ms(t0, Clock::now()) / 1000);
  auto plain = [&](const float* x) {
    auto r = h.searchKnn(x, 10);
    std::vector<std::size_t> ids;
    while (!r.empty()) { ids.push_back(r.top().second); r.pop(); }
    return ids;
  };
  for (std::size_t ef : {64, 128}) {
    h.setEf(ef);
    report(("ef=" + std::to_string(ef)).c_str(), all, plain);
  }
  h.setEf(64);
#if CAND_FILTER
  struct Pred : hnswlib::BaseFilterFunctor {
    std::size_t mod, rem;
    Pred(std::size_t m, std::size_t r) : mod(m), rem(r) {}
    bool operator()(hnswlib::labeltype id) override { return id % mod == rem; }
  };
  auto filtered = [&](std::size_t mod, std::size_t rem) {
    return [&, mod, rem](const float* x) {
      Pred p(mod, rem);
      auto r = h.searchKnn(x, 10, &p);
      std::vector<std::size_t> ids;
      while (!r.empty()) { ids.push_back(r.top().second); r.pop(); }
      return ids;
    };
  };
  report("filter 20% (in-graph), ef=64", f20, filtered(5, 3));
  report("filter 1% (in-graph), ef=64", f1, filtered(100, 7));
#else
  // No filter functor: the only option is post-filtering a larger k.
  auto post = [&](std::size_t mod, std::size_t rem, std::size_t kk) {
    return [&, mod, rem, kk](const float* x) {
      auto r = h.searchKnn(x, kk);
      std::vector<std::pair<float, std::size_t>> v;
      while (!r.empty()) { if (r.top().second % mod == rem) v.push_back(r.top()); r.pop(); }
      std::sort(v.begin(), v.end());
      std::vector<std::size_t> ids;
      for (std::size_t i = 0; i < v.size() && i < 10; ++i) ids.push_back(v[i].second);
      return ids;
    };
  };
  report("filter 20% (post, k=100)", f20, post(5, 3, 100));
  report("filter 1% (post, k=1000)", f1, post(100, 7, 1000));
#endif
  t0 = Clock::now();
  for (std::size_t i = 0; i < n; i += 10) h.markDelete(i);
  std::printf("  markDelete 10%%: %.1f ms\n", Ms(t0, Clock::now()));
  report("after 10% deleted, ef=64", del, plain);
#endif

#ifdef CAND_FAISS
  std::printf("candidate: FAISS 1.7.3 IndexHNSWFlat (M=%zu efC=%zu, inner product), n=%zu d=%zu\n", M, efc, n, d);
  omp_set_num_threads(2);
  faiss::IndexHNSWFlat idx(int(d), int(M), faiss::METRIC_INNER_PRODUCT);
  idx.hnsw.efConstruction = int(efc);
  auto t0 = Clock::now();
  idx.add(faiss::Index::idx_t(n), base.data());
  std::printf("  build (2 threads, OpenMP): %.1f s\n", Ms(t0, Clock::now()) / 1000);
  omp_set_num_threads(1);
  auto search = [&](std::size_t ef, faiss::IDSelector* sel) {
    return [&, ef, sel](const float* x) {
      faiss::SearchParametersHNSW p;
      p.efSearch = int(ef);
      p.sel = sel;
      std::vector<float> dist(10);
      std::vector<faiss::Index::idx_t> lab(10);
      idx.search(1, x, 10, dist.data(), lab.data(), &p);
      std::vector<std::size_t> ids;
      for (auto l : lab) if (l >= 0) ids.push_back(std::size_t(l));
      return ids;
    };
  };
  for (std::size_t ef : {64, 128}) report(("ef=" + std::to_string(ef)).c_str(), all, search(ef, nullptr));
  struct Mod : faiss::IDSelector {
    faiss::Index::idx_t mod, rem;
    Mod(faiss::Index::idx_t m, faiss::Index::idx_t r) : mod(m), rem(r) {}
    bool is_member(faiss::Index::idx_t id) const override { return id % mod == rem; }
  };
  Mod s20(5, 3), s1(100, 7), sdel(10, 0);
  report("filter 20% (IDSelector), ef=64", f20, search(64, &s20));
  report("filter 1% (IDSelector), ef=64", f1, search(64, &s1));
  std::printf("  deletes: IndexHNSW has no remove_ids (only an IDSelector at search time)\n");
#endif
  return 0;
}
