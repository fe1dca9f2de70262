#include "modulo/api/conversation_routes.h"

#include <utility>  // must precede Asio's coroutine headers on Boost 1.74

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <sstream>

#include "modulo/api/route_helpers.h"
#include "modulo/api/security.h"
#include "modulo/core/clock.h"
#include "modulo/core/json.h"
#include "modulo/generate/query_rewriter.h"
#include "modulo/generate/question_suggester.h"
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

constexpr std::size_t kMaxMessageBytes = 100000;

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

const auth::Principal* Caller(const Request& req) {
  return Security::PrincipalOf(req);
}

// The session, if the caller may see it (its owner, or a system admin); otherwise NotFound.
Result<store::ConversationSession> SessionFor(store::ConversationStore& store, const Request& req,
                                              const std::string& id) {
  auto s = store.GetSession(id);
  if (!s) return s;
  const auth::Principal* p = Caller(req);
  if (p != nullptr && s->user_id != p->user_id && !p->is_admin()) {
    return Fail(Error::NotFound("conversation " + id + " not found"));
  }
  return s;
}

// Applies the changeable fields of a session input to `s`.
Status ApplySessionInput(const json& body, store::ConversationSession& s) {
  for (const auto& [k, v] : body.items()) {
    if (k == "session_name") {
      if (!v.is_string()) return Fail(Error::InvalidArgument("'session_name' must be a string"));
      s.name = v.get<std::string>();
      const auto first = s.name.find_first_not_of(" \t\r\n");
      s.name = first == std::string::npos ? std::string()
                                          : s.name.substr(first, s.name.find_last_not_of(" \t\r\n") - first + 1);
    } else if (k == "context_window_size" || k == "max_messages") {
      if (!v.is_number_integer()) return Fail(Error::InvalidArgument("'" + k + "' must be an integer"));
      const auto n = v.get<std::int64_t>();
      const bool window = k == "context_window_size";
      const std::int64_t lo = window ? 1000 : 10, hi = window ? 32768 : 200;
      if (n < lo || n > hi) {
        return Fail(
            Error::InvalidArgument("'" + k + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi)));
      }
      (window ? s.context_window_size : s.max_messages) = static_cast<int>(n);
    } else if (k == "is_pinned" || k == "is_archived") {
      if (!v.is_boolean()) return Fail(Error::InvalidArgument("'" + k + "' must be a boolean"));
      if (k == "is_pinned") {
        s.is_pinned = v.get<bool>();
      } else {
        s.status = v.get<bool>() ? "archived" : "active";
      }
    } else if (k == "metadata") {
      if (!v.is_object()) return Fail(Error::InvalidArgument("'metadata' must be an object"));
      s.metadata = v.dump();
    }
  }
  if (s.name.empty()) return Fail(Error::InvalidArgument("'session_name' must not be empty"));
  return store::ValidateSession(s);
}

json ExportJson(const store::ConversationSession& s, const std::vector<store::ConversationMessage>& messages,
                const std::vector<store::ConversationSummary>& summaries) {
  json out = {{"session_data", generate::SessionJson(s)},
              {"messages", json::array()},
              {"summaries", json::array()},
              {"export_format", "json"},
              {"export_timestamp", FormatTimestamp(NowMs())},
              {"total_messages", messages.size()}};
  std::int64_t tokens = 0;
  for (const auto& m : messages) {
    out["messages"].push_back(generate::MessageJson(m));
    tokens += m.prompt_tokens + m.completion_tokens;
  }
  for (const auto& sum : summaries) out["summaries"].push_back(generate::SummaryJson(sum));
  out["total_tokens"] = tokens;
  return out;
}

