#include "modulo/api/search_routes.h"

#include <utility>  // must precede Asio's coroutine headers on Boost 1.74

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "modulo/api/security.h"
#include "modulo/core/json.h"
#include "modulo/http/async_queue.h"
#include "modulo/http/json_body.h"
#include "modulo/http/streams.h"

namespace modulo::api {

namespace asio = boost::asio;
using json = nlohmann::json;

namespace {

using Event = SseEvent;

// The closing events of a stream, from a finished response: the answer's sources (what the
// answer cites and what it was drawn from), the token usage, then done (the rest of the response:
// answer, answer_type, stages, execution_time …).
void PushClosing(http::AsyncQueue<Event>& queue, json body) {
  json meta = body.contains("metadata") && body["metadata"].is_object() ? body["metadata"] : json::object();
  json sources = {{"query_results", body.value("query_results", json::array())},
                  {"documents", body.value("documents", json::array())},
                  {"citations", meta.value("citations", json::array())}};
  if (meta.contains("invalid_citations")) sources["invalid_citations"] = meta["invalid_citations"];
  queue.Push({"sources", sources.dump()});
  json usage = meta.value("usage", json{{"prompt_tokens", 0}, {"completion_tokens", 0}});
  if (meta.contains("llm")) usage["model"] = meta["llm"].value("model", "");
  queue.Push({"usage", usage.dump()});
  body.erase("query_results");
  body.erase("documents");
  if (body.contains("metadata") && body["metadata"].is_object()) body["metadata"].erase("citations");
  queue.Push({"done", body.dump(-1, ' ', false, json::error_handler_t::replace)});
}

json ErrorData(const Error& e) {
  json j = {{"detail", e.message()}, {"code", ErrorCodeName(e.code())}};
  if (!e.details().empty()) {
    auto d = modulo::ParseJsonOrDiscarded(e.details());
    if (d.is_object()) {
      for (auto& [k, v] : d.items()) {
        if (!j.contains(k)) j[k] = std::move(v);
      }
    }
  }
  return j;
}

// A stream without a language model: the search's stages, its extractive answer as one token,
// then the closing events.
asio::awaitable<void> ProduceSearch(search::SearchService& service, search::SearchQuery query,
                                    std::shared_ptr<http::AsyncQueue<Event>> queue) {
  auto result = co_await service.Search(std::move(query));
  if (!result) {
    queue->Push({"error", ErrorData(result.error()).dump()});
  } else {
    for (const auto& s : (*result)["metadata"].value("stages", json::array())) {
      if (s.value("stage", "") != "total") queue->Push({"stage", s.dump()});
    }
    if ((*result)["answer"].is_string()) queue->Push({"token", json{{"text", (*result)["answer"]}}.dump()});
    PushClosing(*queue, std::move(*result));
  }
  queue->Close();
}

// A stream with a language model: stages as they finish, tokens as the provider sends them.
asio::awaitable<void> ProduceAnswer(generate::AnswerService& answers, generate::AnswerRequest request,
                                    std::shared_ptr<http::AsyncQueue<Event>> queue,
                                    std::shared_ptr<generate::CancelToken> cancel) {
  auto observer = std::make_shared<generate::AnswerObserver>();
  observer->on_stage = [queue](std::string_view stage, double ms) {
    queue->Push({"stage", json{{"stage", stage}, {"duration_ms", ms}}.dump()});
  };
  observer->on_token = [queue, cancel](std::string_view text) {
    if (cancel->cancelled()) return false;
    queue->Push({"token", json{{"text", text}}.dump(-1, ' ', false, json::error_handler_t::replace)});
    return true;
  };
  auto result = co_await answers.Answer(std::move(request), observer, cancel);
  if (!result) {
    queue->Push({"error", ErrorData(result.error()).dump()});
  } else {
    PushClosing(*queue, std::move(*result));
  }
  queue->Close();
}

}  // namespace

asio::awaitable<void> PipeEvents(http::SseWriter& w, std::shared_ptr<http::AsyncQueue<SseEvent>> queue,
                                 std::shared_ptr<generate::CancelToken> cancel) {
  w.OnClose([cancel] { cancel->Cancel(); });  // the server drains: stop the model
  bool open = true;
  while (true) {
    auto ev = co_await queue->Pop(std::chrono::seconds(15));
    if (!ev) {
      if (queue->closed()) break;
      if (open && !co_await w.Comment("keep-alive")) {
        open = false;
        cancel->Cancel();
      }
      continue;
    }
    if (open && !co_await w.Send(ev->first, ev->second)) {
      open = false;
      cancel->Cancel();  // the client went away: the provider call ends within ~50 ms
    }
  }
}

asio::awaitable<Result<PreparedAnswer>> PrepareAnswer(AnswerRoutesDeps& deps, AppContext& app, const http::Request& req,
                                                      json body) {
  std::string pipeline_id;
  if (body.is_object()) {
    for (const json* where : {&body, body.contains("config_metadata") ? &body["config_metadata"] : nullptr}) {
      if (where == nullptr || !where->is_object() || !where->contains("pipeline_id")) continue;
      const json& v = (*where)["pipeline_id"];
      if (!v.is_string() && !v.is_null()) co_return Fail(Error::InvalidArgument("'pipeline_id' must be a string"));
      if (v.is_string()) pipeline_id = v.get<std::string>();
    }
  }
  auto parsed = generate::ParseAnswerRequest(std::move(body), deps.search, /*has_provider=*/true);
  if (!parsed) co_return Fail(parsed.error());
  PreparedAnswer out;
  out.request = std::move(*parsed);
  const auth::Principal* principal = Security::PrincipalOf(req);
  if (principal != nullptr) {
    out.request.user_id = principal->user_id;
    out.request.unlimited = principal->is_admin();
  }
  out.scoped = std::make_shared<store::ScopedMetadataStore>(
      deps.store, deps.identity, principal != nullptr ? Security::ScopeOf(*principal) : store::AccessScope{});
  out.request.query.store = out.scoped.get();
  const bool may_generate =
      out.request.mode != generate::AnswerMode::kExtractive && !out.request.query.retrieval_only;
  if (may_generate && deps.profiles != nullptr && !out.request.user_id.empty()) {
    auto profile = co_await RunOn(app.blocking_pool, [&] {
      return deps.profiles->Resolve(out.request.user_id, out.request.query.collection_id, pipeline_id);
    });
    if (!profile) co_return Fail(profile.error());
    out.request.profile = std::move(*profile);
  } else if (!pipeline_id.empty() && deps.profiles == nullptr) {
    co_return Fail(Error::InvalidArgument("'pipeline_id': this server keeps no pipelines"));
  }
  const bool has_model = deps.answers != nullptr && deps.answers->ProfileOf(out.request).provider != nullptr;
  if (out.request.mode == generate::AnswerMode::kGenerated && !has_model) {
    co_return Fail(Error::Unimplemented(
        "answer_mode 'generated' needs a language model: configure an LLM provider (POST "
        "/api/users/me/llm-providers, then a model) or start the server with MODULO_LLM_PROVIDER"));
  }
  out.generate = deps.answers != nullptr && deps.answers->WillGenerate(out.request);
  co_return out;
}

void AddSearchRoutes(http::Router& router, AppContext& app, AnswerRoutesDeps& deps) {
  http::Route r;
  r.method = http::beast_http::verb::post;
  r.path = "/api/search";
  r.policy = "user|search";  // the collection is in the body: the scoped store checks read access
  r.doc.summary =
      "Search a collection: hybrid (vector + BM25) retrieval with per-stage timings and an answer (generated with "
      "[n] citations when a language model is configured, else extractive); \"stream\": true answers as "
      "Server-Sent Events";
  r.doc.tag = "search";
  r.doc.request_body = {
      {"required", true},
      {"content",
       {{"application/json",
         {{"schema", json::parse(R"({"type":"object","required":["question","collection_id"],"properties":{
            "question":{"type":"string"},"collection_id":{"type":"string"},"user_id":{"type":"string"},
            "stream":{"type":"boolean"},"answer_mode":{"enum":["auto","generated","extractive"]},"pipeline_id":{"type":"string"},
            "config_metadata":{"type":"object","properties":{
              "top_k":{"type":"integer","minimum":1},"candidates":{"type":"integer"},
              "retriever":{"enum":["vector","keyword","hybrid"]},"fusion":{"enum":["rrf","weighted"]},
              "rrf_k":{"type":"number"},"vector_weight":{"type":"number","minimum":0,"maximum":1},
              "expand_parents":{"type":"boolean"},"dedupe":{"type":"boolean"},"use_cache":{"type":"boolean"},
              "retrieval_only":{"type":"boolean"},"answer_mode":{"enum":["auto","generated","extractive"]},
              "stream":{"type":"boolean"},
              "filters":{"type":"object","properties":{"document_id":{},"source":{},"file_type":{},
                "page_number":{}}}}}}})")}}}}}};
  r.doc.responses = {
      {"200", {{"description", "answer (null: retrieval only), documents, query_results, rewritten_query, "
                               "execution_time, status, metadata (answer_type, citations, stages, usage, "
                               "generation_error when the model failed and the answer is extractive). With "
                               "\"stream\": true, text/event-stream: stage*, token*, sources, usage, done — or "
                               "error {detail, code} — then the stream ends"}}},
      {"400", {{"description", "A bad question, top_k, filter, stream or answer_mode (the message names it)"}}},
      {"404", {{"description", "No such collection"}}},
      {"429", {{"description", "The daily LLM token quota is used up, or the model is rate limited "
                               "(answer_mode generated)"}}},
      {"501", {{"description", "answer_mode generated on a server without a language model"}}},
      {"503", {{"description", "The language model failed (answer_mode generated)"}}},
      {"504", {{"description", "The language model timed out (answer_mode generated)"}}}};
  r.handler = [&deps, &app](http::Request& req) -> asio::awaitable<http::Response> {
    auto body = http::ParseJsonBody(req);
    if (!body) co_return http::Response::FromError(body.error());
    auto prepared = co_await PrepareAnswer(deps, app, req, std::move(*body));
    if (!prepared) co_return http::Response::FromError(prepared.error());
    generate::AnswerRequest request = std::move(prepared->request);
    auto scoped = std::move(prepared->scoped);
    const bool generate = prepared->generate;
    search::SearchService& service = deps.search;
    generate::AnswerService* answers = deps.answers;

    if (!request.stream) {
      if (!generate) {
        auto result = co_await service.Run(std::move(request.query));
        if (!result) co_return http::Response::FromError(result.error());
        co_return http::Response::Text(result->Serialize(), "application/json");
      }
      auto result = co_await answers->Answer(std::move(request));
      if (!result) co_return http::Response::FromError(result.error());
      co_return http::Response::Text(result->dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
    }

    // Server-Sent Events. The answer runs in its own coroutine and hands events to the writer
    // through a queue; the writer drains the queue to its end even after the client went away, so
    // the answer (and the scoped store it reads) never outlives the response.
    co_return http::Response::EventStream(
        [&service, answers, generate, request = std::move(request), scoped](http::SseWriter& w) mutable
        -> asio::awaitable<void> {
          auto queue = std::make_shared<http::AsyncQueue<Event>>(w.executor(), 1 << 16);
          auto cancel = std::make_shared<generate::CancelToken>();
          if (generate) {
            asio::co_spawn(w.executor(), ProduceAnswer(*answers, std::move(request), queue, cancel), asio::detached);
          } else {
            asio::co_spawn(w.executor(), ProduceSearch(service, std::move(request.query), queue), asio::detached);
          }
          co_await PipeEvents(w, queue, cancel);
          (void)scoped;  // kept alive until the producer has finished
        });
  };
  router.Add(std::move(r));
}

}  // namespace modulo::api
