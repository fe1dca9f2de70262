#include "modulo/index/postgres/pg_keyword_index.h"

#include <limits>
#include <optional>
#include <unordered_map>

namespace modulo::index {
namespace {

using store::postgres::ArrayLiteral;
using store::postgres::Connection;
using store::postgres::Params;
using store::postgres::SanitizeUtf8;

// Statistics row of a (collection, generation), created when missing, and locked until the
// transaction ends: the writers of one index take turns, so the counts they add and subtract
// are exact. $1 collection, $2 generation.
constexpr const char* kLockOrCreateSql =
    "INSERT INTO keyword_indexes (collection_id, generation) VALUES ($1, $2) "
    "ON CONFLICT (collection_id, generation) DO UPDATE SET chunk_count = keyword_indexes.chunk_count "
    "RETURNING id";

// The same lock on an index that must already exist (Remove, Drop): no row, nothing to do.
constexpr const char* kLockSql =
    "SELECT id FROM keyword_indexes WHERE collection_id = $1 AND generation = $2 FOR UPDATE";

// Removes chunks with their postings and takes them out of the statistics. $1 collection,
// $2 generation, $3 index id, $4 chunk ids. Runs after the lock, so it sees every committed row.
constexpr const char* kRemoveSql =
    "WITH gone AS (DELETE FROM keyword_chunks WHERE collection_id = $1 AND generation = $2 "
    "  AND chunk_id = ANY($4::bigint[]) RETURNING doc_len), "
    "postings AS (DELETE FROM keyword_postings WHERE index_id = $3 AND chunk_id = ANY($4::bigint[])) "
    "UPDATE keyword_indexes SET chunk_count = chunk_count - (SELECT count(*) FROM gone), "
    "  total_len = total_len - (SELECT COALESCE(sum(doc_len), 0) FROM gone) "
    "WHERE id = $3";

// Adds chunks (none of them present: kRemoveSql ran first): the text is analysed once, its
// lexemes become postings (term frequency = number of positions), its length (the sum of
// them) is kept with each posting, and the statistics grow by what was inserted. $1
// collection, $2 generation, $3 index id, $4..$7 ids, file ids, pages, texts.
constexpr const char* kAddSql =
    "WITH docs AS MATERIALIZED (SELECT u.id, u.file, u.page, u.body, v.tsv, "
    "  (SELECT COALESCE(sum(COALESCE(array_length(t.positions, 1), 1)), 0) FROM unnest(v.tsv) t)::int AS len "
    "  FROM unnest($4::bigint[], $5::text[], $6::int[], $7::text[]) AS u(id, file, page, body) "
    "  CROSS JOIN LATERAL (SELECT to_tsvector('modulo_english'::regconfig, u.body) AS tsv OFFSET 0) v), "
    "added AS (INSERT INTO keyword_chunks (collection_id, generation, chunk_id, file_id, page_number, body, doc_len) "
    "  SELECT $1, $2, id, file, page, body, len FROM docs RETURNING doc_len), "
    "postings AS (INSERT INTO keyword_postings (index_id, chunk_id, doc_len, tf, lexeme) "
    "  SELECT $3, d.id, d.len, COALESCE(array_length(t.positions, 1), 1), t.lexeme "
    "  FROM docs d CROSS JOIN LATERAL unnest(d.tsv) t) "
    "UPDATE keyword_indexes SET chunk_count = chunk_count + (SELECT count(*) FROM added), "
    "  total_len = total_len + (SELECT COALESCE(sum(doc_len), 0) FROM added) "
    "WHERE id = $3";

// The postings of the query's distinct lexemes, one range scan of keyword_postings' primary key
// per lexeme (index-only: tf and doc_len are in it), each lexeme's document frequency counted
// over its own rows, and the index's N and average length from its statistics row: nothing is
// read for chunks without a query term. $1 collection, $2 generation, $3 query text. The
// lexemes come from to_tsvector, never from tsquery parsing, so any input is inert. All
// arithmetic is float8 (numeric would cost more than the rest of the statement).
constexpr const char* kHitsCte =
    "WITH ix AS (SELECT id, chunk_count::float8 AS n, "
    "  GREATEST(total_len::float8 / GREATEST(chunk_count, 1), 1e-9::float8) AS avgdl "
    "  FROM keyword_indexes WHERE collection_id = $1 AND generation = $2), "
    "hits AS (SELECT p.chunk_id, p.tf, p.dl, ix.avgdl, "
    "  ln(1::float8 + (ix.n - p.df + 0.5::float8) / (p.df + 0.5::float8)) AS idf "
    "  FROM ix CROSS JOIN unnest(tsvector_to_array(to_tsvector('modulo_english'::regconfig, $3::text))) q(lexeme) "
    "  CROSS JOIN LATERAL (SELECT k.chunk_id, k.tf::float8 AS tf, k.doc_len::float8 AS dl, "
    "    (count(*) OVER ())::float8 AS df FROM keyword_postings k "
    "    WHERE k.index_id = ix.id AND k.lexeme = q.lexeme) p), "
    // BM25 (k1 = 1.2, b = 0.75) with Lucene's idf, summed over the query's lexemes.
    "scored AS (SELECT h.chunk_id, sum(h.idf * (h.tf * 2.2::float8) / "
    "  (h.tf + 1.2::float8 * (0.25::float8 + 0.75::float8 * h.dl / h.avgdl)))::float4 AS score "
    "  FROM hits h GROUP BY h.chunk_id) ";

// Without a filter. $4 k.
const std::string kSearchSql =
    std::string(kHitsCte) + "SELECT chunk_id, score FROM scored ORDER BY score DESC, chunk_id LIMIT $4";

// With a filter: only the scored chunks are looked up in keyword_chunks (primary key), and the
// filter applies before the limit, so it never underfills k. $4 file ids (NULL: any), $5 / $6
// page bounds (NULL: open), $7 k.
const std::string kFilteredSearchSql =
    std::string(kHitsCte) +
    "SELECT s.chunk_id, s.score FROM scored s JOIN keyword_chunks k ON k.collection_id = $1 "
    "  AND k.generation = $2 AND k.chunk_id = s.chunk_id "
    "WHERE ($4::text[] IS NULL OR k.file_id = ANY($4::text[])) "
    "  AND ($5::int IS NULL OR k.page_number >= $5::int) AND ($6::int IS NULL OR k.page_number <= $6::int) "
    "ORDER BY s.score DESC, s.chunk_id LIMIT $7";

Status Done(Result<store::postgres::PgResult> r) {
  if (!r) return Fail(r.error());
  return {};
}

// The id of the locked statistics row, or nullopt when the index does not exist.
Result<std::optional<std::int64_t>> LockIndex(Connection& c, const IndexKey& key, bool create) {
  auto r = c.Exec(create ? kLockOrCreateSql : kLockSql, Params().Add(key.collection_id).Add(key.generation));
  if (!r) return Fail(r.error());
  if (r->empty()) return std::optional<std::int64_t>{};
  return std::optional<std::int64_t>{r->Int(0, 0)};
}

}  // namespace

Status PostgresKeywordIndex::Upsert(const IndexKey& key, std::span<const IndexedChunk> chunks) {
  if (chunks.empty()) return {};
  // One row per chunk id (the last one wins), so no chunk is inserted twice.
  std::unordered_map<std::int64_t, std::size_t> last;
  for (std::size_t i = 0; i < chunks.size(); ++i) last[chunks[i].chunk_id] = i;
  std::vector<std::int64_t> id_list;
  id_list.reserve(last.size());
  ArrayLiteral files, pages, bodies;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    if (last[chunks[i].chunk_id] != i) continue;
    id_list.push_back(chunks[i].chunk_id);
    files.Text(SanitizeUtf8(chunks[i].file_id));
    pages.Int(chunks[i].page_number);
    bodies.Text(SanitizeUtf8(chunks[i].text));
  }
  const std::string files_text = files.str(), pages_text = pages.str(), bodies_text = bodies.str();
  return db_.WithTransaction([&](Connection& c) -> Status {
    auto id = LockIndex(c, key, /*create=*/true);
    if (!id) return Fail(id.error());
    if (!*id) return Fail(Error::Internal("keyword index row missing after its upsert"));
    // Replaced chunks leave first, with their postings and their share of the statistics.
    if (auto st = Done(c.Exec(kRemoveSql, Params()
                                              .Add(key.collection_id)
                                              .Add(key.generation)
                                              .Add(**id)
                                              .AddIntArray(id_list)));
        !st) {
      return st;
    }
    return Done(c.Exec(kAddSql, Params()
                                    .Add(key.collection_id)
                                    .Add(key.generation)
                                    .Add(**id)
                                    .AddIntArray(id_list)
                                    .Add(files_text)
                                    .Add(pages_text)
                                    .Add(bodies_text)));
  });
}

