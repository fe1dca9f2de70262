#include "modulo/index/bm25/bm25_index.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <mutex>
#include <queue>
#include <unordered_set>
#include <utility>

namespace modulo::index {
namespace {

struct Posting {
  std::uint32_t doc;  // chunk ordinal
  std::uint32_t tf;
};

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

constexpr std::uint32_t kMaxOrdinal = std::numeric_limits<std::uint32_t>::max() - 1;

std::string ShardName(const IndexKey& key) {
  std::string s = std::to_string(key.collection_id.size());
  s += ':';
  s += key.collection_id;
  s += ':';
  s += std::to_string(key.generation);
  return s;
}

void PutVarint(std::vector<std::uint8_t>& out, std::uint32_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<std::uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<std::uint8_t>(v));
}

// Calls fn(term_id) for each term id encoded in [p, end).
template <typename Fn>
void ForEachTermId(const std::uint8_t* p, const std::uint8_t* end, Fn&& fn) {
  std::uint32_t prev = 0;
  while (p < end) {
    std::uint32_t v = 0;
    int shift = 0;
    while (true) {
      const std::uint8_t b = *p++;
      v |= static_cast<std::uint32_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) break;
      shift += 7;
    }
    prev += v;
    fn(prev);
  }
}

// Interned terms: an open-addressing table of term ids over one byte arena (about 20 bytes
// per term, against ~75 for an unordered_map<std::string, uint32_t>).
class TermDict {
 public:
  static constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();

  [[nodiscard]] std::size_t size() const noexcept { return offsets_.size() - 1; }
  [[nodiscard]] std::string_view Term(std::uint32_t id) const noexcept {
    return std::string_view(arena_).substr(offsets_[id], offsets_[id + 1] - offsets_[id]);
  }

  [[nodiscard]] std::uint32_t Find(std::string_view term) const noexcept {
    if (slots_.empty()) return kNone;
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = Hash(term) & mask;; i = (i + 1) & mask) {
      const std::uint32_t v = slots_[i];
      if (v == 0) return kNone;
      if (Term(v - 1) == term) return v - 1;
    }
  }

  // The term's id, interning it if new (ids are dense, in order of first insertion).
  std::uint32_t Intern(std::string_view term) {
    if ((size() + 1) * 2 > slots_.size()) Rehash(std::max<std::size_t>(64, slots_.size() * 2));
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = Hash(term) & mask;
    for (;; i = (i + 1) & mask) {
      const std::uint32_t v = slots_[i];
      if (v == 0) break;
      if (Term(v - 1) == term) return v - 1;
    }
    const auto id = static_cast<std::uint32_t>(size());
    arena_.append(term);
    offsets_.push_back(arena_.size());
    slots_[i] = id + 1;
    return id;
  }

  [[nodiscard]] std::size_t MemoryBytes() const noexcept {
    return slots_.capacity() * sizeof(std::uint32_t) + offsets_.capacity() * sizeof(std::uint64_t) + arena_.capacity();
  }

 private:
  static std::size_t Hash(std::string_view s) noexcept { return std::hash<std::string_view>{}(s); }

  void Rehash(std::size_t n) {
    slots_.assign(n, 0);
    const std::size_t mask = n - 1;
    for (std::uint32_t id = 0; id < size(); ++id) {
      std::size_t i = Hash(Term(id)) & mask;
      while (slots_[i] != 0) i = (i + 1) & mask;
      slots_[i] = id + 1;
    }
  }

  std::vector<std::uint32_t> slots_;       // term id + 1; 0 = empty; size a power of two
  std::vector<std::uint64_t> offsets_{0};  // term id -> start in arena_; one past the end last
  std::string arena_;
};

// A chunk after analysis, before it enters an index.
struct AnalyzedChunk {
  const IndexedChunk* chunk = nullptr;
  std::vector<std::pair<std::string, std::uint32_t>> terms;  // unique terms with their tf
  std::uint32_t length = 0;                                  // number of terms
};

