#include "modulo/api/chat_completions_routes.h"

#include <atomic>
#include <set>

#include <utility>  // must precede Asio's coroutine headers on Boost 1.74

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "modulo/api/openai_error.h"
#include "modulo/api/route_helpers.h"
#include "modulo/api/security.h"
#include "modulo/core/clock.h"
#include "modulo/core/request_id.h"
#include "modulo/http/async_queue.h"
#include "modulo/http/json_body.h"
#include "modulo/http/streams.h"

namespace modulo::api {

namespace asio = boost::asio;
using http::Request;
using http::Response;
using json = nlohmann::json;
using verb = http::beast_http::verb;

namespace {

// Request arguments of OpenAI's Chat Completions that are accepted and have no effect here.
constexpr std::string_view kIgnored[] = {"frequency_penalty",
                                         "presence_penalty",
                                         "logit_bias",
                                         "seed",
                                         "user",
                                         "n",
                                         "parallel_tool_calls",
                                         "store",
                                         "metadata",
                                         "service_tier",
                                         "reasoning_effort",
                                         "logprobs",
                                         "top_logprobs",
                                         "response_format",
                                         "modalities",
                                         "prediction"};

// The history carried into the prompt: at most this share of the model's window.
constexpr int kHistoryShare = 4;

struct ChatRequest {
  std::string model;
  std::string question;                        // the last user message
  std::vector<generate::ChatMessage> history;  // the turns before it (user/assistant)
  std::string instructions;                    // system and developer messages, joined
  bool stream = false;
  bool include_usage = false;
  std::optional<double> temperature, top_p;
  std::optional<int> max_tokens;
  std::vector<std::string> stop;
  json config_metadata;  // the extension, as in the search API
};

Result<std::string> TextOf(const json& content, std::size_t i) {
  const std::string where = "messages[" + std::to_string(i) + "].content";
  if (content.is_string()) return content.get<std::string>();
  if (content.is_null()) return std::string();
  if (!content.is_array()) return Fail(Error::InvalidArgument("'" + where + "' must be a string or an array of parts"));
  std::string text;
  for (const auto& part : content) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string()) {
      return Fail(Error::InvalidArgument("'" + where + "': only text parts are supported"));
    }
    if (!text.empty()) text += "\n";
    text += part["text"].get<std::string>();
  }
  return text;
}

