#include "modulo/api/embeddings_routes.h"

#include <utility>  // must precede Asio's coroutine headers on Boost 1.74

#include <boost/asio/use_awaitable.hpp>
#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "modulo/api/openai_error.h"
#include "modulo/http/json_body.h"

namespace modulo::api {
namespace {

namespace asio = boost::asio;

// Single inputs up to this size go through the micro-batcher; counting their tokens on the I/O
// thread costs microseconds. Longer ones are tokenized and embedded on the CPU pool.
constexpr std::size_t kBatchedInputBytes = 1024;

std::string Base64(const unsigned char* data, std::size_t n) {
  std::string out(4 * ((n + 2) / 3), '\0');
  const int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
  out.resize(static_cast<std::size_t>(len));
  return out;
}

struct ParsedRequest {
  std::vector<std::string> inputs;
  bool base64 = false;
  embed::InputKind kind = embed::InputKind::kPassage;
};

Result<ParsedRequest> ParseRequest(const nlohmann::json& j, const embed::ModelInfo& info, std::size_t max_inputs) {
  ParsedRequest out;
  if (!j.contains("input")) return Fail(Error::InvalidArgument("'input' is required"));
  const auto& input = j["input"];
  if (input.is_string()) {
    out.inputs.push_back(input.get<std::string>());
  } else if (input.is_array()) {
    if (input.empty()) return Fail(Error::InvalidArgument("'input' must not be an empty array"));
    if (input.size() > max_inputs) {
      return Fail(Error::InvalidArgument("'input' has " + std::to_string(input.size()) + " items; at most " +
                                         std::to_string(max_inputs) + " per request"));
    }
    out.inputs.reserve(input.size());
    for (std::size_t i = 0; i < input.size(); ++i) {
      if (!input[i].is_string()) {
        return Fail(Error::InvalidArgument("'input[" + std::to_string(i) +
                                           "]' must be a string (token-id input is not supported)"));
      }
      out.inputs.push_back(input[i].get<std::string>());
    }
  } else {
    return Fail(Error::InvalidArgument("'input' must be a string or an array of strings"));
  }
  for (std::size_t i = 0; i < out.inputs.size(); ++i) {
    if (out.inputs[i].empty()) {
      return Fail(Error::InvalidArgument(out.inputs.size() == 1 ? "'input' must not be empty"
                                                                 : "'input[" + std::to_string(i) + "]' is empty"));
    }
  }
  if (j.contains("model") && !j["model"].is_null()) {
    if (!j["model"].is_string()) return Fail(Error::InvalidArgument("'model' must be a string"));
    const std::string model = j["model"].get<std::string>();
    if (model != info.name && model != "default") {
      return Fail(Error::NotFound("model '" + model + "' is not served here; available: " + info.name));
    }
  }
  if (j.contains("encoding_format") && !j["encoding_format"].is_null()) {
    const auto& f = j["encoding_format"];
    if (f == "base64") out.base64 = true;
    else if (f != "float") return Fail(Error::InvalidArgument("'encoding_format' must be \"float\" or \"base64\""));
  }
  if (j.contains("dimensions") && !j["dimensions"].is_null()) {
    if (!j["dimensions"].is_number_integer() || j["dimensions"].get<long long>() != static_cast<long long>(info.dimension)) {
      return Fail(Error::InvalidArgument("'dimensions' must equal the model's dimension, " +
                                         std::to_string(info.dimension)));
    }
  }
  if (j.contains("input_type") && !j["input_type"].is_null()) {
    const auto& t = j["input_type"];
    if (t == "query") out.kind = embed::InputKind::kQuery;
    else if (t != "passage" && t != "document") {
      return Fail(Error::InvalidArgument("'input_type' must be \"query\" or \"passage\""));
    }
  }
  return out;
}

}  // namespace

void AddEmbeddingRoutes(http::Router& router, AppContext& app, EmbeddingService& service) {
  http::Route r;
  r.method = http::beast_http::verb::post;
  r.path = "/v1/embeddings";
  r.policy = "user|search";
  r.max_body_bytes = 64ull * 1024 * 1024;
  nlohmann::json schema = nlohmann::json::parse(R"({
    "type": "object", "required": ["input"],
    "properties": {
      "input": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
      "model": {"type": "string"},
      "encoding_format": {"enum": ["float", "base64"]},
      "dimensions": {"type": "integer"},
      "input_type": {"enum": ["query", "passage"]}}})");
  r.doc.summary = "Create embeddings (OpenAI-compatible)";
  r.doc.tag = "embeddings";
  r.doc.request_body = {{"required", true}, {"content", {{"application/json", {{"schema", schema}}}}}};
  r.doc.responses = {{"200", {{"description", "Embeddings in the OpenAI list format"}}},
                     {"400", {{"description", "Invalid input (OpenAI error shape)"}}}};
  r.handler = [&app, &service](http::Request& req) -> asio::awaitable<http::Response> {
    auto body = http::ParseJsonBody(req);
    if (!body) co_return OpenAiError(body.error());
    const auto& info = service.embedder->info();
    auto parsed = ParseRequest(*body, info, service.max_inputs);
    if (!parsed) co_return OpenAiError(parsed.error());

    embed::Embeddings result;
    if (parsed->inputs.size() == 1 && parsed->inputs[0].size() <= kBatchedInputBytes) {
      // Short single inputs (queries) from concurrent requests are coalesced into batches.
      auto count = service.embedder->CountTokens(parsed->inputs[0]);
      if (!count) co_return OpenAiError(count.error());
      auto vec = co_await service.batcher->AsyncEmbed(std::move(parsed->inputs[0]), parsed->kind, asio::use_awaitable);
      if (!vec) co_return OpenAiError(vec.error());
      result.dimension = vec->size();
      result.values = std::move(*vec);
      result.token_counts = {static_cast<std::uint32_t>(std::min(*count + 2, info.max_tokens))};
    } else {
      auto batch = co_await RunOn(app.cpu_pool, [&service, &parsed] {
        return service.embedder->Embed(parsed->inputs, parsed->kind);
      });
      if (!batch) co_return OpenAiError(batch.error());
      result = std::move(*batch);
    }
    std::uint64_t prompt_tokens = 0;
    for (auto t : result.token_counts) prompt_tokens += t;

    // Hand-built JSON: the float arrays dominate and nlohmann's generic path is slow for them.
    std::string out;
    out.reserve(64 + result.size() * (parsed->base64 ? result.dimension * 6 : result.dimension * 12));
    out += R"({"object":"list","data":[)";
    char buf[32];
    for (std::size_t i = 0; i < result.size(); ++i) {
      if (i) out += ',';
      out += R"({"object":"embedding","index":)";
      out += std::to_string(i);
      out += R"(,"embedding":)";
      auto row = result.Row(i);
      if (parsed->base64) {
        out += '"';
        out += Base64(reinterpret_cast<const unsigned char*>(row.data()), row.size() * sizeof(float));
        out += '"';
      } else {
        out += '[';
        for (std::size_t k = 0; k < row.size(); ++k) {
          if (k) out += ',';
          auto [p, ec] = std::to_chars(buf, buf + sizeof buf, row[k]);
          out.append(buf, p);
        }
        out += ']';
      }
      out += '}';
    }
    out += R"(],"model":)";
    out += nlohmann::json(info.name).dump();
    out += R"(,"usage":{"prompt_tokens":)";
    out += std::to_string(prompt_tokens);
    out += R"(,"total_tokens":)";
    out += std::to_string(prompt_tokens);
    out += "}}";
    co_return http::Response::Text(std::move(out), "application/json");
  };
  router.Add(std::move(r));
}