Status PostgresKeywordIndex::Remove(const IndexKey& key, std::span<const std::int64_t> chunk_ids) {
  if (chunk_ids.empty()) return {};
  return db_.WithTransaction([&](Connection& c) -> Status {
    auto id = LockIndex(c, key, /*create=*/false);
    if (!id) return Fail(id.error());
    if (!*id) return {};  // no index: nothing to remove
    return Done(c.Exec(kRemoveSql, Params()
                                       .Add(key.collection_id)
                                       .Add(key.generation)
                                       .Add(**id)
                                       .AddIntArray(chunk_ids)));
  });
}

Status PostgresKeywordIndex::Drop(const IndexKey& key) {
  return db_.WithTransaction([&](Connection& c) -> Status {
    auto id = LockIndex(c, key, /*create=*/false);
    if (!id) return Fail(id.error());
    if (!*id) return {};
    // After the lock: every row a writer committed before it is seen and deleted.
    return Done(c.Exec(
        "WITH postings AS (DELETE FROM keyword_postings WHERE index_id = $3), "
        "chunks AS (DELETE FROM keyword_chunks WHERE collection_id = $1 AND generation = $2) "
        "DELETE FROM keyword_indexes WHERE id = $3",
        Params().Add(key.collection_id).Add(key.generation).Add(**id)));
  });
}