std::string CsvField(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string ExportText(const std::string& format, const store::ConversationSession& s,
                       const std::vector<store::ConversationMessage>& messages) {
  std::ostringstream o;
  if (format == "csv") {
    o << "seq,created_at,role,message_type,content,prompt_tokens,completion_tokens\r\n";
    for (const auto& m : messages) {
      o << m.seq << ',' << FormatTimestamp(m.created_at_ms) << ',' << m.role << ',' << m.message_type << ','
        << CsvField(m.content) << ',' << m.prompt_tokens << ',' << m.completion_tokens << "\r\n";
    }
    return o.str();
  }
  const bool md = format == "markdown";
  o << (md ? "# " : "") << s.name << "\n\n";
  o << (md ? "_" : "") << "Collection " << s.collection_id << ", started " << FormatTimestamp(s.created_at_ms)
    << (md ? "_" : "") << "\n\n";
  for (const auto& m : messages) {
    const std::string who = m.role == "user" ? "User" : m.role == "assistant" ? "Assistant" : "System";
    if (md) {
      o << "**" << who << "** (" << FormatTimestamp(m.created_at_ms) << ")\n\n" << m.content << "\n\n";
      const json meta = modulo::ParseJsonOrDiscarded(m.metadata);
      if (meta.is_object() && meta.contains("sources") && meta["sources"].is_array() && !meta["sources"].empty()) {
        o << "Sources:\n";
        for (const auto& src : meta["sources"]) {
          o << "- [" << src.value("n", 0) << "] " << src.value("document_name", json("")).dump() << "\n";
        }
        o << "\n";
      }
    } else {
      o << "[" << FormatTimestamp(m.created_at_ms) << "] " << who << ": " << m.content << "\n\n";
    }
  }
  return o.str();
}

// A session the caller may see, with the language model its owner's answers use (null: none).
struct SessionModel {
  store::ConversationSession session;
  std::shared_ptr<generate::LlmProvider> model;
};

asio::awaitable<Result<SessionModel>> SessionWithModel(ConversationServices& svc, AppContext& app, const Request& req) {
  auto s = co_await RunOn(app.blocking_pool,
                          [&] { return SessionFor(svc.conversations, req, req.PathParam("session_id")); });
  if (!s) co_return Fail(s.error());
  SessionModel out{std::move(*s), nullptr};
  if (svc.answers.answers == nullptr) co_return out;
  if (svc.answers.profiles == nullptr) {
    out.model = svc.answers.answers->server_profile()->provider;
    co_return out;
  }
  auto profile = co_await RunOn(app.blocking_pool, [&] {
    return svc.answers.profiles->Resolve(out.session.user_id, out.session.collection_id, "");
  });
  if (!profile) co_return Fail(profile.error());
  out.model = (*profile)->provider;
  co_return out;
}

// Accounts a model's tokens spent for `user_id` outside an answer (names, suggestions, summaries).
void Spent(ConversationServices& svc, const std::string& user_id, generate::LlmProvider* model,
           const generate::TokenUsage& usage) {
  if (model == nullptr || svc.answers.answers == nullptr) return;
  generate::AnswerRequest who;
  who.user_id = user_id;
  svc.answers.answers->Record(who, *model, usage);
}

json QuestionsJson(const std::vector<store::SuggestedQuestion>& list) {
  json arr = json::array();
  for (const auto& q : list) {
    arr.push_back({{"id", q.id},
                   {"collection_id", q.collection_id},
                   {"question", q.question},
                   {"created_at", FormatTimestamp(q.created_at_ms)}});
  }
  return arr;
}

asio::awaitable<void> ProduceTurn(ConversationServices& svc, store::ConversationSession session,
                                  generate::AnswerRequest request, std::shared_ptr<http::AsyncQueue<SseEvent>> queue,
                                  std::shared_ptr<generate::CancelToken> cancel) {
  auto observer = std::make_shared<generate::AnswerObserver>();
  observer->on_stage = [queue](std::string_view stage, double ms) {
    queue->Push({"stage", Dump(json{{"stage", stage}, {"duration_ms", ms}})});
  };
  observer->on_token = [queue, cancel](std::string_view text) {
    if (cancel->cancelled()) return false;
    queue->Push({"token", Dump(json{{"text", text}})});
    return true;
  };
  auto turn = co_await svc.service.Turn(std::move(session), std::move(request), observer, cancel);
  if (!turn) {
    queue->Push(
        {"error", Dump(json{{"detail", turn.error().message()}, {"code", ErrorCodeName(turn.error().code())}})});
  } else {
    const json& r = turn->response;
    const json meta = r.contains("metadata") ? r["metadata"] : json::object();
    if (!turn->answer.content.empty() && !(meta.contains("llm") || meta.value("mode", "") == "generated")) {
      // An extractive answer arrives whole.
      queue->Push({"token", Dump(json{{"text", turn->answer.content}})});
    }
    queue->Push({"sources", Dump(json{{"query_results", r.value("query_results", json::array())},
                                      {"citations", meta.value("citations", json::array())}})});
    queue->Push({"usage", Dump(meta.value("usage", json{{"prompt_tokens", 0}, {"completion_tokens", 0}}))});
    json message = generate::MessageJson(turn->answer);
    message["question_message_id"] = turn->question.id;
    queue->Push({"message", Dump(message)});
    queue->Push({"done", Dump(json{{"message_id", turn->answer.id},
                                   {"rewritten_query", r.value("rewritten_query", json(nullptr))}})});
  }
  queue->Close();
}

asio::awaitable<void> StreamTurn(ConversationServices& svc, std::shared_ptr<store::ConversationSession> session,
                                 std::shared_ptr<PreparedAnswer> prepared, http::SseWriter& w) {
  auto queue = std::make_shared<http::AsyncQueue<SseEvent>>(w.executor(), 1 << 16);
  auto cancel = std::make_shared<generate::CancelToken>();
  asio::co_spawn(w.executor(), ProduceTurn(svc, *session, prepared->request, queue, cancel), asio::detached);
  co_await PipeEvents(w, queue, cancel);  // a turn cut short is still stored, marked cancelled
}

void Add(http::Router& router, verb method, std::string path, std::string policy, std::string summary,
         http::Handler handler, bool has_body = false) {
  AddRoute(router,
           {method,
            std::move(path),
            std::move(policy),
            std::move(summary),
            "conversations",
            has_body ? json{{"type", "object"}} : json(nullptr),
            {{"400", "A bad field (the message names it)"}, {"404", "No such conversation (or not yours)"}}},
           std::move(handler));
}

Response Reply(Result<json> r, http::beast_http::status ok = http::beast_http::status::ok) {
  if (!r) return Response::FromError(r.error());
  return Response::Json(*r, ok);
}

}  // namespace