void RegisterEmbeddingMetrics(metrics::Registry& registry, const EmbeddingService& service,
                              std::shared_ptr<embed::EmbeddingCache> cache) {
  registry.AddCollector([batcher = service.batcher, cache](std::string& out) {
    auto sample = [&out](const char* name, const char* type, const char* help, double v) {
      out += std::string("# HELP ") + name + ' ' + help + "\n# TYPE " + name + ' ' + type + '\n' + name + ' ' +
             metrics::FormatValue(v) + '\n';
    };
    if (cache) {
      const auto st = cache->stats();
      sample("modulo_embedding_cache_hits_total", "counter", "Embedding cache hits", static_cast<double>(st.hits));
      sample("modulo_embedding_cache_misses_total", "counter", "Embedding cache misses",
             static_cast<double>(st.misses));
      sample("modulo_embedding_cache_entries", "gauge", "Embeddings held in the cache", static_cast<double>(st.size));
    }
    if (batcher) {
      const auto [batches, requests] = batcher->batch_stats();
      sample("modulo_embedding_query_batches_total", "counter", "Query micro-batches embedded",
             static_cast<double>(batches));
      sample("modulo_embedding_query_batched_requests_total", "counter", "Queries embedded through micro-batches",
             static_cast<double>(requests));
    }
  });
}

}  // namespace modulo::api