Result<std::size_t> PostgresKeywordIndex::Count(const IndexKey& key) const {
  return db_.WithRead([&](Connection& c) -> Result<std::size_t> {
    auto r = c.Exec("SELECT chunk_count FROM keyword_indexes WHERE collection_id = $1 AND generation = $2",
                    Params().Add(key.collection_id).Add(key.generation));
    if (!r) return Fail(r.error());
    if (r->empty()) return std::size_t{0};
    return static_cast<std::size_t>(r->Int(0, 0));
  });
}

Result<std::vector<Hit>> PostgresKeywordIndex::Search(const IndexKey& key, std::string_view query, std::size_t k,
                                                      const SearchFilter& filter) const {
  if (k == 0) return Fail(Error::InvalidArgument("k must be at least 1"));
  if (filter.file_ids && filter.file_ids->empty()) return std::vector<Hit>{};
  if (filter.page_min && filter.page_max && *filter.page_min > *filter.page_max) return std::vector<Hit>{};
  const std::string text = SanitizeUtf8(query);
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) return std::vector<Hit>{};
  const auto limit = static_cast<std::int64_t>(
      std::min<std::size_t>(k, static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())));
  Params p;
  p.Add(key.collection_id).Add(key.generation).Add(text);
  const bool filtered = !filter.empty();
  if (filtered) {
    if (filter.file_ids) {
      p.AddTextArray(*filter.file_ids);
    } else {
      p.AddNull();
    }
    p.Add(filter.page_min ? std::optional<std::int64_t>(*filter.page_min) : std::nullopt);
    p.Add(filter.page_max ? std::optional<std::int64_t>(*filter.page_max) : std::nullopt);
  }
  p.Add(limit);
  return db_.WithRead([&](Connection& c) -> Result<std::vector<Hit>> {
    auto r = c.Exec(filtered ? kFilteredSearchSql : kSearchSql, p);
    if (!r) return Fail(r.error());
    std::vector<Hit> out;
    out.reserve(static_cast<std::size_t>(r->rows()));
    for (int i = 0; i < r->rows(); ++i) out.push_back(Hit{r->Int(i, 0), static_cast<float>(r->Double(i, 1))});
    return out;
  });
}

}  // namespace modulo::index