Status CheckKey(const IndexKey& key) {
  if (key.collection_id.empty()) return Fail(Error::InvalidArgument("keyword index: empty collection id"));
  return {};
}

template <typename T>
std::size_t VecBytes(const std::vector<T>& v) {
  return v.capacity() * sizeof(T);
}

}  // namespace

struct Bm25Index::Shard {
  mutable std::shared_mutex mu;

  // Terms.
  TermDict terms;
  std::vector<std::vector<Posting>> postings;  // by term id, ordinals ascending
  std::vector<std::uint32_t> df;               // live chunks (with terms) containing the term

  // Chunks, by ordinal (dead ones included until compaction).
  std::vector<std::int64_t> chunk_ids;
  std::vector<std::uint32_t> lengths;
  std::vector<std::uint32_t> file_ords;
  std::vector<std::int32_t> pages;
  std::vector<std::uint8_t> live;
  std::vector<std::uint64_t> fwd_offsets{0};  // ordinal o's term ids: fwd[fwd_offsets[o], fwd_offsets[o+1])
  std::vector<std::uint8_t> fwd;
  std::unordered_map<std::int64_t, std::uint32_t> ordinal_of;  // live chunks only

  // Files.
  StringMap<std::uint32_t> file_ord_of;
  std::vector<std::string> file_names;

  std::uint64_t live_total_length = 0;
  std::uint32_t live_with_terms = 0;  // N
  std::uint32_t dead = 0;

  std::uint32_t FileOrdinal(const std::string& file_id) {
    if (auto it = file_ord_of.find(file_id); it != file_ord_of.end()) return it->second;
    const auto ord = static_cast<std::uint32_t>(file_names.size());
    file_names.push_back(file_id);
    file_ord_of.emplace(file_id, ord);
    return ord;
  }

  std::uint32_t TermId(const std::string& term) {
    const std::uint32_t id = terms.Intern(term);
    if (id == postings.size()) {
      postings.emplace_back();
      df.push_back(0);
    }
    return id;
  }

  void Kill(std::uint32_t ord) {
    if (live[ord] == 0) return;
    live[ord] = 0;
    ForEachTermId(fwd.data() + fwd_offsets[ord], fwd.data() + fwd_offsets[ord + 1], [&](std::uint32_t t) { --df[t]; });
    if (lengths[ord] > 0) {
      live_total_length -= lengths[ord];
      --live_with_terms;
    }
    ++dead;
    ordinal_of.erase(chunk_ids[ord]);
  }

  void Add(const AnalyzedChunk& a, std::vector<std::pair<std::uint32_t, std::uint32_t>>& scratch) {
    const auto ord = static_cast<std::uint32_t>(chunk_ids.size());
    scratch.clear();
    for (const auto& [term, tf] : a.terms) scratch.emplace_back(TermId(term), tf);
    std::sort(scratch.begin(), scratch.end());
    std::uint32_t prev = 0;
    for (const auto& [t, tf] : scratch) {
      postings[t].push_back({ord, tf});
      ++df[t];
      PutVarint(fwd, t - prev);
      prev = t;
    }
    fwd_offsets.push_back(fwd.size());
    chunk_ids.push_back(a.chunk->chunk_id);
    lengths.push_back(a.length);
    file_ords.push_back(FileOrdinal(a.chunk->file_id));
    pages.push_back(a.chunk->page_number);
    live.push_back(1);
    ordinal_of[a.chunk->chunk_id] = ord;
    if (a.length > 0) {
      live_total_length += a.length;
      ++live_with_terms;
    }
  }