Result<ChatRequest> ParseChat(const json& body) {
  if (!body.is_object()) return Fail(Error::InvalidArgument("the request body must be a JSON object"));
  ChatRequest c;
  for (const auto& [key, v] : body.items()) {
    if (key == "model") {
      if (!v.is_string() || v.get_ref<const std::string&>().empty()) {
        return Fail(Error::InvalidArgument("'model' must be a non-empty string (a collection id or name)"));
      }
      c.model = v.get<std::string>();
    } else if (key == "messages") {
      // below
    } else if (key == "stream") {
      if (!v.is_boolean() && !v.is_null()) return Fail(Error::InvalidArgument("'stream' must be a boolean"));
      c.stream = v.is_boolean() && v.get<bool>();
    } else if (key == "stream_options") {
      if (!v.is_null() && !v.is_object()) return Fail(Error::InvalidArgument("'stream_options' must be an object"));
      if (v.is_object()) c.include_usage = v.value("include_usage", false);
    } else if (key == "temperature" || key == "top_p") {
      if (v.is_null()) continue;
      if (!v.is_number()) return Fail(Error::InvalidArgument("'" + key + "' must be a number"));
      const double d = v.get<double>();
      if (key == "temperature" && (d < 0 || d > 2))
        return Fail(Error::InvalidArgument("'temperature' must be between 0 and 2"));
      if (key == "top_p" && (d < 0 || d > 1)) return Fail(Error::InvalidArgument("'top_p' must be between 0 and 1"));
      (key == "temperature" ? c.temperature : c.top_p) = d;
    } else if (key == "max_tokens" || key == "max_completion_tokens") {
      if (v.is_null()) continue;
      if (!v.is_number_integer() || v.get<std::int64_t>() < 1 || v.get<std::int64_t>() > 1000000) {
        return Fail(Error::InvalidArgument("'" + key + "' must be a positive integer"));
      }
      c.max_tokens = static_cast<int>(v.get<std::int64_t>());
    } else if (key == "stop") {
      if (v.is_null()) continue;
      if (v.is_string()) {
        c.stop.push_back(v.get<std::string>());
      } else if (v.is_array() && v.size() <= 4) {
        for (const auto& s : v) {
          if (!s.is_string()) return Fail(Error::InvalidArgument("'stop' must be a string or up to 4 strings"));
          c.stop.push_back(s.get<std::string>());
        }
      } else {
        return Fail(Error::InvalidArgument("'stop' must be a string or up to 4 strings"));
      }
    } else if (key == "config_metadata") {
      if (!v.is_null() && !v.is_object()) return Fail(Error::InvalidArgument("'config_metadata' must be an object"));
      c.config_metadata = v;
    } else if (key == "tools" || key == "tool_choice" || key == "functions" || key == "function_call" ||
               key == "audio") {
      if (!v.is_null() && !(v.is_array() && v.empty())) {
        return Fail(Error::InvalidArgument("'" + key + "' is not supported by this endpoint"));
      }
    } else if (std::find(std::begin(kIgnored), std::end(kIgnored), key) == std::end(kIgnored)) {
      return Fail(Error::InvalidArgument("Unrecognized request argument supplied: " + key));
    }
  }
  if (c.model.empty()) return Fail(Error::InvalidArgument("'model' is required (a collection id or name)"));
  if (body.contains("n") && body["n"].is_number_integer() && body["n"].get<std::int64_t>() != 1) {
    return Fail(Error::InvalidArgument("'n' must be 1"));
  }
  if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty()) {
    return Fail(Error::InvalidArgument("'messages' must be a non-empty array"));
  }
  const json& messages = body["messages"];
  if (messages.size() > 1000) return Fail(Error::InvalidArgument("'messages' has more than 1000 entries"));
  std::optional<std::size_t> last_user;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      return Fail(Error::InvalidArgument("'messages[" + std::to_string(i) + "].role' is required"));
    }
    const std::string role = m["role"].get<std::string>();
    if (role != "system" && role != "developer" && role != "user" && role != "assistant" && role != "tool") {
      return Fail(Error::InvalidArgument("'messages[" + std::to_string(i) +
                                         "].role' must be system, developer, "
                                         "user, assistant or tool"));
    }
    if (role == "user") last_user = i;
  }
  if (!last_user) return Fail(Error::InvalidArgument("'messages' must contain a user message"));
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    const std::string role = m["role"].get<std::string>();
    auto text = TextOf(m.value("content", json(nullptr)), i);
    if (!text) return Fail(text.error());
    if (role == "system" || role == "developer") {
      if (!c.instructions.empty()) c.instructions += "\n";
      c.instructions += *text;
    } else if (i == *last_user) {
      c.question = std::move(*text);
    } else if ((role == "user" || role == "assistant") && !text->empty() && i < *last_user) {
      c.history.push_back({role, std::move(*text)});
    }
  }
  if (c.question.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Fail(Error::InvalidArgument("the last user message must not be empty"));
  }
  return c;
}

// The collection a model name means: an id the caller can read, else the name of one of the
// caller's collections (their own first; two of the same name elsewhere is ambiguous).
Result<store::Collection> CollectionFor(store::ScopedMetadataStore& scoped, const std::string& model,
                                        const std::string& user_id) {
  auto by_id = scoped.GetCollectionState(model);
  if (by_id) return by_id;
  if (by_id.error().code() != ErrorCode::kNotFound) return Fail(by_id.error());
  auto all = scoped.ListCollections("");
  if (!all) return Fail(all.error());
  std::vector<store::Collection> named;
  for (auto& c : *all) {
    if (c.name == model) named.push_back(std::move(c));
  }
  if (named.size() > 1) {
    auto own = std::find_if(named.begin(), named.end(), [&](const auto& c) { return c.owner_id == user_id; });
    if (own != named.end()) return std::move(*own);
    return Fail(Error::InvalidArgument("more than one collection is named '" + model + "': use its id"));
  }
  if (named.empty()) {
    return Fail(Error::NotFound("The model `" + model + "` does not exist or you do not have access to it."));
  }
  return std::move(named.front());
}

json ModelJson(const store::Collection& c) {
  return {{"id", c.id},
          {"object", "model"},
          {"created", c.created_at_ms / 1000},
          {"owned_by", c.owner_id},
          {"name", c.name}};
}

