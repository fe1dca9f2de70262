// Remote embedders: the Embedder interface over HTTP services.
//
//   OpenAiEmbedder   POST {base_url}/embeddings, the OpenAI format (OpenAI, vLLM, Ollama,
//                    llama.cpp server, and Modulo's own /v1/embeddings)
//   WatsonxEmbedder  IBM watsonx.ai POST {url}/ml/v1/text/embeddings?version=..., with the IAM
//                    API-key → bearer token exchange cached and refreshed before it expires
//
// Both split large inputs into batches, time out, and retry 429/5xx with backoff (net::HttpClient).
// Vectors are L2-normalised so that inner product is cosine, as for the local engine. The
// dimension is learnt at Create() from one probe request, so a wrong URL, key or model stops
// start-up with the service's own message. Token counts for chunk sizing are estimated (word
// pieces approximated from words and punctuation), since the remote tokenizer is not available.
//
// Thread-safety: all members are thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "modulo/embed/embedder.h"
#include "modulo/net/http_client.h"

namespace modulo::embed::remote {

struct RemoteEmbedderOptions {
  std::string url;         // OpenAI: base URL ending in /v1; watsonx: https://<region>.ml.cloud.ibm.com
  std::string model;       // model name / model_id
  std::string api_key;     // OpenAI: bearer key (may be empty); watsonx: IBM Cloud API key
  std::string project_id;  // watsonx
  std::string iam_url = "https://iam.cloud.ibm.com/identity/token";  // watsonx
  std::string api_version = "2024-05-31";                            // watsonx
  std::size_t max_tokens = 512;   // the model's input limit, for chunk sizing and truncation
  std::size_t batch_size = 256;   // inputs per request (watsonx allows at most 1000)
  std::chrono::milliseconds timeout{30000};
  net::RetryPolicy retry;
};

// Estimated word pieces of text with their byte ranges: each punctuation mark is one piece, and
// each word is cut into pieces of about six bytes (at UTF-8 character boundaries).
[[nodiscard]] std::vector<std::pair<std::uint32_t, std::uint32_t>> EstimateTokenSpans(std::string_view text);
[[nodiscard]] inline std::size_t EstimateTokens(std::string_view text) { return EstimateTokenSpans(text).size(); }

class OpenAiEmbedder final : public Embedder {
 public:
  [[nodiscard]] static Result<std::unique_ptr<OpenAiEmbedder>> Create(const RemoteEmbedderOptions& options);
  [[nodiscard]] const ModelInfo& info() const noexcept override { return info_; }
  [[nodiscard]] Result<Embeddings> Embed(std::span<const std::string> texts, InputKind kind) override;
  [[nodiscard]] Result<std::size_t> CountTokens(std::string_view text) const override { return EstimateTokens(text); }

 private:
  explicit OpenAiEmbedder(RemoteEmbedderOptions o) : options_(std::move(o)), http_(options_.timeout, options_.retry) {}
  Result<Embeddings> EmbedBatch(std::span<const std::string> texts);
  RemoteEmbedderOptions options_;
  net::HttpClient http_;
  ModelInfo info_;
};

class WatsonxEmbedder final : public Embedder {
 public:
  [[nodiscard]] static Result<std::unique_ptr<WatsonxEmbedder>> Create(const RemoteEmbedderOptions& options);
  [[nodiscard]] const ModelInfo& info() const noexcept override { return info_; }
  [[nodiscard]] Result<Embeddings> Embed(std::span<const std::string> texts, InputKind kind) override;
  [[nodiscard]] Result<std::size_t> CountTokens(std::string_view text) const override { return EstimateTokens(text); }

 private:
  explicit WatsonxEmbedder(RemoteEmbedderOptions o) : options_(std::move(o)), http_(options_.timeout, options_.retry) {}
  Result<std::string> Token();
  Result<Embeddings> EmbedBatch(std::span<const std::string> texts);
  RemoteEmbedderOptions options_;
  net::HttpClient http_;
  ModelInfo info_;
  std::mutex token_mu_;
  std::string token_;                                   // guarded by token_mu_
  std::chrono::steady_clock::time_point refresh_at_{};  // guarded by token_mu_
};

}  // namespace modulo::embed::remote
