#include "modulo/api/search_routes.h"

#include <utility>  // must precede Asio's coroutine headers on Boost 1.74

#include "modulo/api/security.h"
#include "modulo/http/json_body.h"

namespace modulo::api {

namespace asio = boost::asio;
using json = nlohmann::json;

void AddSearchRoutes(http::Router& router, AppContext& /*app*/, search::SearchService& service,
                     store::MetadataStore& store, store::IdentityStore& identity) {
  http::Route r;
  r.method = http::beast_http::verb::post;
  r.path = "/api/search";
  r.policy = "user|search";  // the collection is in the body: the scoped store checks read access
  r.doc.summary = "Search a collection: hybrid (vector + BM25) retrieval with per-stage timings";
  r.doc.tag = "search";
  r.doc.request_body = {
      {"required", true},
      {"content",
       {{"application/json",
         {{"schema", json::parse(R"({"type":"object","required":["question","collection_id"],"properties":{
            "question":{"type":"string"},"collection_id":{"type":"string"},"user_id":{"type":"string"},
            "config_metadata":{"type":"object","properties":{
              "top_k":{"type":"integer","minimum":1},"candidates":{"type":"integer"},
              "retriever":{"enum":["vector","keyword","hybrid"]},"fusion":{"enum":["rrf","weighted"]},
              "rrf_k":{"type":"number"},"vector_weight":{"type":"number","minimum":0,"maximum":1},
              "expand_parents":{"type":"boolean"},"dedupe":{"type":"boolean"},"use_cache":{"type":"boolean"},
              "retrieval_only":{"type":"boolean"},
              "filters":{"type":"object","properties":{"document_id":{},"source":{},"file_type":{},
                "page_number":{}}}}}}})")}}}}}};
  r.doc.responses = {
      {"200", {{"description", "answer (null: retrieval only), documents, query_results, rewritten_query, "
                               "execution_time, status, metadata.stages"}}},
      {"400", {{"description", "A bad question, top_k or filter (the message names it)"}}},
      {"404", {{"description", "No such collection"}}}};
  r.handler = [&service, &store, &identity](http::Request& req) -> asio::awaitable<http::Response> {
    auto body = http::ParseJsonBody(req);
    if (!body) co_return http::Response::FromError(body.error());
    auto query = service.Parse(*body);
    if (!query) co_return http::Response::FromError(query.error());
    const auth::Principal* principal = Security::PrincipalOf(req);
    auto scoped = std::make_unique<store::ScopedMetadataStore>(
        store, identity, principal != nullptr ? Security::ScopeOf(*principal) : store::AccessScope{});
    query->store = scoped.get();
    auto result = co_await service.Run(std::move(*query));
    if (!result) co_return http::Response::FromError(result.error());
    co_return http::Response::Text(result->Serialize(), "application/json");
  };
  router.Add(std::move(r));
}

}  // namespace modulo::api
