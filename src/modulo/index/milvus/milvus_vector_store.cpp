#include "modulo/index/milvus/milvus_vector_store.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "modulo/core/json.h"
#include "modulo/core/log.h"
#include "modulo/metrics/registry.h"

namespace modulo::index {
namespace {

// Milvus is this deployment's own engine: its answers (a query over many chunks' vectors) may be
// far larger than a request body, but never deeper than a few levels.
constexpr modulo::JsonLimits kMilvusJson{.max_depth = 64, .max_bytes = std::size_t{1} << 30};

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kPrimaryField = "pk";
constexpr std::string_view kVectorField = "embedding";

// Milvus error codes (pkg/util/merr) that carry a meaning for callers.
constexpr int kServiceNotReady = 1;
constexpr int kServiceUnavailable = 2;
constexpr int kServiceMemoryLimit = 3;
constexpr int kServiceRequestLimit = 4;
constexpr int kServiceInternal = 5;
constexpr int kServiceDiskLimit = 7;
constexpr int kServiceRateLimit = 8;
constexpr int kServiceForceDeny = 9;
constexpr int kServiceUnimplemented = 10;
constexpr int kCollectionNotFound = 100;
constexpr int kCollectionNotLoaded = 101;
constexpr int kCollectionNotFullyLoaded = 103;

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

Error MilvusError(int code, const std::string& message, std::string_view what) {
  std::string text = "Milvus " + std::string(what) + " failed (code " + std::to_string(code) + "): " + message;
  if (code == kCollectionNotFound || Contains(message, "collection not found") ||
      Contains(message, "can't find collection")) {
    return Error::NotFound(std::move(text));
  }
  if (code == kCollectionNotLoaded || code == kCollectionNotFullyLoaded || Contains(message, "not loaded")) {
    return Error::Unavailable(std::move(text) + " (the collection is not loaded in Milvus)");
  }
  if (Contains(message, "authenticate") || Contains(message, "auth check failure")) {
    return Error::Unauthenticated(std::move(text));
  }
  if (Contains(message, "permission deny") || Contains(message, "privilege")) return Error::PermissionDenied(std::move(text));
  switch (code) {
    case kServiceRateLimit:
      return Error::RateLimited(std::move(text));
    case kServiceNotReady:
    case kServiceUnavailable:
    case kServiceMemoryLimit:
    case kServiceRequestLimit:
    case kServiceInternal:
    case kServiceDiskLimit:
    case kServiceForceDeny:
      return Error::Unavailable(std::move(text));
    case kServiceUnimplemented:
      return Error::Unimplemented(std::move(text));
    default:
      break;
  }
  // 1100-1199: invalid parameters; 1800-1899: the REST layer's own request checks.
  if ((code >= 1100 && code < 1200) || (code >= 1800 && code < 1900)) return Error::InvalidArgument(std::move(text));
  return Error::Internal(std::move(text));
}

void AppendFloat(std::string& out, float v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest form that reads back exactly
  if (ec != std::errc()) {
    out += '0';
    return;
  }
  out.append(buf, end);
}

void AppendVector(std::string& out, const float* v, std::size_t n) {
  out += '[';
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) out += ',';
    AppendFloat(out, v[i]);
  }
  out += ']';
}

void AppendJsonString(std::string& out, std::string_view s) {
  out += json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}

bool ValidUtf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    if (n == 2 && c < 0xC2) return false;
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    if (n == 3) {
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0)) return false;
    }
    if (n == 4) {
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      if (c > 0xF4 || (c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90)) return false;
    }
    i += n;
  }
  return true;
}

bool AllFinite(const float* v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(v[i])) return false;
  }
  return true;
}

std::string IdList(std::span<const std::int64_t> ids, std::string_view field = "chunk_id") {
  std::string out = std::string(field) + " in [";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(ids[i]);
  }
  out += ']';
  return out;
}