// The sources of an answer: its query_results entries, each with its [n] and whether it is cited.
json Sources(const json& result) {
  json sources = json::array();
  const json& results = result.contains("query_results") ? result["query_results"] : json::array();
  std::set<std::int64_t> cited;
  if (result.contains("metadata") && result["metadata"].is_object()) {
    for (const auto& c : result["metadata"].value("citations", json::array())) cited.insert(c.value("n", 0));
  }
  for (std::size_t i = 0; i < results.size(); ++i) {
    json s = results[i];
    s["n"] = i + 1;
    s["cited"] = cited.count(static_cast<std::int64_t>(i + 1)) > 0;
    sources.push_back(std::move(s));
  }
  return sources;
}

json Usage(const json& result) {
  json u = result.contains("metadata") && result["metadata"].is_object()
               ? result["metadata"].value("usage", json::object())
               : json::object();
  const int p = u.value("prompt_tokens", 0), c = u.value("completion_tokens", 0);
  return {{"prompt_tokens", p}, {"completion_tokens", c}, {"total_tokens", p + c}};
}

std::string FinishReason(const json& result) {
  if (result.contains("metadata") && result["metadata"].contains("llm")) {
    const std::string f = result["metadata"]["llm"].value("finish_reason", "stop");
    if (f == "length" || f == "content_filter") return f;
  }
  return "stop";
}

std::string Fingerprint(const json& result) {
  const bool generated = result.contains("metadata") && result["metadata"].value("answer_type", "") == "generated";
  return generated ? "modulo-rag" : "modulo-extractive";
}

struct Job {
  generate::AnswerRequest request;
  std::shared_ptr<store::ScopedMetadataStore> scoped;
  bool generate = false;
  std::string model;  // as the client named it
  std::string id;     // chatcmpl-…
  std::int64_t created = 0;
};

// Prepares the RAG request behind a chat request: the collection, the profile with the client's
// overrides, the history within its share of the window.
asio::awaitable<Result<Job>> Prepare(AnswerRoutesDeps& deps, AppContext& app, const Request& req,
                                     const ChatRequest& c) {
  json body = {{"question", c.question}, {"collection_id", c.model}};
  json config = c.config_metadata.is_object() ? c.config_metadata : json::object();
  if (!config.empty()) body["config_metadata"] = config;
  const auth::Principal* principal = Security::PrincipalOf(req);
  const std::string user_id = principal != nullptr ? principal->user_id : std::string();
  // The model names a collection: resolve a name to its id first.
  auto scoped = std::make_shared<store::ScopedMetadataStore>(
      deps.store, deps.identity, principal != nullptr ? Security::ScopeOf(*principal) : store::AccessScope{});
  auto collection = co_await RunOn(app.blocking_pool, [&] { return CollectionFor(*scoped, c.model, user_id); });
  if (!collection) co_return Fail(collection.error());
  body["collection_id"] = collection->id;
  auto prepared = co_await PrepareAnswer(deps, app, req, std::move(body));
  if (!prepared) co_return Fail(prepared.error());
  Job job;
  job.request = std::move(prepared->request);
  job.scoped = std::move(prepared->scoped);
  job.generate = prepared->generate;
  job.model = c.model;
  job.id = "chatcmpl-" + NewRequestId();
  job.created = NowMs() / 1000;
  job.request.stream = c.stream;
  if (job.generate) {
    auto profile = std::make_shared<generate::AnswerProfile>(deps.answers->ProfileOf(job.request));
    if (c.temperature) profile->params.temperature = *c.temperature;
    if (c.top_p) profile->params.top_p = *c.top_p;
    if (c.max_tokens) {
      if (*c.max_tokens > profile->context_tokens - 256) {
        co_return Fail(Error::InvalidArgument("'max_tokens' (" + std::to_string(*c.max_tokens) +
                                              ") leaves no room for passages in the model's context window of " +
                                              std::to_string(profile->context_tokens) + " tokens"));
      }
      profile->params.max_new_tokens = *c.max_tokens;
    }
    for (const auto& s : c.stop) profile->params.stop.push_back(s);
    if (!c.instructions.empty()) profile->system_prompt += "\n\nInstructions from the client:\n" + c.instructions;
    // The most recent turns, whole, within their share of the window.
    const std::size_t budget = static_cast<std::size_t>(profile->context_tokens / kHistoryShare);
    std::size_t used = 0, keep = 0;
    for (auto it = c.history.rbegin(); it != c.history.rend(); ++it) {
      const std::size_t t = generate::EstimateTokens(it->content) + 4;
      if (used + t > budget) break;
      used += t;
      ++keep;
    }
    job.request.history.assign(c.history.end() - static_cast<std::ptrdiff_t>(keep), c.history.end());
    job.request.profile = std::move(profile);
  }
  co_return job;
}

