// Search latency of PostgresKeywordIndex on a BEIR dataset (SciFact), against the statement the
// index used before schema step 5 (a scan of keyword_chunks per search: N and the average
// length by count, df per term through the GIN index, every hit's whole tsvector unnested), on
// the same server, data and queries.
//
//   pg_keyword_index_bench <dataset dir with corpus.jsonl and queries.jsonl> [queries=300] [threads=16]
//                          [old_queries=20]
//
// Starts its own PostgreSQL (pg_test_server.h), loads every document (title and abstract,
// split at the sentence boundary nearest the middle into two chunks, each headed by the title)
// through PostgresKeywordIndex::Upsert and into a copy of the step-3 table, then times the
// queries one by one with each statement (custom plans as PostgreSQL chooses them, then generic
// plans forced), compares their top 10, and times `threads` concurrent searchers. The old
// statement takes seconds per search at this size, so it runs on the first `old_queries` only.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "modulo/index/postgres/pg_keyword_index.h"
#include "modulo/store/postgres/pg.h"
#include "modulo/store/postgres/pg_test_server.h"

namespace {

using modulo::index::Hit;
using modulo::index::IndexedChunk;
using modulo::index::IndexKey;
using modulo::index::PostgresKeywordIndex;
using modulo::store::postgres::ArrayLiteral;
using modulo::store::postgres::Connection;
using modulo::store::postgres::Database;
using modulo::store::postgres::DatabaseOptions;
using modulo::store::postgres::Params;
using modulo::store::postgres::PgTestServer;
using Clock = std::chrono::steady_clock;

// The table and the search statement of schema step 3, as they were, in their own schema.
constexpr const char* kLegacyTable = R"sql(
CREATE SCHEMA legacy;
CREATE TABLE legacy.keyword_chunks (
  collection_id text NOT NULL,
  generation bigint NOT NULL,
  chunk_id bigint NOT NULL,
  file_id text NOT NULL DEFAULT '',
  page_number integer NOT NULL DEFAULT 0,
  body text NOT NULL,
  tsv tsvector GENERATED ALWAYS AS (to_tsvector('modulo_english'::regconfig, body)) STORED,
  doc_len integer NOT NULL DEFAULT 0,
  PRIMARY KEY (collection_id, generation, chunk_id)
);
CREATE INDEX keyword_chunks_tsv ON legacy.keyword_chunks USING gin (tsv);
)sql";

constexpr const char* kQuoted = "'''' || replace(replace(lexeme, '\\', '\\\\'), '''', '''''') || ''''";
const std::string kLegacySearchSql = std::string(
    "WITH terms AS (SELECT DISTINCT t.lexeme FROM unnest(to_tsvector('modulo_english'::regconfig, $3::text)) t), "
    "quoted AS (SELECT lexeme, ") + kQuoted + " AS q FROM terms), "
    "query AS (SELECT string_agg(q, ' | ')::tsquery AS tq FROM quoted), "
    "docs AS (SELECT count(*)::float8 AS n, COALESCE(avg(doc_len), 0)::float8 AS avgdl FROM legacy.keyword_chunks "
    "  WHERE collection_id = $1 AND generation = $2), "
    "df AS (SELECT qt.lexeme, (SELECT count(*) FROM legacy.keyword_chunks k WHERE k.collection_id = $1 "
    "  AND k.generation = $2 AND k.tsv @@ qt.q::tsquery)::float8 AS df FROM quoted qt), "
    "hits AS (SELECT k.chunk_id, k.doc_len, k.tsv FROM legacy.keyword_chunks k, query "
    "  WHERE query.tq IS NOT NULL AND k.collection_id = $1 AND k.generation = $2 AND k.tsv @@ query.tq "
    "  AND ($4::text[] IS NULL OR k.file_id = ANY($4::text[])) "
    "  AND ($5::int IS NULL OR k.page_number >= $5::int) AND ($6::int IS NULL OR k.page_number <= $6::int)) "
    "SELECT h.chunk_id, sum(ln(1 + (d.n - f.df + 0.5) / (f.df + 0.5)) * (e.tf * 2.2) / "
    "  (e.tf + 1.2 * (0.25 + 0.75 * h.doc_len / GREATEST(d.avgdl, 1e-9))))::float4 AS score "
    "FROM hits h CROSS JOIN docs d "
    "CROSS JOIN LATERAL (SELECT x.lexeme, COALESCE(array_length(x.positions, 1), 1)::float8 AS tf "
    "  FROM unnest(h.tsv) x) e "
    "JOIN df f ON f.lexeme = e.lexeme "
    "GROUP BY h.chunk_id ORDER BY score DESC, h.chunk_id LIMIT $7";

