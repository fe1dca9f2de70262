#include "modulo/embed/remote/remote_embedders.h"

#include <cmath>
#include <curl/curl.h>

#include <nlohmann/json.hpp>

#include "modulo/core/json.h"

namespace modulo::embed::remote {
namespace {

using json = nlohmann::json;

void Normalize(std::span<float> v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  if (s <= 0) return;
  const float inv = static_cast<float>(1.0 / std::sqrt(s));
  for (float& x : v) x *= inv;
}

std::string UrlEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// Appends rows of `batch` to `out`, checking the dimension.
Status Append(Embeddings& out, std::vector<std::vector<float>> rows, const std::vector<std::uint32_t>& tokens) {
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (out.dimension == 0) out.dimension = rows[i].size();
    if (rows[i].size() != out.dimension || rows[i].empty()) {
      return Fail(Error::Unavailable("embedding service returned vectors of inconsistent dimension"));
    }
    Normalize(rows[i]);
    out.values.insert(out.values.end(), rows[i].begin(), rows[i].end());
    out.token_counts.push_back(i < tokens.size() ? tokens[i] : 0);
  }
  return {};
}

// Splits texts into requests of at most batch_size and concatenates the results in order.
template <typename F>
Result<Embeddings> EmbedInBatches(std::span<const std::string> texts, std::size_t batch_size, std::size_t dimension,
                                  F&& embed_batch) {
  Embeddings out;
  out.dimension = dimension;
  for (std::size_t i = 0; i < texts.size(); i += batch_size) {
    auto b = embed_batch(texts.subspan(i, std::min(batch_size, texts.size() - i)));
    if (!b) return Fail(b.error());
    out.dimension = b->dimension;
    out.values.insert(out.values.end(), b->values.begin(), b->values.end());
    out.token_counts.insert(out.token_counts.end(), b->token_counts.begin(), b->token_counts.end());
  }
  return out;
}

Result<std::vector<float>> FloatArray(const json& j) {
  if (!j.is_array()) return Fail(Error::Unavailable("embedding service returned a malformed vector"));
  std::vector<float> v;
  v.reserve(j.size());
  for (const auto& x : j) {
    if (!x.is_number()) return Fail(Error::Unavailable("embedding service returned a non-numeric vector entry"));
    v.push_back(x.get<float>());
  }
  return v;
}

}  // namespace

std::vector<std::pair<std::uint32_t, std::uint32_t>> EstimateTokenSpans(std::string_view text) {
  std::vector<std::pair<std::uint32_t, std::uint32_t>> out;
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (std::isspace(c)) {
      ++i;
    } else if (c < 0x80 && std::ispunct(c)) {
      out.emplace_back(static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(i + 1));
      ++i;
    } else {
      std::size_t j = i;
      while (j < n && !std::isspace(static_cast<unsigned char>(text[j])) &&
             !(static_cast<unsigned char>(text[j]) < 0x80 && std::ispunct(static_cast<unsigned char>(text[j])))) {
        ++j;
      }
      // Cut the word into ~6-byte pieces at character boundaries.
      std::size_t s = i;
      while (s < j) {
        std::size_t e = std::min(j, s + 6);
        while (e < j && (static_cast<unsigned char>(text[e]) & 0xC0) == 0x80) ++e;
        out.emplace_back(static_cast<std::uint32_t>(s), static_cast<std::uint32_t>(e));
        s = e;
      }
      i = j;
    }
  }
  return out;
}

// ---- OpenAI-compatible ----

Result<std::unique_ptr<OpenAiEmbedder>> OpenAiEmbedder::Create(const RemoteEmbedderOptions& options) {
  if (options.url.empty()) return Fail(Error::InvalidArgument("MODULO_EMBEDDING_URL is required for the openai embedder"));
  if (options.model.empty()) {
    return Fail(Error::InvalidArgument("MODULO_EMBEDDING_MODEL is required for the openai embedder"));
  }
  auto e = std::unique_ptr<OpenAiEmbedder>(new OpenAiEmbedder(options));
  std::vector<std::string> probe = {"dimension probe"};
  auto r = e->EmbedBatch(probe);
  if (!r) return Fail(std::move(r.error()).Wrap("probing the embedding service at " + options.url));
  e->info_ = {options.model, r->dimension, options.max_tokens, "remote"};
  return e;
}

Result<Embeddings> OpenAiEmbedder::EmbedBatch(std::span<const std::string> texts) {
  json body = {{"model", options_.model}, {"input", json::array()}, {"encoding_format", "float"}};
  for (const auto& t : texts) body["input"].push_back(t);
  std::vector<std::string> headers = {"Content-Type: application/json", "Accept: application/json"};
  if (!options_.api_key.empty()) headers.push_back("Authorization: Bearer " + options_.api_key);
  std::string url = options_.url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  auto resp = http_.Post(url + "/embeddings", headers, body.dump(-1, ' ', false, json::error_handler_t::replace));
  if (!resp) return Fail(resp.error());
  if (resp->status < 200 || resp->status >= 300) return Fail(net::HttpError(*resp, "the embedding service"));
  auto j = modulo::ParseJsonOrDiscarded(resp->body);
  if (j.is_discarded() || !j.contains("data") || !j["data"].is_array() || j["data"].size() != texts.size()) {
    return Fail(Error::Unavailable("the embedding service returned a malformed response"));
  }
  std::vector<std::vector<float>> rows(texts.size());
  for (const auto& d : j["data"]) {
    const std::size_t idx = d.value("index", static_cast<std::size_t>(0));
    if (idx >= rows.size() || !d.contains("embedding")) return Fail(Error::Unavailable("malformed embedding entry"));
    auto v = FloatArray(d["embedding"]);
    if (!v) return Fail(v.error());
    rows[idx] = std::move(*v);
  }
  // Usage is reported per request; spread it over the inputs by their estimated share.
  std::vector<std::uint32_t> tokens(texts.size(), 0);
  const auto total = j.contains("usage") ? j["usage"].value("prompt_tokens", 0) : 0;
  std::size_t est_sum = 0;
  for (const auto& t : texts) est_sum += EstimateTokens(t) + 1;
  for (std::size_t i = 0; i < texts.size() && est_sum > 0; ++i) {
    tokens[i] = static_cast<std::uint32_t>(total * (EstimateTokens(texts[i]) + 1) / est_sum);
  }
  Embeddings out;
  if (auto st = Append(out, std::move(rows), tokens); !st) return Fail(st.error());
  return out;
}