  // Drops dead chunks, terms no live chunk has and files no live chunk belongs to.
  void Compact() {
    const auto old_n = static_cast<std::uint32_t>(chunk_ids.size());
    constexpr std::uint32_t kGone = std::numeric_limits<std::uint32_t>::max();
    std::vector<std::uint32_t> new_ord(old_n, kGone);
    std::uint32_t n = 0;
    for (std::uint32_t o = 0; o < old_n; ++o) {
      if (live[o] != 0) new_ord[o] = n++;
    }
    // Terms: keep those with live postings, renumbered in order (keeps forward lists sorted).
    std::vector<std::uint32_t> new_term(postings.size(), kGone);
    std::uint32_t nt = 0;
    for (std::uint32_t t = 0; t < postings.size(); ++t) {
      if (df[t] > 0) new_term[t] = nt++;
    }
    std::vector<std::vector<Posting>> new_postings(nt);
    std::vector<std::uint32_t> new_df(nt);
    for (std::uint32_t t = 0; t < postings.size(); ++t) {
      if (new_term[t] == kGone) continue;
      auto& out = new_postings[new_term[t]];
      out.reserve(df[t]);
      for (const Posting& p : postings[t]) {
        if (new_ord[p.doc] != kGone) out.push_back({new_ord[p.doc], p.tf});
      }
      new_df[new_term[t]] = df[t];
    }
    TermDict new_terms;
    for (std::uint32_t t = 0; t < postings.size(); ++t) {
      if (new_term[t] != kGone) (void)new_terms.Intern(terms.Term(t));
    }
    terms = std::move(new_terms);
    // Files still referenced.
    std::vector<std::uint32_t> new_file(file_names.size(), kGone);
    std::vector<std::string> new_file_names;
    for (std::uint32_t o = 0; o < old_n; ++o) {
      if (live[o] == 0) continue;
      auto& nf = new_file[file_ords[o]];
      if (nf == kGone) {
        nf = static_cast<std::uint32_t>(new_file_names.size());
        new_file_names.push_back(std::move(file_names[file_ords[o]]));
      }
    }
    file_ord_of.clear();
    for (std::uint32_t f = 0; f < new_file_names.size(); ++f) file_ord_of.emplace(new_file_names[f], f);
    // Chunks.
    std::vector<std::int64_t> ids;
    std::vector<std::uint32_t> lens, fords;
    std::vector<std::int32_t> pgs;
    std::vector<std::uint64_t> offs;
    std::vector<std::uint8_t> fw;
    ids.reserve(n);
    lens.reserve(n);
    fords.reserve(n);
    pgs.reserve(n);
    offs.reserve(n + 1);
    offs.push_back(0);
    fw.reserve(fwd.size());
    for (std::uint32_t o = 0; o < old_n; ++o) {
      if (live[o] == 0) continue;
      ids.push_back(chunk_ids[o]);
      lens.push_back(lengths[o]);
      fords.push_back(new_file[file_ords[o]]);
      pgs.push_back(pages[o]);
      std::uint32_t prev = 0;
      ForEachTermId(fwd.data() + fwd_offsets[o], fwd.data() + fwd_offsets[o + 1], [&](std::uint32_t t) {
        const std::uint32_t nt2 = new_term[t];
        PutVarint(fw, nt2 - prev);
        prev = nt2;
      });
      offs.push_back(fw.size());
    }
    fw.shrink_to_fit();
    postings = std::move(new_postings);
    df = std::move(new_df);
    chunk_ids = std::move(ids);
    lengths = std::move(lens);
    file_ords = std::move(fords);
    pages = std::move(pgs);
    fwd_offsets = std::move(offs);
    fwd = std::move(fw);
    file_names = std::move(new_file_names);
    live.assign(n, 1);
    ordinal_of.clear();
    ordinal_of.reserve(n);
    for (std::uint32_t o = 0; o < n; ++o) ordinal_of.emplace(chunk_ids[o], o);
    dead = 0;
  }

  void MaybeCompact(double ratio) {
    if (dead >= 64 && static_cast<double>(dead) > ratio * static_cast<double>(ordinal_of.size())) Compact();
  }