struct Doc {
  std::string file;
  std::string text;
};

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "pg_keyword_index_bench: " << what << "\n";
  std::exit(1);
}

std::vector<std::string> SplitInTwo(const std::string& title, const std::string& body) {
  if (body.size() < 200) return {title + "\n" + body};
  std::size_t best = std::string::npos;
  for (std::size_t i = body.find(". "); i != std::string::npos; i = body.find(". ", i + 1)) {
    if (best == std::string::npos ||
        std::llabs(static_cast<long long>(i) - static_cast<long long>(body.size() / 2)) <
            std::llabs(static_cast<long long>(best) - static_cast<long long>(body.size() / 2))) {
      best = i;
    }
  }
  if (best == std::string::npos) return {title + "\n" + body};
  return {title + "\n" + body.substr(0, best + 1), title + "\n" + body.substr(best + 2)};
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size()))) - 1;
  return v[std::min(i, v.size() - 1)];
}

void Report(const std::string& name, const std::vector<double>& ms) {
  double sum = 0;
  for (double m : ms) sum += m;
  std::printf("%-42s n=%zu  p50 %8.3f ms  p99 %8.3f ms  mean %8.3f ms  max %8.3f ms\n", name.c_str(), ms.size(),
              Percentile(ms, 0.5), Percentile(ms, 0.99), ms.empty() ? 0 : sum / static_cast<double>(ms.size()),
              ms.empty() ? 0 : *std::max_element(ms.begin(), ms.end()));
}