Result<Embeddings> OpenAiEmbedder::Embed(std::span<const std::string> texts, InputKind) {
  return EmbedInBatches(texts, options_.batch_size, info_.dimension,
                        [this](std::span<const std::string> batch) { return EmbedBatch(batch); });
}

// ---- watsonx.ai ----

Result<std::unique_ptr<WatsonxEmbedder>> WatsonxEmbedder::Create(const RemoteEmbedderOptions& options) {
  if (options.url.empty() || options.api_key.empty() || options.project_id.empty() || options.model.empty()) {
    return Fail(Error::InvalidArgument(
        "the watsonx embedder needs MODULO_EMBEDDING_URL, MODULO_EMBEDDING_API_KEY, MODULO_WATSONX_PROJECT_ID and "
        "MODULO_EMBEDDING_MODEL"));
  }
  RemoteEmbedderOptions o = options;
  o.batch_size = std::min<std::size_t>(o.batch_size, 1000);
  auto e = std::unique_ptr<WatsonxEmbedder>(new WatsonxEmbedder(o));
  std::vector<std::string> probe = {"dimension probe"};
  auto r = e->EmbedBatch(probe);
  if (!r) return Fail(std::move(r.error()).Wrap("probing watsonx.ai at " + options.url));
  e->info_ = {options.model, r->dimension, options.max_tokens, "remote"};
  return e;
}

Result<std::string> WatsonxEmbedder::Token() {
  std::lock_guard lock(token_mu_);
  if (!token_.empty() && std::chrono::steady_clock::now() < refresh_at_) return token_;
  const std::string form = "grant_type=" + UrlEncode("urn:ibm:params:oauth:grant-type:apikey") +
                           "&apikey=" + UrlEncode(options_.api_key);
  auto resp = http_.Post(options_.iam_url, {"Content-Type: application/x-www-form-urlencoded", "Accept: application/json"},
                         form);
  if (!resp) return Fail(resp.error());
  if (resp->status != 200) return Fail(net::HttpError(*resp, "IBM Cloud IAM"));
  auto j = modulo::ParseJsonOrDiscarded(resp->body);
  if (j.is_discarded() || !j.contains("access_token") || !j["access_token"].is_string()) {
    return Fail(Error::Unavailable("IBM Cloud IAM returned no access_token"));
  }
  token_ = j["access_token"].get<std::string>();
  const long long lifetime = j.value("expires_in", 3600LL);
  // Refresh when 80% of the lifetime has passed.
  refresh_at_ = std::chrono::steady_clock::now() + std::chrono::seconds(std::max(1LL, lifetime * 8 / 10));
  return token_;
}

Result<Embeddings> WatsonxEmbedder::EmbedBatch(std::span<const std::string> texts) {
  json body = {{"inputs", json::array()},
               {"model_id", options_.model},
               {"project_id", options_.project_id},
               {"parameters", {{"truncate_input_tokens", options_.max_tokens}, {"return_options", {{"input_text", false}}}}}};
  for (const auto& t : texts) body["inputs"].push_back(t);
  std::string url = options_.url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  url += "/ml/v1/text/embeddings?version=" + options_.api_version;
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto token = Token();
    if (!token) return Fail(token.error());
    auto resp = http_.Post(url,
                           {"Content-Type: application/json", "Accept: application/json", "Authorization: Bearer " + *token},
                           body.dump(-1, ' ', false, json::error_handler_t::replace));
    if (!resp) return Fail(resp.error());
    if (resp->status == 401 && attempt == 0) {  // the token expired early: get a new one once
      std::lock_guard lock(token_mu_);
      token_.clear();
      continue;
    }
    if (resp->status < 200 || resp->status >= 300) return Fail(net::HttpError(*resp, "watsonx.ai"));
    auto j = modulo::ParseJsonOrDiscarded(resp->body);
    if (j.is_discarded() || !j.contains("results") || !j["results"].is_array() || j["results"].size() != texts.size()) {
      return Fail(Error::Unavailable("watsonx.ai returned a malformed response"));
    }
    std::vector<std::vector<float>> rows;
    for (const auto& r : j["results"]) {
      auto v = FloatArray(r.value("embedding", json()));
      if (!v) return Fail(v.error());
      rows.push_back(std::move(*v));
    }
    const auto total = j.value("input_token_count", 0);
    std::vector<std::uint32_t> tokens(texts.size(), static_cast<std::uint32_t>(total / std::max<std::size_t>(1, texts.size())));
    Embeddings out;
    if (auto st = Append(out, std::move(rows), tokens); !st) return Fail(st.error());
    return out;
  }
  return Fail(Error::Unauthenticated("watsonx.ai rejected a fresh IAM token"));
}

Result<Embeddings> WatsonxEmbedder::Embed(std::span<const std::string> texts, InputKind) {
  return EmbedInBatches(texts, options_.batch_size, info_.dimension,
                        [this](std::span<const std::string> batch) { return EmbedBatch(batch); });
}

}  // namespace modulo::embed::remote
