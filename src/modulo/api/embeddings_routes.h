// POST /v1/embeddings in the OpenAI format, so any OpenAI client can use Modulo as an embedding
// server: input is a string or an array of strings; encoding_format "float" (default) or
// "base64" (little-endian float32, what the official SDKs request); usage counts model tokens.
// A single string goes through the QueryBatcher (coalesced with concurrent requests); arrays are
// embedded as one batch on the CPU pool.
#pragma once

#include <memory>

#include "modulo/api/app_context.h"
#include "modulo/embed/embedder.h"
#include "modulo/embed/embedding_cache.h"
#include "modulo/embed/query_batcher.h"
#include "modulo/http/router.h"

namespace modulo::api {

struct EmbeddingService {
  std::shared_ptr<embed::Embedder> embedder;  // batch embedding (cache in front)
  std::shared_ptr<embed::QueryBatcher> batcher;
  std::size_t max_inputs = 10000;
};

void AddEmbeddingRoutes(http::Router& router, AppContext& app, EmbeddingService& service);

// Cache and micro-batch metrics, read at scrape time.
void RegisterEmbeddingMetrics(metrics::Registry& registry, const EmbeddingService& service,
                              std::shared_ptr<embed::EmbeddingCache> cache);

}  // namespace modulo::api