std::unique_ptr<Database> OpenDb(const std::string& url) {
  DatabaseOptions o;
  o.primary_url = url;
  o.pool.size = 20;
  o.pool.max_overflow = 0;
  auto db = Database::Open(o);
  if (!db) Die(db.error().ToString());
  return std::move(*db);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) Die("usage: pg_keyword_index_bench <scifact dir> [queries=300] [threads=16]");
  const std::string dir = argv[1];
  const std::size_t max_queries = argc > 2 ? std::stoul(argv[2]) : 300;
  const int threads = argc > 3 ? std::stoi(argv[3]) : 16;
  const std::size_t old_queries = argc > 4 ? std::stoul(argv[4]) : 20;

  std::vector<Doc> chunks;
  {
    std::ifstream in(dir + "/corpus.jsonl");
    if (!in) Die("cannot read " + dir + "/corpus.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line);
      for (auto& t : SplitInTwo(j.value("title", ""), j.value("text", ""))) {
        chunks.push_back(Doc{j.at("_id").get<std::string>(), std::move(t)});
      }
    }
  }
  std::vector<std::string> queries;
  {
    std::ifstream in(dir + "/queries.jsonl");
    if (!in) Die("cannot read " + dir + "/queries.jsonl");
    std::string line;
    while (queries.size() < max_queries && std::getline(in, line)) {
      queries.push_back(nlohmann::json::parse(line).at("text").get<std::string>());
    }
  }
  std::printf("corpus: %zu chunks, %zu queries\n", chunks.size(), queries.size());
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  auto server = PgTestServer::Start();
  if (!server) Die(server.error().ToString());
  auto url = (*server)->CreateDatabase();
  if (!url) Die(url.error().ToString());
  auto db = OpenDb(*url);
  PostgresKeywordIndex index(*db);
  const IndexKey key{"scifact", 1, "bench"};
  // A second, smaller collection in the same tables, so the searches have neighbours to skip.
  const IndexKey other{"other", 1, "bench"};

  {
    auto t0 = Clock::now();
    constexpr std::size_t kBatch = 256;
    for (std::size_t i = 0; i < chunks.size(); i += kBatch) {
      std::vector<IndexedChunk> batch;
      for (std::size_t j = i; j < std::min(chunks.size(), i + kBatch); ++j) {
        batch.push_back(IndexedChunk{static_cast<std::int64_t>(j + 1), chunks[j].file, 1, nullptr, chunks[j].text});
      }
      if (auto st = index.Upsert(key, batch); !st) Die(st.error().ToString());
      if (i < 2000) {
        for (auto& c : batch) c.chunk_id += 1000000;
        if (auto st = index.Upsert(other, batch); !st) Die(st.error().ToString());
      }
    }
    std::printf("indexed with PostgresKeywordIndex::Upsert in %.1f s (batches of %zu)\n",
                std::chrono::duration<double>(Clock::now() - t0).count(), kBatch);
  }
  {
    auto lease = db->Primary();
    if (!lease) Die(lease.error().ToString());
    Connection& c = **lease;
    if (auto st = c.ExecScript(kLegacyTable); !st) Die(st.error().ToString());
    auto t0 = Clock::now();
    constexpr std::size_t kBatch = 256;
    for (std::size_t i = 0; i < chunks.size(); i += kBatch) {
      ArrayLiteral ids, files, bodies;
      for (std::size_t j = i; j < std::min(chunks.size(), i + kBatch); ++j) {
        ids.Int(static_cast<std::int64_t>(j + 1));
        files.Text(chunks[j].file);
        bodies.Text(modulo::store::postgres::SanitizeUtf8(chunks[j].text));
      }
      auto r = c.Exec(
          "INSERT INTO legacy.keyword_chunks (collection_id, generation, chunk_id, file_id, page_number, body, doc_len) "
          "SELECT $1, $2, u.id, u.file, 1, u.body, "
          "(SELECT COALESCE(sum(COALESCE(array_length(t.positions, 1), 1)), 0) "
          " FROM unnest(to_tsvector('modulo_english'::regconfig, u.body)) t) "
          "FROM unnest($3::bigint[], $4::text[], $5::text[]) AS u(id, file, body)",
          Params().Add(key.collection_id).Add(key.generation).Add(ids.str()).Add(files.str()).Add(bodies.str()));
      if (!r) Die(r.error().ToString());
    }
    std::printf("indexed into the step-3 table in %.1f s\n", std::chrono::duration<double>(Clock::now() - t0).count());
    if (auto st = c.ExecScript("VACUUM ANALYZE"); !st) Die(st.error().ToString());
    auto sizes = c.Exec(
        "SELECT pg_total_relation_size('keyword_postings'), pg_total_relation_size('keyword_chunks'), "
        "pg_total_relation_size('legacy.keyword_chunks'), (SELECT count(*) FROM keyword_postings)");
    if (sizes) {
      std::printf("sizes: keyword_postings %.1f MB (%lld rows), keyword_chunks %.1f MB; step-3 table %.1f MB\n",
                  static_cast<double>(sizes->Int(0, 0)) / 1e6, static_cast<long long>(sizes->Int(0, 3)),
                  static_cast<double>(sizes->Int(0, 1)) / 1e6, static_cast<double>(sizes->Int(0, 2)) / 1e6);
    }
  }

  auto legacy_search = [&](Database& d, const std::string& q, std::size_t k) {
    return d.WithPrimary([&](Connection& c) -> modulo::Result<std::vector<Hit>> {
      auto r = c.Exec(kLegacySearchSql, Params()
                                            .Add(key.collection_id)
                                            .Add(key.generation)
                                            .Add(modulo::store::postgres::SanitizeUtf8(q))
                                            .AddNull()
                                            .AddNull()
                                            .AddNull()
                                            .Add(static_cast<std::int64_t>(k)));
      if (!r) return modulo::Fail(r.error());
      std::vector<Hit> out;
      for (int i = 0; i < r->rows(); ++i) out.push_back(Hit{r->Int(i, 0), static_cast<float>(r->Double(i, 1))});
      return out;
    });
  };

  auto run = [&](Database& d, PostgresKeywordIndex& idx, const std::string& mode, std::size_t n_old) {
    // Warm-up: caches, and the plan choice after five executions.
    for (std::size_t i = 0; i < std::min<std::size_t>(queries.size(), 10); ++i) {
      if (i < std::min<std::size_t>(n_old, 6)) (void)legacy_search(d, queries[i], 10);
      (void)idx.Search(key, queries[i], 10, {});
    }
    std::vector<double> before, after;
    std::size_t same_order = 0, same_set = 0, max_rank_diff = 0;
    double max_score_diff = 0;
    std::size_t compared = 0;
    for (std::size_t qi = 0; qi < queries.size(); ++qi) {
      const auto& q = queries[qi];
      auto t1 = Clock::now();
      auto b = idx.Search(key, q, 10, {});
      auto t2 = Clock::now();
      if (!b) Die("search: " + b.error().ToString());
      after.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
      if (qi >= n_old) continue;
      auto t0 = Clock::now();
      auto a = legacy_search(d, q, 10);
      if (!a) Die("step-3 search: " + a.error().ToString());
      before.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      ++compared;
      std::vector<std::int64_t> ia, ib;
      for (auto& h : *a) ia.push_back(h.chunk_id);
      for (auto& h : *b) ib.push_back(h.chunk_id);
      if (ia == ib) ++same_order;
      std::sort(ia.begin(), ia.end());
      std::sort(ib.begin(), ib.end());
      if (ia == ib) ++same_set;
      for (std::size_t i = 0; i < std::min(a->size(), b->size()); ++i) {
        max_score_diff = std::max(max_score_diff, static_cast<double>(std::fabs((*a)[i].score - (*b)[i].score)));
      }
      max_rank_diff = std::max(max_rank_diff, a->size() > b->size() ? a->size() - b->size() : b->size() - a->size());
    }
    if (!before.empty()) Report("step-3 statement (" + mode + ")", before);
    Report("PostgresKeywordIndex::Search (" + mode + ")", after);
    if (compared > 0) std::printf("top 10 identical in order: %zu/%zu, same set: %zu/%zu, max |score diff| %.6f, max size diff %zu\n",
                same_order, compared, same_set, compared, max_score_diff, max_rank_diff);
    std::fflush(stdout);
  };

  run(*db, index, "plans chosen by PostgreSQL", old_queries);

  // Filtered searches (a file id list of 50 documents), the other statement.
  {
    modulo::index::SearchFilter f;
    f.file_ids = std::vector<std::string>{};
    for (std::size_t i = 0; i < chunks.size() && f.file_ids->size() < 50; i += 200) f.file_ids->push_back(chunks[i].file);
    std::vector<double> ms;
    for (const auto& q : queries) {
      auto t0 = Clock::now();
      auto r = index.Search(key, q, 10, f);
      if (!r) Die(r.error().ToString());
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    Report("Search with a 50-file filter", ms);
  }

  // Generic plans forced on fresh connections.
  {
    auto lease = db->Primary();
    if (!lease) Die(lease.error().ToString());
    const std::string dbname = url->substr(url->rfind('/') + 1);
    if (auto st = (*lease)->ExecScript("ALTER DATABASE \"" + dbname + "\" SET plan_cache_mode = force_generic_plan");
        !st) {
      Die(st.error().ToString());
    }
  }
  {
    auto generic = OpenDb(*url);
    PostgresKeywordIndex gindex(*generic);
    run(*generic, gindex, "generic plans forced", 0);

    // Concurrent searchers, on the generic plans.
    std::vector<std::vector<double>> per(static_cast<std::size_t>(threads));
    std::atomic<int> failures{0};
    auto t0 = Clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        for (std::size_t i = 0; i < queries.size(); ++i) {
          const auto& q = queries[(i + static_cast<std::size_t>(t) * 17) % queries.size()];
          auto s = Clock::now();
          auto r = gindex.Search(key, q, 10, {});
          if (!r) failures.fetch_add(1);
          per[static_cast<std::size_t>(t)].push_back(std::chrono::duration<double, std::milli>(Clock::now() - s).count());
        }
      });
    }
    for (auto& th : pool) th.join();
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    std::vector<double> all;
    for (auto& v : per) all.insert(all.end(), v.begin(), v.end());
    Report(std::to_string(threads) + " concurrent searchers", all);
    std::printf("%zu searches in %.2f s: %.0f searches/s, %d failed\n", all.size(), secs,
                static_cast<double>(all.size()) / secs, failures.load());
  }
  return 0;
}