  [[nodiscard]] std::size_t MemoryBytes() const {
    std::size_t bytes = sizeof(Shard);
    // unordered_map nodes: key/value plus next pointer and cached hash; plus the bucket array.
    bytes += terms.MemoryBytes();
    bytes += VecBytes(postings) + VecBytes(df);
    for (const auto& p : postings) bytes += VecBytes(p);
    bytes += VecBytes(chunk_ids) + VecBytes(lengths) + VecBytes(file_ords) + VecBytes(pages) + VecBytes(live) +
             VecBytes(fwd_offsets) + VecBytes(fwd);
    bytes += ordinal_of.size() * (sizeof(std::int64_t) + sizeof(std::uint32_t) + 2 * sizeof(void*)) +
             ordinal_of.bucket_count() * sizeof(void*);
    bytes += file_ord_of.size() * (sizeof(std::string) + sizeof(std::uint32_t) + 2 * sizeof(void*)) +
             file_ord_of.bucket_count() * sizeof(void*);
    for (const auto& f : file_names) bytes += sizeof(std::string) + (f.size() > 15 ? f.capacity() + 1 : 0) * 2;
    return bytes;
  }
};

Status Bm25Index::Validate(const Bm25Options& options) {
  if (!(options.k1 >= 0.0f) || !std::isfinite(options.k1)) {
    return Fail(Error::InvalidArgument("bm25: k1 must be a finite number >= 0"));
  }
  if (!(options.b >= 0.0f && options.b <= 1.0f)) return Fail(Error::InvalidArgument("bm25: b must be in [0, 1]"));
  if (!(options.compact_dead_ratio > 0.0)) {
    return Fail(Error::InvalidArgument("bm25: compact_dead_ratio must be > 0"));
  }
  if (options.analyzer.max_token_chars == 0) {
    return Fail(Error::InvalidArgument("bm25: max_token_chars must be > 0"));
  }
  if (!IsKnownStemmer(options.analyzer.stemmer)) {
    return Fail(Error::InvalidArgument("bm25: unknown stemmer '" + options.analyzer.stemmer + "'"));
  }
  return {};
}

Result<std::unique_ptr<Bm25Index>> Bm25Index::Create(Bm25Options options) {
  if (auto ok = Validate(options); !ok) return Fail(std::move(ok.error()));
  return std::make_unique<Bm25Index>(std::move(options));
}

Bm25Index::Bm25Index(Bm25Options options) : options_(std::move(options)), analyzer_(options_.analyzer) {}

Bm25Index::~Bm25Index() = default;

std::shared_ptr<Bm25Index::Shard> Bm25Index::Find(const IndexKey& key) const {
  const std::string name = ShardName(key);
  std::shared_lock lock(mu_);
  auto it = shards_.find(name);
  return it == shards_.end() ? nullptr : it->second;
}

std::shared_ptr<Bm25Index::Shard> Bm25Index::FindOrCreate(const IndexKey& key) {
  const std::string name = ShardName(key);
  {
    std::shared_lock lock(mu_);
    if (auto it = shards_.find(name); it != shards_.end()) return it->second;
  }
  std::unique_lock lock(mu_);
  auto& slot = shards_[name];
  if (!slot) slot = std::make_shared<Shard>();
  return slot;
}