// The answer, whole (search response shape).
asio::awaitable<Result<json>> Run(AnswerRoutesDeps& deps, Job& job,
                                  std::shared_ptr<const generate::AnswerObserver> observer,
                                  std::shared_ptr<const generate::CancelToken> cancel) {
  if (job.generate)
    co_return co_await deps.answers->Answer(std::move(job.request), std::move(observer), std::move(cancel));
  co_return co_await deps.search.Search(std::move(job.request.query));
}

json Chunk(const Job& job, json delta, json finish_reason, const std::string& fingerprint = "") {
  json chunk = {{"id", job.id},
                {"object", "chat.completion.chunk"},
                {"created", job.created},
                {"model", job.model},
                {"system_fingerprint", fingerprint.empty() ? json(nullptr) : json(fingerprint)},
                {"choices", json::array({{{"index", 0},
                                          {"delta", std::move(delta)},
                                          {"logprobs", nullptr},
                                          {"finish_reason", std::move(finish_reason)}}})}};
  return chunk;
}

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Streaming: the producer writes the frames — a role chunk, content chunks as the tokens come
// (an extractive answer as one), the closing chunk with finish_reason and the sources, a usage
// chunk when asked, then [DONE]; a failure is an error frame instead, never a silent end.
asio::awaitable<void> ProduceChat(AnswerRoutesDeps& deps, std::shared_ptr<Job> job, bool include_usage,
                                  std::shared_ptr<http::AsyncQueue<SseEvent>> queue,
                                  std::shared_ptr<generate::CancelToken> cancel) {
  queue->Push({"", Dump(Chunk(*job, json{{"role", "assistant"}, {"content", ""}}, nullptr))});
  auto streamed = std::make_shared<std::atomic<bool>>(false);
  auto observer = std::make_shared<generate::AnswerObserver>();
  observer->on_token = [queue, cancel, job, streamed](std::string_view text) {
    if (cancel->cancelled()) return false;
    streamed->store(true);
    queue->Push({"", Dump(Chunk(*job, json{{"content", text}}, nullptr))});
    return true;
  };
  auto result = co_await Run(deps, *job, observer, cancel);
  if (!result) {
    const Error& e = result.error();
    queue->Push({"", Dump(json{{"error",
                                {{"message", e.message()},
                                 {"type", "server_error"},
                                 {"param", nullptr},
                                 {"code", ErrorCodeName(e.code())}}}})});
  } else {
    const json& r = *result;
    if (!streamed->load() && r.contains("answer") && r["answer"].is_string()) {
      queue->Push({"", Dump(Chunk(*job, json{{"content", r["answer"]}}, nullptr))});
    }
    json last = Chunk(*job, json::object(), FinishReason(r), Fingerprint(r));
    last["sources"] = Sources(r);
    queue->Push({"", Dump(last)});
    if (include_usage) {
      json usage = Chunk(*job, json::object(), nullptr);
      usage["choices"] = json::array();
      usage["usage"] = Usage(r);
      queue->Push({"", Dump(usage)});
    }
    queue->Push({"", "[DONE]"});
  }
  queue->Close();
}

asio::awaitable<void> StreamChat(AnswerRoutesDeps& deps, std::shared_ptr<Job> job, bool include_usage,
                                 http::SseWriter& w) {
  auto queue = std::make_shared<http::AsyncQueue<SseEvent>>(w.executor(), 1 << 16);
  auto cancel = std::make_shared<generate::CancelToken>();
  asio::co_spawn(w.executor(), ProduceChat(deps, job, include_usage, queue, cancel), asio::detached);
  co_await PipeEvents(w, queue, cancel);
}

}  // namespace