Result<std::vector<std::string>> GenerateSuggestedQuestions(
    store::MetadataStore& store, store::ConversationStore& conversations, const std::string& collection_id,
    generate::LlmProvider* provider, const std::function<void(const generate::TokenUsage&)>& spent, std::size_t n) {
  auto state = store.GetCollectionState(collection_id);
  if (!state) return Fail(state.error());
  auto files = store.ListFiles(collection_id);
  if (!files) return Fail(files.error());
  std::vector<std::string> texts;
  for (const auto& f : *files) {
    if (f.status != store::FileStatus::kCompleted) continue;
    auto chunks = store.GetChunksByNumber(f.id, state->generation, {0});
    if (!chunks) return Fail(chunks.error());
    for (auto& c : *chunks) texts.push_back(std::move(c.text));
    if (texts.size() >= 10) break;
  }
  if (texts.empty()) return std::vector<std::string>();
  std::vector<std::string_view> views(texts.begin(), texts.end());
  generate::QuestionSuggester suggester(provider);
  auto result = suggester.Suggest(views, n);
  if (provider != nullptr && spent) spent(result.usage);
  if (auto st = conversations.ReplaceSuggestedQuestions(collection_id, result.questions); !st) return Fail(st.error());
  return result.questions;
}

decltype(AppContext::ws_chat) MakeWsChat(ConversationServices& svc, AppContext& app) {
  return [&svc, &app](http::WebSocket& ws, const http::Request& req, json msg,
                      std::shared_ptr<generate::CancelToken> cancel) -> asio::awaitable<void> {
    const json request_id = msg.value("request_id", json(nullptr));
    auto send = [&ws, request_id](json event) {
      event["request_id"] = request_id;
      ws.Send(Dump(event));
    };
    json data = msg.contains("data") && msg["data"].is_object() ? msg["data"] : msg;
    if (!data.contains("content") && data.contains("message")) data["content"] = data["message"];
    auto fail = [&send](const Error& e) {
      send(json{{"type", "error"}, {"message", e.message()}, {"code", ErrorCodeName(e.code())}});
    };
    if (!data.contains("content") || !data["content"].is_string()) {
      fail(Error::InvalidArgument("'content' is required (a string)"));
      co_return;
    }
    std::optional<store::ConversationSession> session;
    std::string collection_id = data.value("collection_id", "");
    if (data.contains("session_id") && data["session_id"].is_string()) {
      const std::string sid = data["session_id"].get<std::string>();
      auto s = co_await RunOn(app.blocking_pool, [&] { return SessionFor(svc.conversations, req, sid); });
      if (!s) {
        fail(s.error());
        co_return;
      }
      session = std::move(*s);
      collection_id = session->collection_id;
    }
    if (collection_id.empty()) {
      fail(Error::InvalidArgument("'collection_id' or 'session_id' is required"));
      co_return;
    }
    json search = {{"question", data["content"]}, {"collection_id", collection_id}};
    for (const char* k : {"answer_mode", "config_metadata", "pipeline_id"}) {
      if (data.contains(k)) search[k] = data[k];
    }
    auto prepared = co_await PrepareAnswer(svc.answers, app, req, std::move(search));
    if (!prepared) {
      fail(prepared.error());
      co_return;
    }
    send(json{{"type", "processing"}, {"message", "Processing your message"}});
    auto observer = std::make_shared<generate::AnswerObserver>();
    auto streamed = std::make_shared<std::atomic<bool>>(false);
    observer->on_stage = [send](std::string_view stage, double ms) {
      send(json{{"type", "stage"}, {"stage", stage}, {"duration_ms", ms}});
    };
    observer->on_token = [send, cancel, streamed](std::string_view text) {
      if (cancel->cancelled()) return false;
      streamed->store(true);
      send(json{{"type", "token"}, {"text", text}});
      return true;
    };
    json response;
    json message;
    if (session) {
      auto turn = co_await svc.service.Turn(*session, prepared->request, observer, cancel);
      if (!turn) {
        fail(turn.error());
        co_return;
      }
      response = std::move(turn->response);
      message = generate::MessageJson(turn->answer);
    } else {
      Result<json> r = json();
      if (prepared->generate) {
        r = co_await svc.answers.answers->Answer(prepared->request, observer, cancel);
      } else {
        r = co_await svc.answers.search.Search(prepared->request.query);
      }
      if (!r) {
        fail(r.error());
        co_return;
      }
      response = std::move(*r);
    }
    const json meta =
        response.contains("metadata") && response["metadata"].is_object() ? response["metadata"] : json::object();
    if (!streamed->load() && response.contains("answer") && response["answer"].is_string()) {
      send(json{{"type", "token"}, {"text", response["answer"]}});
    }
    send(json{{"type", "sources"},
              {"query_results", response.value("query_results", json::array())},
              {"citations", meta.value("citations", json::array())}});
    json out = {{"type", "ai_response"},
                {"data",
                 {{"answer", response.value("answer", json(nullptr))},
                  {"answer_type", meta.value("answer_type", json(nullptr))},
                  {"citations", meta.value("citations", json::array())},
                  {"sources", response.value("query_results", json::array())},
                  {"rewritten_query", response.value("rewritten_query", json(nullptr))},
                  {"cot_output", response.value("cot_output", json(nullptr))},
                  {"usage", meta.value("usage", json::object())},
                  {"message", message.is_null() ? json(nullptr) : message}}}};
    send(std::move(out));
  };
}