Status Bm25Index::Upsert(const IndexKey& key, std::span<const IndexedChunk> chunks) {
  if (auto ok = CheckKey(key); !ok) return ok;
  if (chunks.empty()) return {};
  // Analyse outside any lock; a chunk id repeated in the batch: the last one wins.
  std::vector<AnalyzedChunk> analyzed;
  analyzed.reserve(chunks.size());
  std::unordered_set<std::int64_t> seen;
  seen.reserve(chunks.size());
  std::vector<std::string> terms;
  for (std::size_t i = chunks.size(); i-- > 0;) {
    if (!seen.insert(chunks[i].chunk_id).second) continue;
    AnalyzedChunk a;
    a.chunk = &chunks[i];
    terms.clear();
    analyzer_.Analyze(chunks[i].text, terms);
    a.length = static_cast<std::uint32_t>(std::min<std::size_t>(terms.size(), kMaxOrdinal));
    std::sort(terms.begin(), terms.end());
    for (std::size_t s = 0; s < terms.size();) {
      std::size_t e = s + 1;
      while (e < terms.size() && terms[e] == terms[s]) ++e;
      a.terms.emplace_back(std::move(terms[s]), static_cast<std::uint32_t>(e - s));
      s = e;
    }
    analyzed.push_back(std::move(a));
  }
  std::reverse(analyzed.begin(), analyzed.end());

  auto shard = FindOrCreate(key);
  std::unique_lock lock(shard->mu);
  if (shard->chunk_ids.size() + analyzed.size() > kMaxOrdinal) {
    return Fail(Error::PayloadTooLarge("bm25: too many chunks in one index"));
  }
  std::vector<std::pair<std::uint32_t, std::uint32_t>> scratch;
  for (const auto& a : analyzed) {
    if (auto it = shard->ordinal_of.find(a.chunk->chunk_id); it != shard->ordinal_of.end()) shard->Kill(it->second);
    shard->Add(a, scratch);
  }
  shard->MaybeCompact(options_.compact_dead_ratio);
  return {};
}

Status Bm25Index::Remove(const IndexKey& key, std::span<const std::int64_t> chunk_ids) {
  if (auto ok = CheckKey(key); !ok) return ok;
  auto shard = Find(key);
  if (!shard || chunk_ids.empty()) return {};
  std::unique_lock lock(shard->mu);
  for (const auto id : chunk_ids) {
    if (auto it = shard->ordinal_of.find(id); it != shard->ordinal_of.end()) shard->Kill(it->second);
  }
  shard->MaybeCompact(options_.compact_dead_ratio);
  return {};
}

Status Bm25Index::Drop(const IndexKey& key) {
  if (auto ok = CheckKey(key); !ok) return ok;
  std::shared_ptr<Shard> victim;  // destroyed outside the lock (searches may still hold it)
  {
    std::unique_lock lock(mu_);
    auto it = shards_.find(ShardName(key));
    if (it == shards_.end()) return {};
    victim = std::move(it->second);
    shards_.erase(it);
  }
  return {};
}

Result<std::size_t> Bm25Index::Count(const IndexKey& key) const {
  if (auto ok = CheckKey(key); !ok) return Fail(std::move(ok.error()));
  auto shard = Find(key);
  if (!shard) return std::size_t{0};
  std::shared_lock lock(shard->mu);
  return shard->ordinal_of.size();
}

Bm25IndexStats Bm25Index::Stats(const IndexKey& key) const {
  Bm25IndexStats s;
  auto shard = Find(key);
  if (!shard) return s;
  std::shared_lock lock(shard->mu);
  s.live_chunks = shard->ordinal_of.size();
  s.dead_chunks = shard->dead;
  s.terms = shard->terms.size();
  for (const auto& p : shard->postings) s.postings += p.size();
  s.memory_bytes = shard->MemoryBytes();
  return s;
}