// A JSON number or numeric string (Milvus returns int64 values as strings) as an int64.
std::optional<std::int64_t> AsInt64(const json& v) {
  if (v.is_number_integer()) return v.get<std::int64_t>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.3e18) return static_cast<std::int64_t>(d);
    return std::nullopt;
  }
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    std::int64_t out = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec == std::errc() && end == s.data() + s.size()) return out;
  }
  return std::nullopt;
}

// "FloatVector(384)" → 384.
std::optional<std::size_t> VectorDimension(const std::string& type) {
  constexpr std::string_view kPrefix = "FloatVector(";
  if (type.rfind(kPrefix, 0) != 0 || type.back() != ')') return std::nullopt;
  std::size_t dim = 0;
  const char* b = type.data() + kPrefix.size();
  const char* e = type.data() + type.size() - 1;
  auto [end, ec] = std::from_chars(b, e, dim);
  if (ec != std::errc() || end != e) return std::nullopt;
  return dim;
}

}  // namespace

Result<MilvusConsistency> ParseMilvusConsistency(std::string_view name) {
  if (name == "Strong") return MilvusConsistency::kStrong;
  if (name == "Eventually") return MilvusConsistency::kEventually;
  return Fail(Error::InvalidArgument("MILVUS_CONSISTENCY_LEVEL must be 'Strong' or 'Eventually', not '" +
                                     std::string(name) + "'"));
}

Result<std::unique_ptr<MilvusVectorStore>> MilvusVectorStore::Create(std::size_t dimension, MilvusOptions options,
                                                                     metrics::Registry* registry) {
  if (dimension == 0) return Fail(Error::InvalidArgument("the Milvus vector store needs a dimension above 0"));
  while (!options.url.empty() && options.url.back() == '/') options.url.pop_back();
  if (options.url.empty()) return Fail(Error::InvalidArgument("the Milvus URL is empty"));
  if (options.url.rfind("http://", 0) != 0 && options.url.rfind("https://", 0) != 0) {
    return Fail(Error::InvalidArgument("the Milvus URL must start with http:// or https://, not '" + options.url + "'"));
  }
  if (options.batch_size == 0 || options.batch_size > kMaxTopK) {
    return Fail(Error::InvalidArgument("the Milvus batch size must be 1 to " + std::to_string(kMaxTopK)));
  }
  if (options.db_name.empty()) options.db_name = "default";
  std::unique_ptr<MilvusVectorStore> store(new MilvusVectorStore(dimension, std::move(options), registry));
  if (registry != nullptr) {
    try {
      store->search_latency_ =
          &registry->AddHistogram("milvus_search_duration_seconds", "Milvus vector search round-trip time").With({});
    } catch (const std::exception& e) {
      return Fail(Error::AlreadyExists(std::string("cannot register the Milvus metrics: ") + e.what()));
    }
  }
  return store;
}

MilvusVectorStore::MilvusVectorStore(std::size_t dimension, MilvusOptions options, metrics::Registry*)
    : dimension_(dimension),
      options_(std::move(options)),
      http_(options_.timeout, options_.retry, options_.connect_timeout),
      insert_http_(options_.timeout, net::RetryPolicy{1, options_.retry.base_delay, options_.retry.max_delay},
                   options_.connect_timeout) {
  headers_ = {"Content-Type: application/json", "Accept: application/json"};
  if (!options_.token.empty()) headers_.push_back("Authorization: Bearer " + options_.token);
}

std::string MilvusVectorStore::CollectionName(const IndexKey& key) {
  return VectorCollectionName(key.owner_type, key.owner_id, key.collection_id, key.generation);
}

std::string MilvusVectorStore::QuoteString(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += ch;
        }
    }
  }
  out += '"';
  return out;
}

