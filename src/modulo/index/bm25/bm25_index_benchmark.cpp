// BM25 query latency on a synthetic 10k-chunk corpus with a Zipf-like vocabulary (~120 terms a
// chunk), 8-term queries, k = 10 and k = 100.
#include <benchmark/benchmark.h>

#include <random>

#include "modulo/index/bm25/bm25_index.h"

namespace modulo::index {
namespace {

struct Corpus {
  Bm25Index index;
  std::vector<std::string> queries;
  IndexKey key{"bench", 1, ""};

  Corpus() {
    std::mt19937 rng(7);
    std::vector<std::string> vocab;
    for (int i = 0; i < 20000; ++i) {
      std::string w;
      for (int x = i; ; x /= 26) {
        w.push_back(static_cast<char>('a' + x % 26));
        if (x < 26) break;
      }
      vocab.push_back("w" + w + "q");
    }
    std::vector<double> weights;
    for (int i = 0; i < 20000; ++i) weights.push_back(1.0 / (i + 1));
    std::discrete_distribution<int> zipf(weights.begin(), weights.end());
    std::vector<std::string> texts(10000);
    for (auto& t : texts) {
      for (int i = 0; i < 120; ++i) t += vocab[static_cast<std::size_t>(zipf(rng))] + " ";
    }
    for (std::size_t start = 0; start < texts.size(); start += 500) {
      std::vector<IndexedChunk> batch;
      for (std::size_t i = start; i < start + 500; ++i) {
        IndexedChunk c;
        c.chunk_id = static_cast<std::int64_t>(i + 1);
        c.file_id = "f" + std::to_string(i / 20);
        c.text = texts[i];
        batch.push_back(c);
      }
      (void)index.Upsert(key, batch);
    }
    for (int q = 0; q < 256; ++q) {
      std::string s;
      for (int i = 0; i < 8; ++i) s += vocab[static_cast<std::size_t>(zipf(rng))] + " ";
      queries.push_back(s);
    }
  }
};

void BM_Bm25Search(benchmark::State& state) {
  static Corpus corpus;
  std::size_t i = 0;
  for (auto _ : state) {
    auto hits = corpus.index.Search(corpus.key, corpus.queries[i++ % corpus.queries.size()],
                                    static_cast<std::size_t>(state.range(0)), {});
    benchmark::DoNotOptimize(hits);
  }
}
BENCHMARK(BM_Bm25Search)->Arg(10)->Arg(100);

}  // namespace
}  // namespace modulo::index