void AddConversationRoutes(http::Router& router, AppContext& app, ConversationServices& svc) {
  auto& store = svc.conversations;

  Add(
      router, verb::post, "/api/conversations", "user", "Start a conversation with a collection",
      [&svc, &app, &store](Request& req) -> asio::awaitable<Response> {
        auto body = http::ParseJsonBody(req);
        if (!body) co_return Response::FromError(body.error());
        if (auto st = http::OnlyKeys(*body, {"collection_id", "session_name", "context_window_size", "max_messages",
                                             "is_pinned", "is_archived", "metadata", "user_id"});
            !st) {
          co_return Response::FromError(st.error());
        }
        if (!body->contains("collection_id") || !(*body)["collection_id"].is_string()) {
          co_return Response::FromError(Error::InvalidArgument("'collection_id' is required"));
        }
        if (!body->contains("session_name")) (*body)["session_name"] = "New conversation";
        store::ConversationSession s;
        const auth::Principal* p = Caller(req);
        s.user_id = p != nullptr ? p->user_id : std::string(kLocalUserId);
        s.collection_id = (*body)["collection_id"].get<std::string>();
        if (auto st = ApplySessionInput(*body, s); !st) co_return Response::FromError(st.error());
        auto created = co_await RunOn(app.blocking_pool, [&]() -> Result<store::ConversationSession> {
          auto scoped = ScopedStore(svc.answers.store, svc.answers.identity, req);
          if (auto st = scoped.Require(s.collection_id, store::AccessLevel::kRead); !st) return Fail(st.error());
          return store.CreateSession(s);
        });
        if (!created) co_return Response::FromError(created.error());
        co_return Response::Json(generate::SessionJson(*created), http::beast_http::status::created);
      },
      true);

  Add(router, verb::get, "/api/conversations", "user", "Your conversations: pinned first, then most recent",
      [&app, &store](Request& req) -> asio::awaitable<Response> {
        store::SessionFilter f;
        const auth::Principal* p = Caller(req);
        f.user_id = p != nullptr ? p->user_id : std::string(kLocalUserId);
        if (auto c = req.QueryParam("collection_id"); c && !c->empty()) f.collection_id = *c;
        f.include_archived = req.QueryParam("include_archived").value_or("") == "true";
        for (auto [name, target, max] : {std::tuple{"limit", &f.limit, std::size_t{1000}},
                                         std::tuple{"offset", &f.offset, std::size_t{1} << 30}}) {
          const std::string v(req.QueryParam(name).value_or(""));
          if (v.empty()) continue;
          char* end = nullptr;
          const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
          if (end == v.c_str() || *end != '\0' || n > max || (std::string_view(name) == "limit" && n == 0)) {
            co_return Response::FromError(
                Error::InvalidArgument(std::string("'") + name + "' must be an integer up to " + std::to_string(max)));
          }
          *target = n;
        }
        auto list = co_await RunOn(app.blocking_pool, [&] { return store.ListSessions(f); });
        if (!list) co_return Response::FromError(list.error());
        json arr = json::array();
        for (const auto& s : *list) arr.push_back(generate::SessionJson(s));
        co_return Response::Json(arr);
      });

  Add(router, verb::get, "/api/conversations/{session_id}", "user", "One conversation",
      [&app, &store](Request& req) -> asio::awaitable<Response> {
        auto s = co_await RunOn(app.blocking_pool, [&] { return SessionFor(store, req, req.PathParam("session_id")); });
        if (!s) co_return Response::FromError(s.error());
        co_return Response::Json(generate::SessionJson(*s));
      });

  Add(
      router, verb::put, "/api/conversations/{session_id}", "user",
      "Change a conversation: session_name, is_pinned, is_archived, context_window_size, max_messages, metadata",
      [&app, &store](Request& req) -> asio::awaitable<Response> {
        auto body = http::ParseJsonBody(req);
        if (!body) co_return Response::FromError(body.error());
        if (auto st = http::OnlyKeys(
                *body, {"session_name", "context_window_size", "max_messages", "is_pinned", "is_archived", "metadata",
                        "id", "user_id", "collection_id", "status", "created_at", "updated_at", "message_count"});
            !st) {
          co_return Response::FromError(st.error());
        }
        co_return Reply(co_await RunOn(app.blocking_pool, [&]() -> Result<json> {
          auto s = SessionFor(store, req, req.PathParam("session_id"));
          if (!s) return Fail(s.error());
          if (body->contains("collection_id") && (*body)["collection_id"] != json(s->collection_id)) {
            return Fail(Error::InvalidArgument("'collection_id' of a conversation cannot change"));
          }
          if (auto st = ApplySessionInput(*body, *s); !st) return Fail(st.error());
          auto updated = store.UpdateSession(*s);
          if (!updated) return Fail(updated.error());
          return generate::SessionJson(*updated);
        }));
      },
      true);

  Add(router, verb::delete_, "/api/conversations/{session_id}", "user", "Delete a conversation and its messages",
      [&app, &store](Request& req) -> asio::awaitable<Response> {
        auto st = co_await RunOn(app.blocking_pool, [&]() -> Status {
          auto s = SessionFor(store, req, req.PathParam("session_id"));
          if (!s) return Fail(s.error());
          return store.DeleteSession(s->id);
        });
        if (!st) co_return Response::FromError(st.error());
        co_return Response::NoContent();
      });

  for (const auto& [action, status] : {std::pair{"archive", "archived"}, std::pair{"restore", "active"}}) {
    const std::string target = status;
    Add(router, verb::post, std::string("/api/conversations/{session_id}/") + action, "user",
        std::string(action == std::string("archive") ? "Archive" : "Restore") + " a conversation",
        [&app, &store, target](Request& req) -> asio::awaitable<Response> {
          co_return Reply(co_await RunOn(app.blocking_pool, [&]() -> Result<json> {
            auto s = SessionFor(store, req, req.PathParam("session_id"));
            if (!s) return Fail(s.error());
            s->status = target;
            auto updated = store.UpdateSession(*s);
            if (!updated) return Fail(updated.error());
            return generate::SessionJson(*updated);
          }));
        });
  }

  Add(router, verb::get, "/api/conversations/{session_id}/messages", "user",
      "The messages of a conversation, oldest first (?after_seq=&limit=)",
      [&app, &store](Request& req) -> asio::awaitable<Response> {
        std::int64_t after = 0;
        std::size_t limit = 200;
        const std::string a(req.QueryParam("after_seq").value_or("")), l(req.QueryParam("limit").value_or(""));
        char* end = nullptr;
        if (!a.empty()) {
          after = std::strtoll(a.c_str(), &end, 10);
          if (*end != '\0' || after < 0)
            co_return Response::FromError(Error::InvalidArgument("'after_seq' must be an integer"));
        }
        if (!l.empty()) {
          const long long n = std::strtoll(l.c_str(), &end, 10);
          if (*end != '\0' || n < 1 || n > 1000) {
            co_return Response::FromError(Error::InvalidArgument("'limit' must be between 1 and 1000"));
          }
          limit = static_cast<std::size_t>(n);
        }
        co_return Reply(co_await RunOn(app.blocking_pool, [&]() -> Result<json> {
          auto s = SessionFor(store, req, req.PathParam("session_id"));
          if (!s) return Fail(s.error());
          auto messages = store.ListMessages(s->id, after, limit);
          if (!messages) return Fail(messages.error());
          json arr = json::array();
          for (const auto& m : *messages) arr.push_back(generate::MessageJson(m));
          return arr;
        }));
      });

  Add(
      router, verb::post, "/api/conversations/{session_id}/messages", "user|search",
      "Ask in a conversation: the history within the window, a standalone question for retrieval, the "
      "answer with sources; both messages are stored. \"stream\": true answers as Server-Sent Events "
      "(stage*, token*, sources, usage, message, done — or error)",
      [&svc, &app, &store](Request& req) -> asio::awaitable<Response> {
        auto body = http::ParseJsonBody(req);
        if (!body) co_return Response::FromError(body.error());
        if (auto st = http::OnlyKeys(*body, {"content", "role", "message_type", "stream", "answer_mode",
                                             "config_metadata", "pipeline_id", "session_id", "metadata"});
            !st) {
          co_return Response::FromError(st.error());
        }
        if (!body->contains("content") || !(*body)["content"].is_string()) {
          co_return Response::FromError(Error::InvalidArgument("'content' is required (a string)"));
        }
        const std::string content = (*body)["content"].get<std::string>();
        if (content.size() > kMaxMessageBytes) {
          co_return Response::FromError(
              Error::InvalidArgument("'content' is longer than " + std::to_string(kMaxMessageBytes) + " bytes"));
        }
        if (body->contains("role") && (*body)["role"] != "user") {
          co_return Response::FromError(
              Error::InvalidArgument("'role' must be user: the assistant's messages are written by the server"));
        }
        auto session =
            co_await RunOn(app.blocking_pool, [&] { return SessionFor(store, req, req.PathParam("session_id")); });
        if (!session) co_return Response::FromError(session.error());
        if (session->status == "archived") {
          co_return Response::FromError(Error::Conflict("the conversation is archived: restore it first"));
        }
        json search = {{"question", content}, {"collection_id", session->collection_id}};
        for (const char* k : {"stream", "answer_mode", "config_metadata", "pipeline_id"}) {
          if (body->contains(k)) search[k] = (*body)[k];
        }
        auto prepared = co_await PrepareAnswer(svc.answers, app, req, std::move(search));
        if (!prepared) co_return Response::FromError(prepared.error());
        if (!prepared->request.stream) {
          auto turn = co_await svc.service.Turn(*session, prepared->request);
          if (!turn) co_return Response::FromError(turn.error());
          json out = generate::MessageJson(turn->answer);
          out["question_message_id"] = turn->question.id;
          out["rewritten_query"] = turn->response.value("rewritten_query", json(nullptr));
          out["answer_type"] = turn->response.contains("metadata")
                                   ? turn->response["metadata"].value("answer_type", json(nullptr))
                                   : json(nullptr);
          co_return Response::Json(out);
        }
        auto shared_session = std::make_shared<store::ConversationSession>(std::move(*session));
        auto shared = std::make_shared<PreparedAnswer>(std::move(*prepared));
        co_return Response::EventStream(
            [&svc, shared_session, shared](http::SseWriter& w) { return StreamTurn(svc, shared_session, shared, w); });
      },
      true);

  Add(router, verb::get, "/api/conversations/{session_id}/export", "user",
      "Export a conversation: ?format=json (default), txt, csv or markdown",
      [&app, &store](Request& req) -> asio::awaitable<Response> {
        std::string format(req.QueryParam("format").value_or(""));
        if (format.empty()) format = "json";
        if (format == "md") format = "markdown";
        if (format != "json" && format != "txt" && format != "csv" && format != "markdown") {
          co_return Response::FromError(Error::InvalidArgument("'format' must be json, txt, csv or markdown"));
        }
        struct Data {
          store::ConversationSession session;
          std::vector<store::ConversationMessage> messages;
          std::vector<store::ConversationSummary> summaries;
        };
        auto data = co_await RunOn(app.blocking_pool, [&]() -> Result<Data> {
          auto s = SessionFor(store, req, req.PathParam("session_id"));
          if (!s) return Fail(s.error());
          Data d{std::move(*s), {}, {}};
          if (auto st = store::ForEachMessage(
                  store, d.session.id, 0, [&](store::ConversationMessage&& m) { d.messages.push_back(std::move(m)); });
              !st) {
            return Fail(st.error());
          }
          auto summaries = store.ListSummaries(d.session.id);
          if (!summaries) return Fail(summaries.error());
          d.summaries = std::move(*summaries);
          return d;
        });
        if (!data) co_return Response::FromError(data.error());
        const std::string base = "conversation-" + data->session.id;
        Response r = format == "json" ? Response::Json(ExportJson(data->session, data->messages, data->summaries))
                                      : Response::Text(ExportText(format, data->session, data->messages),
                                                       format == "csv"        ? "text/csv; charset=utf-8"
                                                       : format == "markdown" ? "text/markdown; charset=utf-8"
                                                                              : "text/plain; charset=utf-8");
        const std::string ext = format == "markdown" ? "md" : format;
        r.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + base + "." + ext + "\"");
        co_return r;
      });

  Add(router, verb::get, "/api/conversations/{session_id}/summaries", "user", "The summaries of a conversation",
      [&app, &store](Request& req) -> asio::awaitable<Response> {
        co_return Reply(co_await RunOn(app.blocking_pool, [&]() -> Result<json> {
          auto s = SessionFor(store, req, req.PathParam("session_id"));
          if (!s) return Fail(s.error());
          auto list = store.ListSummaries(s->id);
          if (!list) return Fail(list.error());
          json arr = json::array();
          for (const auto& x : *list) arr.push_back(generate::SummaryJson(x));
          return arr;
        }));
      });

  Add(router, verb::post, "/api/conversations/{session_id}/summaries", "user|search",
      "Summarise a conversation now ({\"strategy\": \"full_conversation\"} folds every message; the default folds "
      "only what no longer fits the window)",
      [&svc, &app, &store](Request& req) -> asio::awaitable<Response> {
        json body = json::object();
        if (!req.body.empty()) {
          auto parsed = http::ParseJsonBody(req);
          if (!parsed) co_return Response::FromError(parsed.error());
          body = std::move(*parsed);
          if (auto st = http::OnlyKeys(body, {"strategy", "session_id", "message_count_to_summarize"}); !st) {
            co_return Response::FromError(st.error());
          }
        }
        const std::string strategy = body.value("strategy", "recent_plus_summary");
        if (strategy != "recent_plus_summary" && strategy != "full_conversation") {
          co_return Response::FromError(
              Error::InvalidArgument("'strategy' must be recent_plus_summary or full_conversation"));
        }
        auto sm = co_await SessionWithModel(svc, app, req);
        if (!sm) co_return Response::FromError(sm.error());
        auto* session = &sm->session;
        generate::LlmProvider* provider = sm->model.get();
        co_return Reply(co_await RunOn(app.blocking_pool, [&]() -> Result<json> {
          generate::AnswerRequest who;
          who.user_id = session->user_id;
          auto latest = svc.service.Summarize(*session, provider, strategy == "full_conversation", &who);
          if (!latest) return Fail(latest.error());
          if (!*latest) return json{{"session_id", session->id}, {"summary", nullptr}};
          return generate::SummaryJson(**latest);
        }));
      });

  Add(router, verb::get, "/api/conversations/{session_id}/statistics", "user", "Message and token counts",
      [&app, &store](Request& req) -> asio::awaitable<Response> {
        co_return Reply(co_await RunOn(app.blocking_pool, [&]() -> Result<json> {
          auto s = SessionFor(store, req, req.PathParam("session_id"));
          if (!s) return Fail(s.error());
          std::int64_t users = 0, assistants = 0, prompt = 0, completion = 0, cot = 0, aware = 0, errors = 0;
          std::int64_t last = s->created_at_ms;
          auto st = store::ForEachMessage(store, s->id, 0, [&](store::ConversationMessage&& m) {
            (m.role == "user" ? users : assistants) += 1;
            prompt += m.prompt_tokens;
            completion += m.completion_tokens;
            if (m.message_type == "error") ++errors;
            const json meta = modulo::ParseJsonOrDiscarded(m.metadata);
            if (meta.is_object() && meta.value("cot_used", false)) ++cot;
            if (meta.is_object() && meta.value("conversation_aware", false)) ++aware;
            last = std::max(last, m.created_at_ms);
          });
          if (!st) return Fail(st.error());
          return json{{"session_id", s->id},
                      {"message_count", users + assistants},
                      {"user_messages", users},
                      {"assistant_messages", assistants},
                      {"total_tokens", prompt + completion},
                      {"total_prompt_tokens", prompt},
                      {"total_completion_tokens", completion},
                      {"cot_usage_count", cot},
                      {"context_enhancement_count", aware},
                      {"created_at", FormatTimestamp(s->created_at_ms)},
                      {"last_activity", FormatTimestamp(last)},
                      {"metadata", {{"error_messages", errors}}}};
        }));
      });

  Add(router, verb::get, "/api/conversations/{session_id}/suggestions", "user|search",
      "Follow-up questions from the last answer's sources (?max_suggestions=1..10)",
      [&svc, &app, &store](Request& req) -> asio::awaitable<Response> {
        std::size_t n = 3;
        if (const std::string v(req.QueryParam("max_suggestions").value_or("")); !v.empty()) {
          char* end = nullptr;
          const long long x = std::strtoll(v.c_str(), &end, 10);
          if (*end != '\0' || x < 1 || x > 10) {
            co_return Response::FromError(Error::InvalidArgument("'max_suggestions' must be between 1 and 10"));
          }
          n = static_cast<std::size_t>(x);
        }
        auto sm = co_await SessionWithModel(svc, app, req);
        if (!sm) co_return Response::FromError(sm.error());
        auto* session = &sm->session;
        generate::LlmProvider* provider = sm->model.get();
        co_return Reply(co_await RunOn(app.blocking_pool, [&]() -> Result<json> {
          auto recent = store.RecentMessages(session->id, 10);
          if (!recent) return Fail(recent.error());
          std::vector<std::string> texts;
          for (auto it = recent->rbegin(); it != recent->rend() && texts.empty(); ++it) {
            if (it->role != "assistant" || it->message_type != "answer") continue;
            const json meta = modulo::ParseJsonOrDiscarded(it->metadata);
            if (meta.is_object() && meta.contains("sources") && meta["sources"].is_array()) {
              for (const auto& src : meta["sources"]) texts.push_back(src.value("content", ""));
            }
            texts.push_back(it->content);
          }
          if (texts.empty()) {  // nothing asked yet: the collection's suggested questions
            auto questions = store.ListSuggestedQuestions(session->collection_id);
            if (!questions) return Fail(questions.error());
            json out = {{"suggestions", json::array()},
                        {"suggestion_types", json::array()},
                        {"reasoning", "the collection's suggested questions"}};
            for (const auto& q : *questions) {
              if (out["suggestions"].size() >= n) break;
              out["suggestions"].push_back(q.question);
              out["suggestion_types"].push_back("related");
            }
            return out;
          }
          std::vector<std::string_view> views(texts.begin(), texts.end());
          generate::QuestionSuggester suggester(provider);
          auto r = suggester.Suggest(views, n);
          Spent(svc, session->user_id, provider, r.usage);
          json out = {{"suggestions", r.questions},
                      {"suggestion_types", json::array()},
                      {"reasoning", "follow-ups drawn from the sources of the last answer (" + r.method + ")"},
                      {"metadata", {{"method", r.method}}}};
          for (std::size_t i = 0; i < r.questions.size(); ++i) out["suggestion_types"].push_back("follow_up");
          if (r.error) out["metadata"]["error"] = r.error->message();
          return out;
        }));
      });

  Add(router, verb::post, "/api/conversations/{session_id}/generate-name", "user|search",
      "Name a conversation after what it is about (by the language model when there is one)",
      [&svc, &app, &store](Request& req) -> asio::awaitable<Response> {
        auto sm = co_await SessionWithModel(svc, app, req);
        if (!sm) co_return Response::FromError(sm.error());
        auto* session = &sm->session;
        generate::LlmProvider* provider = sm->model.get();
        co_return Reply(co_await RunOn(app.blocking_pool, [&]() -> Result<json> {
          auto first = store.ListMessages(session->id, 0, 6);
          if (!first) return Fail(first.error());
          std::string questions;
          for (const auto& m : *first) {
            if (m.role == "user") questions += "- " + m.content.substr(0, 300) + "\n";
          }
          if (questions.empty())
            return Fail(Error::InvalidArgument("the conversation has no question to name it after"));
          std::string name;
          std::string method = "rules";
          if (provider != nullptr) {
            auto gen = provider->Generate(
                {{"system", "You name chat conversations. Reply with a title of at most six words, no quotes."},
                 {"user", "Questions asked so far:\n" + questions + "\nTitle:"}},
                generate::GenerationParams{.max_new_tokens = 24, .temperature = 0.2});
            if (gen) Spent(svc, session->user_id, provider, gen->usage);
            if (gen) {
              name = std::string(generate::TrimText(gen->text));
              name = name.substr(0, name.find('\n'));
              while (!name.empty() && (name.front() == '"' || name.front() == '\'')) name.erase(0, 1);
              while (!name.empty() && (name.back() == '"' || name.back() == '\'' || name.back() == '.'))
                name.pop_back();
              if (name.size() > 100) name.resize(100);
              if (!name.empty()) method = "llm";
            }
          }
          if (name.empty()) {
            name = questions.substr(2, questions.find('\n') - 2);
            if (name.size() > 60) {
              std::size_t cut = name.rfind(' ', 57);
              name = name.substr(0, cut == std::string::npos ? 57 : cut) + "…";
            }
          }
          session->name = name;
          auto updated = store.UpdateSession(*session);
          if (!updated) return Fail(updated.error());
          json out = generate::SessionJson(*updated);
          out["name_method"] = method;
          return out;
        }));
      });

  // Suggested questions of a collection.
  Add(router, verb::get, "/api/collections/{collection_id}/questions", "collection:read:collection_id",
      "Suggested questions for a collection (generated after ingestion; made now when there are none yet)",
      [&svc, &app, &store](Request& req) -> asio::awaitable<Response> {
        const std::string cid = req.PathParam("collection_id");
        co_return Reply(co_await RunOn(app.blocking_pool, [&]() -> Result<json> {
          auto list = store.ListSuggestedQuestions(cid);
          if (!list) return Fail(list.error());
          if (list->empty()) {
            auto made = GenerateSuggestedQuestions(svc.answers.store, store, cid, nullptr);
            if (!made) return Fail(made.error());
            list = store.ListSuggestedQuestions(cid);
            if (!list) return Fail(list.error());
          }
          return QuestionsJson(*list);
        }));
      });
  Add(router, verb::post, "/api/collections/{collection_id}/questions", "collection:write:collection_id|search",
      "Generate a collection's suggested questions again (by your language model when you have one)",
      [&svc, &app, &store](Request& req) -> asio::awaitable<Response> {
        const std::string cid = req.PathParam("collection_id");
        std::shared_ptr<const generate::AnswerProfile> profile;
        const auth::Principal* p = Caller(req);
        if (svc.answers.profiles != nullptr && p != nullptr) {
          auto r =
              co_await RunOn(app.blocking_pool, [&] { return svc.answers.profiles->Resolve(p->user_id, cid, ""); });
          if (!r) co_return Response::FromError(r.error());
          profile = std::move(*r);
        }
        generate::LlmProvider* provider = profile ? profile->provider.get() : nullptr;
        co_return Reply(co_await RunOn(app.blocking_pool,
                                       [&]() -> Result<json> {
                                         auto made = GenerateSuggestedQuestions(
                                             svc.answers.store, store, cid, provider,
                                             [&](const generate::TokenUsage& u) {
                                               Spent(svc, p != nullptr ? p->user_id : "", provider, u);
                                             });
                                         if (!made) return Fail(made.error());
                                         auto list = store.ListSuggestedQuestions(cid);
                                         if (!list) return Fail(list.error());
                                         return QuestionsJson(*list);
                                       }),
                        http::beast_http::status::created);
      });
  Add(router, verb::delete_, "/api/collections/{collection_id}/questions", "collection:write:collection_id",
      "Remove a collection's suggested questions", [&app, &store](Request& req) -> asio::awaitable<Response> {
        const std::string cid = req.PathParam("collection_id");
        auto st = co_await RunOn(app.blocking_pool, [&] { return store.ReplaceSuggestedQuestions(cid, {}); });
        if (!st) co_return Response::FromError(st.error());
        co_return Response::NoContent();
      });
}

}  // namespace modulo::api