std::string MilvusVectorStore::FilterExpression(const SearchFilter& filter) {
  std::vector<std::string> parts;
  if (filter.file_ids && !filter.file_ids->empty()) {
    std::string in = "file_id in [";
    for (std::size_t i = 0; i < filter.file_ids->size(); ++i) {
      if (i > 0) in += ", ";
      in += QuoteString((*filter.file_ids)[i]);
    }
    in += ']';
    parts.push_back(std::move(in));
  }
  if (filter.page_min) parts.push_back("page_number >= " + std::to_string(*filter.page_min));
  if (filter.page_max) parts.push_back("page_number <= " + std::to_string(*filter.page_max));
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += " and ";
    out += p;
  }
  return out;
}

Result<json> MilvusVectorStore::Call(std::string_view path, const json& body, bool retry) const {
  const std::string text = body.dump(-1, ' ', false, json::error_handler_t::replace);
  const std::string url = options_.url + "/v1/vector/" + std::string(path);
  auto resp = (retry ? http_ : insert_http_).Post(url, headers_, text);
  if (!resp) return Fail(std::move(resp.error()).Wrap("Milvus " + std::string(path)));
  if (resp->status != 200) return Fail(net::HttpError(*resp, "Milvus " + std::string(path)));
  auto j = modulo::ParseJsonOrDiscarded(resp->body, kMilvusJson);
  if (j.is_discarded() || !j.is_object() || !j.contains("code")) {
    return Fail(Error::Internal("Milvus " + std::string(path) + " answered something else than its JSON envelope: " +
                                resp->body.substr(0, 200)));
  }
  const auto code = AsInt64(j["code"]).value_or(-1);
  if (code != 200) {
    std::string message = j.contains("message") && j["message"].is_string() ? j["message"].get<std::string>() : "";
    return Fail(MilvusError(static_cast<int>(code), message, path));
  }
  return j.contains("data") ? j["data"] : json();
}

Status MilvusVectorStore::Ping() const {
  auto resp = http_.Get(options_.url + "/v1/vector/collections?dbName=" + net::UrlEncode(options_.db_name), headers_);
  if (!resp) return Fail(std::move(resp.error()).Wrap("Milvus"));
  if (resp->status != 200) return Fail(net::HttpError(*resp, "Milvus"));
  auto j = modulo::ParseJsonOrDiscarded(resp->body, kMilvusJson);
  if (j.is_discarded() || !j.is_object() || AsInt64(j.value("code", json())).value_or(-1) != 200) {
    return Fail(Error::Unavailable("Milvus at " + options_.url + " did not answer its REST API: " +
                                   resp->body.substr(0, 200)));
  }
  return {};
}

bool MilvusVectorStore::Known(const std::string& name) const {
  std::lock_guard lock(known_mu_);
  return known_.contains(name);
}

void MilvusVectorStore::Forget(const std::string& name) {
  std::lock_guard lock(known_mu_);
  known_.erase(name);
}

