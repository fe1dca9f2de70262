// POST /api/search: retrieval over one collection (RAG Modulo's SearchInput/SearchOutput shape),
// with a generated answer when a language model is configured (the server's, or the caller's
// providers as data), and Server-Sent Events for "stream": true.
//
// PrepareAnswer() is the one way a request becomes an AnswerRequest, shared by /api/search,
// /v1/chat/completions, conversations and /ws: the body parsed and validated, the caller's
// principal and scoped store attached, and the caller's answer profile resolved (pipeline_id, at
// the top level or in config_metadata, names a pipeline; otherwise the caller's defaults).
#pragma once

#include <utility>  // must precede Asio's coroutine headers on Boost 1.74

#include <boost/asio/awaitable.hpp>
#include <memory>

#include "modulo/api/app_context.h"
#include "modulo/generate/answer_service.h"
#include "modulo/generate/llm_config.h"
#include "modulo/http/async_queue.h"
#include "modulo/http/router.h"
#include "modulo/http/streams.h"
#include "modulo/search/search_service.h"
#include "modulo/store/identity_store.h"
#include "modulo/store/scoped_metadata_store.h"

namespace modulo::api {

// What the answer routes use. Everything must outlive the server.
struct AnswerRoutesDeps {
  search::SearchService& search;
  store::MetadataStore& store;
  store::IdentityStore& identity;
  generate::AnswerService* answers = nullptr;     // null: extractive answers only
  generate::ProfileResolver* profiles = nullptr;  // null: every request uses the server's profile
};

struct PreparedAnswer {
  generate::AnswerRequest request;
  // The caller's view of the store (request.query.store points into it): keep it alive as long
  // as the request.
  std::shared_ptr<store::ScopedMetadataStore> scoped;
  bool generate = false;  // the answer service will call a language model
};

// Parses `body` (a /api/search body) for the request's principal. Errors are the response.
[[nodiscard]] boost::asio::awaitable<Result<PreparedAnswer>> PrepareAnswer(AnswerRoutesDeps& deps, AppContext& app,
                                                                           const http::Request& req,
                                                                           nlohmann::json body);

void AddSearchRoutes(http::Router& router, AppContext& app, AnswerRoutesDeps& deps);

// One Server-Sent Event: (event name, data); an empty name sends data only.
using SseEvent = std::pair<std::string, std::string>;

// Writes a producer's events to the stream until the producer closes the queue, with a
// keep-alive comment every 15 s of silence. When the client goes away (or the server drains),
// `cancel` is cancelled and the queue is still drained to its end, so the producer — and whatever
// it reads — never outlives the response.
[[nodiscard]] boost::asio::awaitable<void> PipeEvents(http::SseWriter& w,
                                                      std::shared_ptr<http::AsyncQueue<SseEvent>> queue,
                                                      std::shared_ptr<generate::CancelToken> cancel);

}  // namespace modulo::api
