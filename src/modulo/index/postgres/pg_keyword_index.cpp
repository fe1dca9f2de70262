#include "modulo/index/postgres/pg_keyword_index.h"

#include <limits>
#include <unordered_map>

namespace modulo::index {
namespace {

using store::postgres::ArrayLiteral;
using store::postgres::Connection;
using store::postgres::Params;
using store::postgres::SanitizeUtf8;

// A lexeme quoted for tsquery input: inside single quotes, backslashes and quotes escaped, so
// nothing in it is read as an operator.
constexpr const char* kQuoted = "'''' || replace(replace(lexeme, '\\', '\\\\'), '''', '''''') || ''''";

// BM25 over the matching rows. $1 collection, $2 generation, $3 query text, $4 file ids (NULL:
// any), $5 / $6 page bounds (NULL: open), $7 k.
const std::string kSearchSql = std::string(
    "WITH terms AS (SELECT DISTINCT t.lexeme FROM unnest(to_tsvector('modulo_english'::regconfig, $3::text)) t), "
    "quoted AS (SELECT lexeme, ") + kQuoted + " AS q FROM terms), "
    "query AS (SELECT string_agg(q, ' | ')::tsquery AS tq FROM quoted), "
    "docs AS (SELECT count(*)::float8 AS n, COALESCE(avg(doc_len), 0)::float8 AS avgdl FROM keyword_chunks "
    "  WHERE collection_id = $1 AND generation = $2), "
    "df AS (SELECT qt.lexeme, (SELECT count(*) FROM keyword_chunks k WHERE k.collection_id = $1 "
    "  AND k.generation = $2 AND k.tsv @@ qt.q::tsquery)::float8 AS df FROM quoted qt), "
    "hits AS (SELECT k.chunk_id, k.doc_len, k.tsv FROM keyword_chunks k, query "
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

Status Done(Result<store::postgres::PgResult> r) {
  if (!r) return Fail(r.error());
  return {};
}

}  // namespace

Status PostgresKeywordIndex::Upsert(const IndexKey& key, std::span<const IndexedChunk> chunks) {
  if (chunks.empty()) return {};
  // One row per chunk id (the last one wins), so ON CONFLICT never meets a row twice.
  std::unordered_map<std::int64_t, std::size_t> last;
  for (std::size_t i = 0; i < chunks.size(); ++i) last[chunks[i].chunk_id] = i;
  ArrayLiteral ids, files, pages, bodies;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    if (last[chunks[i].chunk_id] != i) continue;
    ids.Int(chunks[i].chunk_id);
    files.Text(SanitizeUtf8(chunks[i].file_id));
    pages.Int(chunks[i].page_number);
    bodies.Text(SanitizeUtf8(chunks[i].text));
  }
  return db_.WithWrite([&](Connection& c) {
    return Done(c.Exec(
        "INSERT INTO keyword_chunks (collection_id, generation, chunk_id, file_id, page_number, body, doc_len) "
        "SELECT $1, $2, u.id, u.file, u.page, u.body, "
        "(SELECT COALESCE(sum(COALESCE(array_length(t.positions, 1), 1)), 0) "
        " FROM unnest(to_tsvector('modulo_english'::regconfig, u.body)) t) "
        "FROM unnest($3::bigint[], $4::text[], $5::int[], $6::text[]) AS u(id, file, page, body) "
        "ON CONFLICT (collection_id, generation, chunk_id) DO UPDATE SET file_id = excluded.file_id, "
        "page_number = excluded.page_number, body = excluded.body, doc_len = excluded.doc_len",
        Params()
            .Add(key.collection_id)
            .Add(key.generation)
            .Add(ids.str())
            .Add(files.str())
            .Add(pages.str())
            .Add(bodies.str())));
  });
}

Status PostgresKeywordIndex::Remove(const IndexKey& key, std::span<const std::int64_t> chunk_ids) {
  if (chunk_ids.empty()) return {};
  return db_.WithWrite([&](Connection& c) {
    return Done(c.Exec(
        "DELETE FROM keyword_chunks WHERE collection_id = $1 AND generation = $2 AND chunk_id = ANY($3::bigint[])",
        Params().Add(key.collection_id).Add(key.generation).AddIntArray(chunk_ids)));
  });
}

Status PostgresKeywordIndex::Drop(const IndexKey& key) {
  return db_.WithWrite([&](Connection& c) {
    return Done(c.Exec("DELETE FROM keyword_chunks WHERE collection_id = $1 AND generation = $2",
                       Params().Add(key.collection_id).Add(key.generation)));
  });
}

Result<std::size_t> PostgresKeywordIndex::Count(const IndexKey& key) const {
  return db_.WithRead([&](Connection& c) -> Result<std::size_t> {
    auto r = c.Exec("SELECT count(*) FROM keyword_chunks WHERE collection_id = $1 AND generation = $2",
                    Params().Add(key.collection_id).Add(key.generation));
    if (!r) return Fail(r.error());
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
  Params p;
  p.Add(key.collection_id).Add(key.generation).Add(text);
  if (filter.file_ids) {
    p.AddTextArray(*filter.file_ids);
  } else {
    p.AddNull();
  }
  p.Add(filter.page_min ? std::optional<std::int64_t>(*filter.page_min) : std::nullopt);
  p.Add(filter.page_max ? std::optional<std::int64_t>(*filter.page_max) : std::nullopt);
  p.Add(static_cast<std::int64_t>(std::min<std::size_t>(k, static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))));
  return db_.WithRead([&](Connection& c) -> Result<std::vector<Hit>> {
    auto r = c.Exec(kSearchSql, p);
    if (!r) return Fail(r.error());
    std::vector<Hit> out;
    out.reserve(static_cast<std::size_t>(r->rows()));
    for (int i = 0; i < r->rows(); ++i) out.push_back(Hit{r->Int(i, 0), static_cast<float>(r->Double(i, 1))});
    return out;
  });
}

}  // namespace modulo::index