Status MilvusVectorStore::EnsureCollection(const std::string& name) {
  if (Known(name)) return {};
  std::lock_guard create_lock(create_mu_);
  if (Known(name)) return {};
  auto describe = [&]() -> Result<json> {
    const std::string url = options_.url + "/v1/vector/collections/describe?collectionName=" + net::UrlEncode(name) +
                            "&dbName=" + net::UrlEncode(options_.db_name);
    auto resp = http_.Get(url, headers_);
    if (!resp) return Fail(std::move(resp.error()).Wrap("Milvus describe"));
    if (resp->status != 200) return Fail(net::HttpError(*resp, "Milvus describe"));
    auto j = modulo::ParseJsonOrDiscarded(resp->body, kMilvusJson);
    if (j.is_discarded() || !j.is_object()) {
      return Fail(Error::Internal("Milvus describe answered something else than JSON: " + resp->body.substr(0, 200)));
    }
    const auto code = AsInt64(j.value("code", json())).value_or(-1);
    if (code != 200) {
      return Fail(MilvusError(static_cast<int>(code), j.value("message", std::string()), "describe"));
    }
    return j.value("data", json::object());
  };
  auto check = [&](const json& d) -> Status {
    std::optional<std::size_t> dim;
    if (d.contains("fields") && d["fields"].is_array()) {
      for (const auto& f : d["fields"]) {
        if (f.is_object() && f.value("name", std::string()) == kVectorField) dim = VectorDimension(f.value("type", ""));
      }
    }
    if (!dim) {
      return Fail(Error::Conflict("Milvus collection " + name + " exists but has no float vector field '" +
                                  std::string(kVectorField) + "': it was not created by this store"));
    }
    if (*dim != dimension_) {
      return Fail(Error::Conflict("Milvus collection " + name + " has vectors of dimension " + std::to_string(*dim) +
                                  ", this store's are of dimension " + std::to_string(dimension_)));
    }
    if (!d.value("enableDynamicField", d.value("enableDynamic", false))) {
      return Fail(Error::Conflict("Milvus collection " + name + " has no dynamic field: it was not created by this store"));
    }
    std::lock_guard lock(known_mu_);
    known_.insert(name);
    return {};
  };

  auto existing = describe();
  if (existing) return check(*existing);
  if (existing.error().code() != ErrorCode::kNotFound) return Fail(std::move(existing.error()));

  json body = {{"dbName", options_.db_name},
               {"collectionName", name},
               {"dimension", dimension_},
               {"metricType", "IP"},
               {"primaryField", kPrimaryField},
               {"vectorField", kVectorField},
               {"description", "Modulo vector index"}};
  auto created = Call("collections/create", body);
  if (!created) {
    // Another process may have created it meanwhile.
    auto again = describe();
    if (again) return check(*again);
    return Fail(std::move(created.error()));
  }
  log::Info("created Milvus collection", {{"collection", name}, {"dimension", dimension_}});
  std::lock_guard lock(known_mu_);
  known_.insert(name);
  return {};
}

Result<std::size_t> MilvusVectorStore::CountIds(const std::string& name, std::span<const std::int64_t> ids,
                                                std::string_view field) const {
  json body = {{"dbName", options_.db_name},
               {"collectionName", name},
               {"filter", IdList(ids, field)},
               {"outputFields", {"count(*)"}},
               {"limit", 0}};
  auto data = Call("query", body);
  if (!data) return Fail(std::move(data.error()));
  if (!data->is_array() || data->empty() || !(*data)[0].is_object() || !(*data)[0].contains("count(*)")) {
    return Fail(Error::Internal("Milvus query count(*) answered " + data->dump().substr(0, 200)));
  }
  auto n = AsInt64((*data)[0]["count(*)"]);
  if (!n || *n < 0) return Fail(Error::Internal("Milvus query count(*) answered " + data->dump().substr(0, 200)));
  return static_cast<std::size_t>(*n);
}

Status MilvusVectorStore::WaitVisible(const std::string& name, std::span<const std::int64_t> ids,
                                      std::size_t expected, std::span<const std::int64_t> new_pks) const {
  const auto deadline = Clock::now() + options_.visibility_timeout;
  auto delay = std::chrono::milliseconds(10);
  for (;;) {
    // The new rows first (by primary key): until they show, the old rows of the same chunk ids
    // may still be counted in their place.
    std::size_t n = 0;
    if (!new_pks.empty()) {
      auto fresh = CountIds(name, new_pks, kPrimaryField);
      if (!fresh) return Fail(std::move(fresh.error()).Wrap("waiting for a write to show in Milvus"));
      n = *fresh;
    }
    if (n == new_pks.size()) {
      auto live = CountIds(name, ids, "chunk_id");
      if (!live) return Fail(std::move(live.error()).Wrap("waiting for a write to show in Milvus"));
      n = *live;
      if (n == expected) return {};
    }
    if (Clock::now() + delay > deadline) {
      return Fail(Error::DeadlineExceeded("Milvus collection " + name + " did not show a write within " +
                                          std::to_string(options_.visibility_timeout.count()) + " ms (" +
                                          std::to_string(n) + " rows of " + std::to_string(expected) + " expected)"));
    }
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(200));
  }
}