Result<std::vector<Hit>> Bm25Index::Search(const IndexKey& key, std::string_view query, std::size_t k,
                                           const SearchFilter& filter) const {
  if (auto ok = CheckKey(key); !ok) return Fail(std::move(ok.error()));
  if (k == 0) return Fail(Error::InvalidArgument("keyword search: k must be at least 1"));
  std::vector<Hit> hits;

  thread_local std::vector<std::string> terms;
  terms.clear();
  analyzer_.Analyze(query, terms);
  if (terms.empty()) return hits;
  // Unique query terms with their counts (a repeated term counts repeatedly, as in Lucene).
  std::sort(terms.begin(), terms.end());

  auto shard = Find(key);
  if (!shard) return hits;
  if (filter.file_ids && filter.file_ids->empty()) return hits;
  if (filter.page_min && filter.page_max && *filter.page_min > *filter.page_max) return hits;

  std::shared_lock lock(shard->mu);
  const Shard& s = *shard;
  if (s.live_with_terms == 0) return hits;

  // Filter: file ids -> allowed file ordinals.
  thread_local std::vector<std::uint8_t> allowed_files;
  const bool by_file = filter.file_ids.has_value();
  if (by_file) {
    allowed_files.assign(s.file_names.size(), 0);
    bool any = false;
    for (const auto& f : *filter.file_ids) {
      if (auto it = s.file_ord_of.find(f); it != s.file_ord_of.end()) {
        allowed_files[it->second] = 1;
        any = true;
      }
    }
    if (!any) return hits;
  }
  const std::int32_t page_min = filter.page_min.value_or(std::numeric_limits<std::int32_t>::min());
  const std::int32_t page_max = filter.page_max.value_or(std::numeric_limits<std::int32_t>::max());
  const bool by_page = filter.page_min.has_value() || filter.page_max.has_value();

  const double n_docs = s.live_with_terms;
  const double avgdl = static_cast<double>(s.live_total_length) / n_docs;
  const float k1 = options_.k1;
  const float b = options_.b;
  const float norm_const = k1 * (1.0f - b);
  const float norm_per_len = avgdl > 0 ? static_cast<float>(k1 * b / avgdl) : 0.0f;

  thread_local std::vector<float> acc;
  thread_local std::vector<std::uint32_t> touched;
  if (acc.size() < s.chunk_ids.size()) acc.resize(s.chunk_ids.size(), 0.0f);
  touched.clear();

  const std::uint32_t* lengths = s.lengths.data();
  for (std::size_t i = 0; i < terms.size();) {
    std::size_t j = i + 1;
    while (j < terms.size() && terms[j] == terms[i]) ++j;
    const auto qtf = static_cast<float>(j - i);
    const std::uint32_t t = s.terms.Find(terms[i]);
    i = j;
    if (t == TermDict::kNone) continue;
    const double df = s.df[t];
    if (df == 0) continue;
    const float idf = static_cast<float>(std::log(1.0 + (n_docs - df + 0.5) / (df + 0.5)));
    const float weight = qtf * idf * (k1 + 1.0f);
    for (const Posting& p : s.postings[t]) {
      float& a = acc[p.doc];
      if (a == 0.0f) {
        touched.push_back(p.doc);
        if (s.live[p.doc] == 0 || (by_file && allowed_files[s.file_ords[p.doc]] == 0) ||
            (by_page && (s.pages[p.doc] < page_min || s.pages[p.doc] > page_max))) {
          a = -1.0f;
          continue;
        }
      } else if (a < 0.0f) {
        continue;
      }
      const auto tf = static_cast<float>(p.tf);
      a += weight * tf / (tf + norm_const + norm_per_len * static_cast<float>(lengths[p.doc]));
    }
  }

  // Top k: a min-heap whose top is the worst kept hit (lowest score, then highest chunk id).
  auto better = [](const Hit& x, const Hit& y) {
    return x.score > y.score || (x.score == y.score && x.chunk_id < y.chunk_id);
  };
  hits.reserve(std::min<std::size_t>(k, touched.size()));
  for (const std::uint32_t d : touched) {
    const float score = acc[d];
    acc[d] = 0.0f;
    if (score <= 0.0f) continue;
    const Hit h{s.chunk_ids[d], score};
    if (hits.size() < k) {
      hits.push_back(h);
      std::push_heap(hits.begin(), hits.end(), better);
    } else if (better(h, hits.front())) {
      std::pop_heap(hits.begin(), hits.end(), better);
      hits.back() = h;
      std::push_heap(hits.begin(), hits.end(), better);
    }
  }
  std::sort_heap(hits.begin(), hits.end(), better);
  return hits;
}

}  // namespace modulo::index