void AddChatCompletionsRoutes(http::Router& router, AppContext& app, AnswerRoutesDeps& deps) {
  {
    http::Route r;
    r.method = verb::post;
    r.path = "/v1/chat/completions";
    r.policy = "user|search";
    r.doc.summary =
        "OpenAI-compatible RAG: \"model\" names a collection; the last user message is answered from it, "
        "with the passages in \"sources\"";
    r.doc.tag = "openai";
    r.doc.request_body = {{"required", true},
                          {"content",
                           {{"application/json",
                             {{"schema", json::parse(R"({"type":"object","required":["model","messages"],"properties":{
                               "model":{"type":"string"},"messages":{"type":"array"},"stream":{"type":"boolean"},
                               "stream_options":{"type":"object"},"temperature":{"type":"number"},
                               "top_p":{"type":"number"},"max_tokens":{"type":"integer"},
                               "max_completion_tokens":{"type":"integer"},"stop":{},
                               "config_metadata":{"type":"object"}}})")}}}}}};
    r.doc.responses = {{"200",
                        {{"description",
                          "chat.completion, or a stream of chat.completion.chunk ending in "
                          "[DONE]; the last chunk carries \"sources\""}}},
                       {"400", {{"description", "A bad argument (OpenAI error shape)"}}},
                       {"404", {{"description", "No such collection (model)"}}},
                       {"429", {{"description", "Rate limited or LLM token quota used up"}}}};
    r.handler = [&deps, &app](Request& req) -> asio::awaitable<Response> {
      auto body = http::ParseJsonBody(req);
      if (!body) co_return OpenAiError(body.error());
      auto chat = ParseChat(*body);
      if (!chat) co_return OpenAiError(chat.error());
      auto job = co_await Prepare(deps, app, req, *chat);
      if (!job) co_return OpenAiError(job.error(), job.error().code() == ErrorCode::kNotFound ? "model" : nullptr);

      if (!chat->stream) {
        auto result = co_await Run(deps, *job, nullptr, nullptr);
        if (!result) co_return OpenAiError(result.error());
        const json& answer = (*result)["answer"];
        json out = {
            {"id", job->id},
            {"object", "chat.completion"},
            {"created", job->created},
            {"model", job->model},
            {"system_fingerprint", Fingerprint(*result)},
            {"choices",
             json::array(
                 {{{"index", 0},
                   {"message",
                    {{"role", "assistant"}, {"content", answer.is_string() ? answer : json("")}, {"refusal", nullptr}}},
                   {"logprobs", nullptr},
                   {"finish_reason", FinishReason(*result)}}})},
            {"usage", Usage(*result)},
            {"sources", Sources(*result)}};
        if (result->contains("metadata") && (*result)["metadata"].contains("generation_error")) {
          out["generation_error"] = (*result)["metadata"]["generation_error"];
        }
        co_return Response::Json(out);
      }

      const bool include_usage = chat->include_usage;
      auto shared = std::make_shared<Job>(std::move(*job));
      co_return Response::EventStream(
          [&deps, shared, include_usage](http::SseWriter& w) { return StreamChat(deps, shared, include_usage, w); });
    };
    router.Add(std::move(r));
  }

  auto list = [&deps, &app](Request& req) -> asio::awaitable<Response> {
    auto scoped = ScopedStore(deps.store, deps.identity, req);
    auto all = co_await RunOn(app.blocking_pool, [&] { return scoped.ListCollections(""); });
    if (!all) co_return OpenAiError(all.error());
    json data = json::array();
    for (const auto& c : *all) data.push_back(ModelJson(c));
    co_return Response::Json({{"object", "list"}, {"data", std::move(data)}});
  };
  AddRoute(router,
           {verb::get, "/v1/models", "user",
            "The caller's collections, as OpenAI models (use an id as \"model\" in /v1/chat/completions)", "openai"},
           list);
  AddRoute(router,
           {verb::get,
            "/v1/models/{model}",
            "user",
            "One collection as an OpenAI model (by id or name)",
            "openai",
            nullptr,
            {{"404", "No such collection"}}},
           [&deps, &app](Request& req) -> asio::awaitable<Response> {
             const auth::Principal* principal = Security::PrincipalOf(req);
             auto scoped = ScopedStore(deps.store, deps.identity, req);
             const std::string model = req.PathParam("model");
             auto c = co_await RunOn(app.blocking_pool, [&] {
               return CollectionFor(scoped, model, principal != nullptr ? principal->user_id : std::string());
             });
             if (!c) co_return OpenAiError(c.error(), "model");
             co_return Response::Json(ModelJson(*c));
           });
}

}  // namespace modulo::api