Status MilvusVectorStore::DeleteIds(const std::string& name, std::span<const std::int64_t> ids) const {
  if (ids.empty()) return {};
  json body = {{"dbName", options_.db_name}, {"collectionName", name}, {"filter", IdList(ids)}};
  auto r = Call("delete", body);
  if (!r && r.error().code() != ErrorCode::kNotFound) return Fail(std::move(r.error()));
  return {};
}

Status MilvusVectorStore::Upsert(const IndexKey& key, std::span<const IndexedChunk> chunks) {
  if (chunks.empty()) return {};
  for (const auto& c : chunks) {
    if (c.embedding == nullptr) {
      return Fail(Error::InvalidArgument("chunk " + std::to_string(c.chunk_id) + " has no embedding"));
    }
    if (c.chunk_id < 0 || c.chunk_id >= kMaxChunkId) {
      return Fail(Error::InvalidArgument("chunk id " + std::to_string(c.chunk_id) +
                                         " is outside what the Milvus store can hold (0 to 2^53-1)"));
    }
    if (!ValidUtf8(c.file_id)) {
      return Fail(Error::InvalidArgument("chunk " + std::to_string(c.chunk_id) + " has a file id that is not UTF-8"));
    }
    if (!AllFinite(c.embedding, dimension_)) {
      return Fail(Error::InvalidArgument("chunk " + std::to_string(c.chunk_id) + " has a non-finite embedding value"));
    }
  }
  // The last occurrence of an id wins.
  std::unordered_map<std::int64_t, std::size_t> last;
  last.reserve(chunks.size());
  for (std::size_t i = 0; i < chunks.size(); ++i) last[chunks[i].chunk_id] = i;
  std::vector<std::size_t> order;
  order.reserve(last.size());
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    if (last[chunks[i].chunk_id] == i) order.push_back(i);
  }

  const std::string name = CollectionName(key);
  if (auto s = EnsureCollection(name); !s) return s;

  std::vector<std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>>> written;  // chunk ids, new pks
  for (std::size_t begin = 0; begin < order.size(); begin += options_.batch_size) {
    const std::size_t end = std::min(order.size(), begin + options_.batch_size);
    std::vector<std::int64_t> ids;
    ids.reserve(end - begin);
    for (std::size_t i = begin; i < end; ++i) ids.push_back(chunks[order[i]].chunk_id);
    if (auto s = DeleteIds(name, ids); !s) return s;

    std::string body;
    body.reserve((end - begin) * (dimension_ * 11 + 96) + 128);
    body += "{\"dbName\":";
    AppendJsonString(body, options_.db_name);
    body += ",\"collectionName\":";
    AppendJsonString(body, name);
    body += ",\"data\":[";
    for (std::size_t i = begin; i < end; ++i) {
      const IndexedChunk& c = chunks[order[i]];
      if (i > begin) body += ',';
      body += "{\"embedding\":";
      AppendVector(body, c.embedding, dimension_);
      body += ",\"chunk_id\":" + std::to_string(c.chunk_id) + ",\"file_id\":";
      AppendJsonString(body, c.file_id);
      body += ",\"page_number\":" + std::to_string(c.page_number) + "}";
    }
    body += "]}";
    auto resp = insert_http_.Post(options_.url + "/v1/vector/insert", headers_, body);
    if (!resp) return Fail(std::move(resp.error()).Wrap("Milvus insert into " + name));
    if (resp->status != 200) return Fail(net::HttpError(*resp, "Milvus insert"));
    auto j = modulo::ParseJsonOrDiscarded(resp->body, kMilvusJson);
    if (j.is_discarded() || !j.is_object()) {
      return Fail(Error::Internal("Milvus insert answered something else than JSON: " + resp->body.substr(0, 200)));
    }
    const auto code = AsInt64(j.value("code", json())).value_or(-1);
    if (code != 200) {
      auto e = MilvusError(static_cast<int>(code), j.value("message", std::string()), "insert");
      if (e.code() == ErrorCode::kNotFound) Forget(name);  // dropped meanwhile: the next call recreates it
      return Fail(std::move(e));
    }
    const json& data = j.contains("data") ? j["data"] : json();
    const auto inserted = data.is_object() && data.contains("insertCount") ? AsInt64(data["insertCount"]) : std::nullopt;
    if (!inserted || *inserted != static_cast<std::int64_t>(ids.size())) {
      return Fail(Error::Internal("Milvus insert into " + name + " stored " +
                                  (inserted ? std::to_string(*inserted) : std::string("an unknown number of")) +
                                  " rows of " + std::to_string(ids.size())));
    }
    if (options_.consistency == MilvusConsistency::kStrong) {
      std::vector<std::int64_t> pks;
      if (data.contains("insertIds") && data["insertIds"].is_array()) {
        for (const auto& v : data["insertIds"]) {
          if (auto pk = AsInt64(v)) pks.push_back(*pk);
        }
      }
      if (pks.size() != ids.size()) {
        return Fail(Error::Internal("Milvus insert into " + name + " returned " + std::to_string(pks.size()) +
                                    " primary keys for " + std::to_string(ids.size()) + " rows"));
      }
      written.emplace_back(std::move(ids), std::move(pks));
    }
  }
  for (const auto& [ids, pks] : written) {
    if (auto s = WaitVisible(name, ids, ids.size(), pks); !s) return s;
  }
  return {};
}

