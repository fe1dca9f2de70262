// modulo_bm25_eval: keyword-only retrieval quality of Bm25Index on a BEIR dataset (SciFact).
//
// Indexes each corpus document as one chunk (title + "\n" + text), runs the queries that have
// judgments in qrels/test.tsv, and prints nDCG@10 and Recall@100 (trec_eval definitions: linear
// graded gain, log2 discount, ideal from the judgments) and the mean query latency.
//
//   modulo_bm25_eval [dataset-dir] [--k1 X] [--b X] [--stemmer NAME] [--keep-stop-words]
//                    [--cjk-unigrams] [--split test|train]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "modulo/index/bm25/bm25_index.h"

namespace {

using modulo::index::Bm25Index;
using modulo::index::Bm25Options;
using modulo::index::Hit;
using modulo::index::IndexedChunk;
using modulo::index::IndexKey;

std::vector<nlohmann::json> ReadJsonl(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "cannot open %s\n", path.c_str());
    std::exit(2);
  }
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

std::string IdOf(const nlohmann::json& j) {
  const auto& id = j.at("_id");
  return id.is_string() ? id.get<std::string>() : id.dump();
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "../shared/datasets/scifact";
  std::string split = "test";
  Bm25Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--k1") {
      options.k1 = std::stof(next());
    } else if (a == "--b") {
      options.b = std::stof(next());
    } else if (a == "--stemmer") {
      options.analyzer.stemmer = next();
    } else if (a == "--keep-stop-words") {
      options.analyzer.remove_stop_words = false;
    } else if (a == "--cjk-unigrams") {
      options.analyzer.cjk_unigrams = true;
    } else if (a == "--split") {
      split = next();
    } else if (a == "-h" || a == "--help") {
      std::printf("usage: %s [dataset-dir] [--k1 X] [--b X] [--stemmer NAME] [--keep-stop-words] [--split S]\n",
                  argv[0]);
      return 0;
    } else {
      dir = a;
    }
  }
  auto created = Bm25Index::Create(options);
  if (!created) {
    std::fprintf(stderr, "%s\n", created.error().ToString().c_str());
    return 2;
  }
  Bm25Index& index = **created;

  // Corpus: chunk id = position; remember the document id of each.
  const auto corpus = ReadJsonl(dir + "/corpus.jsonl");
  std::vector<std::string> doc_ids;
  std::vector<std::string> texts;
  doc_ids.reserve(corpus.size());
  texts.reserve(corpus.size());
  for (const auto& d : corpus) {
    doc_ids.push_back(IdOf(d));
    texts.push_back(d.value("title", std::string()) + "\n" + d.value("text", std::string()));
  }
  IndexKey key;
  key.collection_id = "scifact";
  const auto t_index = std::chrono::steady_clock::now();
  for (std::size_t start = 0; start < texts.size(); start += 256) {
    std::vector<IndexedChunk> batch;
    for (std::size_t i = start; i < std::min(texts.size(), start + 256); ++i) {
      IndexedChunk c;
      c.chunk_id = static_cast<std::int64_t>(i);
      c.file_id = doc_ids[i];
      c.text = texts[i];
      batch.push_back(c);
    }
    if (auto ok = index.Upsert(key, batch); !ok) {
      std::fprintf(stderr, "upsert: %s\n", ok.error().ToString().c_str());
      return 1;
    }
  }
  const double index_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_index).count();

  // Judgments.
  std::map<std::string, std::unordered_map<std::string, int>> qrels;
  {
    std::ifstream in(dir + "/qrels/" + split + ".tsv");
    if (!in) {
      std::fprintf(stderr, "cannot open qrels/%s.tsv\n", split.c_str());
      return 2;
    }
    std::string line;
    bool header = true;
    while (std::getline(in, line)) {
      if (header) {
        header = false;
        if (line.rfind("query-id", 0) == 0) continue;
      }
      std::istringstream ls(line);
      std::string q, d;
      int rel = 0;
      if (ls >> q >> d >> rel) qrels[q][d] = rel;
    }
  }
  std::vector<std::pair<std::string, std::string>> queries;  // (id, text) with judgments
  for (const auto& q : ReadJsonl(dir + "/queries.jsonl")) {
    const std::string id = IdOf(q);
    if (qrels.contains(id)) queries.emplace_back(id, q.at("text").get<std::string>());
  }

  double ndcg_sum = 0, recall_sum = 0, latency_us_sum = 0;
  std::size_t empty_results = 0;
  for (const auto& [qid, text] : queries) {
    const auto t0 = std::chrono::steady_clock::now();
    auto hits = index.Search(key, text, 100, {});
    latency_us_sum += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    if (!hits) {
      std::fprintf(stderr, "search: %s\n", hits.error().ToString().c_str());
      return 1;
    }
    if (hits->empty()) ++empty_results;
    const auto& judged = qrels.at(qid);
    double dcg = 0;
    std::size_t found = 0;
    for (std::size_t r = 0; r < hits->size(); ++r) {
      const auto it = judged.find(doc_ids[static_cast<std::size_t>((*hits)[r].chunk_id)]);
      const int rel = it == judged.end() ? 0 : it->second;
      if (rel <= 0) continue;
      if (r < 10) dcg += rel / std::log2(static_cast<double>(r) + 2.0);
      ++found;
    }
    std::vector<int> ideal;
    std::size_t relevant = 0;
    for (const auto& [d, rel] : judged) {
      if (rel > 0) {
        ideal.push_back(rel);
        ++relevant;
      }
    }
    std::sort(ideal.rbegin(), ideal.rend());
    double idcg = 0;
    for (std::size_t r = 0; r < std::min<std::size_t>(10, ideal.size()); ++r) {
      idcg += ideal[r] / std::log2(static_cast<double>(r) + 2.0);
    }
    ndcg_sum += idcg > 0 ? dcg / idcg : 0;
    recall_sum += relevant > 0 ? static_cast<double>(found) / static_cast<double>(relevant) : 0;
  }

  // Latency at k = 10 as well (what the hybrid search asks for), best of 3 passes.
  double k10_us = 1e18;
  for (int pass = 0; pass < 3; ++pass) {
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto& [qid, text] : queries) (void)index.Search(key, text, 10, {});
    k10_us = std::min(k10_us, std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() /
                                  static_cast<double>(queries.size()));
  }

  const auto stats = index.Stats(key);
  const double n = static_cast<double>(queries.size());
  std::printf("dataset      %s (%s split)\n", dir.c_str(), split.c_str());
  std::printf("options      k1=%.3g b=%.3g stemmer=%s stop_words=%s\n", options.k1, options.b,
              options.analyzer.stemmer.empty() ? "none" : options.analyzer.stemmer.c_str(),
              options.analyzer.remove_stop_words ? "lucene" : "kept");
  std::printf(
      "corpus       %zu docs indexed in %.2f s; %zu terms, %zu postings, %zu bytes (%.0f bytes/chunk)\n",
      stats.live_chunks, index_s, stats.terms, stats.postings, stats.memory_bytes,
      static_cast<double>(stats.memory_bytes) / static_cast<double>(std::max<std::size_t>(1, stats.live_chunks)));
  std::printf("queries      %zu (%zu with no hit)\n", queries.size(), empty_results);
  std::printf("nDCG@10      %.4f\n", ndcg_sum / n);
  std::printf("Recall@100   %.4f\n", recall_sum / n);
  std::printf("latency      %.1f us/query at k=100 (first pass), %.1f us/query at k=10 (best of 3)\n",
              latency_us_sum / n, k10_us);
  return 0;
}