Status MilvusVectorStore::Remove(const IndexKey& key, std::span<const std::int64_t> chunk_ids) {
  if (chunk_ids.empty()) return {};
  const std::string name = CollectionName(key);
  std::vector<std::int64_t> ids;
  for (std::int64_t id : chunk_ids) {
    if (id >= 0 && id < kMaxChunkId) ids.push_back(id);  // others cannot be stored, so are absent
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  for (std::size_t begin = 0; begin < ids.size(); begin += options_.batch_size) {
    const std::size_t end = std::min(ids.size(), begin + options_.batch_size);
    const std::span<const std::int64_t> batch(ids.data() + begin, end - begin);
    if (auto s = DeleteIds(name, batch); !s) return s;
    if (options_.consistency == MilvusConsistency::kStrong) {
      if (auto s = WaitVisible(name, batch, 0); !s) {
        if (s.error().code() == ErrorCode::kNotFound) return {};  // no collection: nothing to remove
        return s;
      }
    }
  }
  return {};
}

Status MilvusVectorStore::Drop(const IndexKey& key) {
  const std::string name = CollectionName(key);
  Forget(name);
  json body = {{"dbName", options_.db_name}, {"collectionName", name}};
  auto r = Call("collections/drop", body);
  if (!r && r.error().code() != ErrorCode::kNotFound) return Fail(std::move(r.error()));
  Forget(name);
  return {};
}

Result<std::size_t> MilvusVectorStore::Count(const IndexKey& key) const {
  const std::string name = CollectionName(key);
  json body = {{"dbName", options_.db_name},
               {"collectionName", name},
               {"filter", std::string(kPrimaryField) + " >= 0"},
               {"outputFields", {"count(*)"}},
               {"limit", 0}};
  auto data = Call("query", body);
  if (!data) {
    if (data.error().code() == ErrorCode::kNotFound) return std::size_t{0};
    return Fail(std::move(data.error()));
  }
  if (!data->is_array() || data->empty() || !(*data)[0].is_object() || !(*data)[0].contains("count(*)")) {
    return Fail(Error::Internal("Milvus query count(*) answered " + data->dump().substr(0, 200)));
  }
  auto n = AsInt64((*data)[0]["count(*)"]);
  if (!n || *n < 0) return Fail(Error::Internal("Milvus query count(*) answered " + data->dump().substr(0, 200)));
  return static_cast<std::size_t>(*n);
}

Result<std::vector<Hit>> MilvusVectorStore::Search(const IndexKey& key, std::span<const float> query, std::size_t k,
                                                   const SearchFilter& filter) const {
  if (query.size() != dimension_) {
    return Fail(Error::InvalidArgument("the query has " + std::to_string(query.size()) + " dimensions, the index " +
                                       std::to_string(dimension_)));
  }
  if (k == 0) return Fail(Error::InvalidArgument("k must be at least 1"));
  if (!AllFinite(query.data(), query.size())) return Fail(Error::InvalidArgument("the query has non-finite values"));
  SearchFilter effective = filter;
  if (effective.file_ids) {
    // Ids that are not UTF-8 cannot have been stored (Upsert refuses them), so they match nothing.
    auto& ids = *effective.file_ids;
    ids.erase(std::remove_if(ids.begin(), ids.end(), [](const std::string& s) { return !ValidUtf8(s); }), ids.end());
    if (ids.empty()) return std::vector<Hit>{};
  }
  if (effective.page_min && effective.page_max && *effective.page_min > *effective.page_max) return std::vector<Hit>{};

  k = std::min(k, kMaxTopK);
  const std::size_t limit = std::min(kMaxTopK, k + options_.tie_margin);
  const std::string name = CollectionName(key);
  const std::string expr = FilterExpression(effective);
  std::string body;
  body.reserve(dimension_ * 11 + expr.size() + 256);
  body += "{\"dbName\":";
  AppendJsonString(body, options_.db_name);
  body += ",\"collectionName\":";
  AppendJsonString(body, name);
  body += ",\"vector\":";
  AppendVector(body, query.data(), query.size());
  body += ",\"limit\":" + std::to_string(limit) + ",\"outputFields\":[\"chunk_id\"]";
  if (!expr.empty()) {
    body += ",\"filter\":";
    AppendJsonString(body, expr);
  }
  body += '}';

  const auto started = Clock::now();
  auto resp = http_.Post(options_.url + "/v1/vector/search", headers_, body);
  if (search_latency_ != nullptr) {
    search_latency_->Observe(std::chrono::duration<double>(Clock::now() - started).count());
  }
  if (!resp) return Fail(std::move(resp.error()).Wrap("Milvus search"));
  if (resp->status != 200) return Fail(net::HttpError(*resp, "Milvus search"));
  auto j = modulo::ParseJsonOrDiscarded(resp->body, kMilvusJson);
  if (j.is_discarded() || !j.is_object()) {
    return Fail(Error::Internal("Milvus search answered something else than JSON: " + resp->body.substr(0, 200)));
  }
  const auto code = AsInt64(j.value("code", json())).value_or(-1);
  if (code != 200) {
    auto e = MilvusError(static_cast<int>(code), j.value("message", std::string()), "search");
    if (e.code() == ErrorCode::kNotFound) return std::vector<Hit>{};  // no index yet
    return Fail(std::move(e));
  }
  const json& data = j.contains("data") ? j["data"] : json();
  if (!data.is_array()) return Fail(Error::Internal("Milvus search answered " + resp->body.substr(0, 200)));

  std::unordered_map<std::int64_t, float> best;  // a chunk id once, with its best score
  best.reserve(data.size());
  for (const auto& row : data) {
    if (!row.is_object() || !row.contains("chunk_id") || !row.contains("distance") || !row["distance"].is_number()) {
      continue;  // a row not written by this store
    }
    auto id = AsInt64(row["chunk_id"]);
    if (!id) continue;
    const float score = row["distance"].get<float>();
    auto [it, inserted] = best.emplace(*id, score);
    if (!inserted && score > it->second) it->second = score;
  }
  std::vector<Hit> hits;
  hits.reserve(best.size());
  for (const auto& [id, score] : best) hits.push_back({id, score});
  std::sort(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) {
    return a.score != b.score ? a.score > b.score : a.chunk_id < b.chunk_id;
  });
  if (hits.size() > k) hits.resize(k);
  return hits;
}

}  // namespace modulo::index
