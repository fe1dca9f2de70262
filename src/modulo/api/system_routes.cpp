#include "modulo/api/system_routes.h"

#include <utility>  // must precede Asio's coroutine headers on Boost 1.74

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <atomic>
#include <chrono>
#include <memory>

#include "modulo/api/security.h"
#include "modulo/http/async_queue.h"
#include "modulo/http/json_body.h"
#include "modulo/http/streams.h"
#include "modulo/http/url.h"

namespace modulo::api {
namespace {

namespace asio = boost::asio;
using http::Request;
using http::Response;
using http::Route;
using status = http::beast_http::status;

nlohmann::json JsonResponseDoc(const std::string& description) {
  return {{"description", description}, {"content", {{"application/json", {{"schema", {{"type", "object"}}}}}}}};
}

// Runs every health check on the blocking pool: fresh for an admin, else at most once a second
// for everyone together (the public probes).
asio::awaitable<std::vector<HealthRegistry::Report>> CheckHealth(AppContext& app, bool fresh = false) {
  co_return co_await RunOn(app.blocking_pool, [&app, fresh] {
    return fresh ? app.health.CheckAll() : app.health.CachedCheckAll(std::chrono::seconds(1));
  });
}

// Access to a topic, asked again while a stream delivers it (at most once a second per topic):
// a share revoked or a user disabled since the stream opened ends it. Only a refusal ends it; a
// store that cannot answer right now does not.
class AccessRecheck {
 public:
  AccessRecheck(AppContext& app, const Request& req) : app_(app), req_(req) {}
  // False when access to `topic` is gone.
  asio::awaitable<bool> StillAllowed(const std::string& topic) {
    if (!app_.topic_access) co_return true;
    auto& last = checked_[topic];
    const auto now = std::chrono::steady_clock::now();
    if (now - last < std::chrono::seconds(1)) co_return true;
    last = now;
    auto st = co_await RunOn(app_.blocking_pool, [&] { return app_.topic_access(req_, topic); });
    co_return st || (st.error().code() != ErrorCode::kNotFound && st.error().code() != ErrorCode::kPermissionDenied);
  }

 private:
  AppContext& app_;
  const Request& req_;
  std::map<std::string, std::chrono::steady_clock::time_point> checked_;
};

// A slot for one more long-lived stream of the request's user, or the error that refuses it.
Result<std::shared_ptr<void>> StreamSlot(AppContext& app, const Request& req) {
  if (!app.streams) return std::shared_ptr<void>();
  const auth::Principal* p = Security::PrincipalOf(req);
  auto slot = app.streams->Acquire(p != nullptr ? p->user_id : std::string());
  if (!slot) {
    return Fail(Error::RateLimited("at most " + std::to_string(app.streams->per_user()) +
                                   " open event streams and WebSocket connections per user; close one first")
                    .WithDetails(nlohmann::json{{"retry_after", 5}}.dump()));
  }
  return slot;
}

bool IsAdmin(const Request& req) {
  const auth::Principal* p = Security::PrincipalOf(req);
  return p != nullptr && p->is_admin();
}

struct Topic {
  std::string name;
};

// Topics are "<kind>:<id>" with a short, safe alphabet.
Result<Topic> ParseTopic(const std::string& topic) {
  const auto colon = topic.find(':');
  const bool ok_len = !topic.empty() && topic.size() <= 200;
  bool ok_chars = true;
  for (unsigned char c : topic) {
    ok_chars = ok_chars && (std::isalnum(c) || c == ':' || c == '-' || c == '_' || c == '.');
  }
  if (!ok_len || !ok_chars || colon == std::string::npos || colon == 0 || colon + 1 == topic.size()) {
    return Fail(Error::InvalidArgument("invalid topic '" + topic.substr(0, 200) +
                                       "': expected <kind>:<id>, e.g. task:123 or collection:abc"));
  }
  return Topic{topic};
}

}  // namespace

void AddSystemRoutes(http::Router& router, AppContext& app) {
  {
    Route r;
    r.path = "/health";
    r.policy = "public";
    r.doc = {.summary = "Liveness: the process is up and serving HTTP",
             .tag = "system",
             .request_body = nullptr,
             .responses = {{"200", JsonResponseDoc("Alive")}}};
    r.handler = [](Request&) -> asio::awaitable<Response> {
      static const std::string kBody = R"({"status":"ok"})";
      co_return Response::Text(kBody, "application/json");
    };
    router.Add(std::move(r));
  }
  {
    Route r;
    r.path = "/ready";
    r.policy = "public";
    r.doc = {.summary = "Readiness: every required component answers and the server is not draining",
             .tag = "system",
             .request_body = nullptr,
             .responses = {{"200", JsonResponseDoc("Ready")}, {"503", JsonResponseDoc("Not ready")}}};
    r.handler = [&app](Request&) -> asio::awaitable<Response> {
      if (app.draining()) {
        co_return Response::Json({{"status", "draining"}}, status::service_unavailable);
      }
      // Names only: the messages (host names, paths) are for admins, on /api/health.
      nlohmann::json failing = nlohmann::json::array();
      for (const auto& rep : co_await CheckHealth(app)) {
        if (rep.required && !rep.health.healthy) failing.push_back(rep.name);
      }
      if (!failing.empty()) {
        co_return Response::Json({{"status", "not_ready"}, {"failing", failing}}, status::service_unavailable);
      }
      co_return Response::Json({{"status", "ready"}});
    };
    router.Add(std::move(r));
  }
  {
    Route r;
    r.path = "/api/health";
    r.policy = "user";
    r.doc = {.summary = "Health of every component (503 when any is unhealthy); messages for admins only",
             .tag = "system",
             .request_body = nullptr,
             .responses = {{"200", JsonResponseDoc("All components healthy")},
                           {"503", JsonResponseDoc("One or more components are unhealthy")}}};
    r.handler = [&app](Request& req) -> asio::awaitable<Response> {
      const bool admin = IsAdmin(req);
      nlohmann::json components = nlohmann::json::object();
      bool healthy = true;
      for (const auto& rep : co_await CheckHealth(app, admin)) {
        components[rep.name] = {{"status", rep.health.healthy ? "healthy" : "unhealthy"}};
        if (admin) components[rep.name]["message"] = rep.health.message;
        healthy = healthy && rep.health.healthy;
      }
      co_return Response::Json({{"status", healthy ? "healthy" : "unhealthy"}, {"components", components}},
                               healthy ? status::ok : status::service_unavailable);
    };
    router.Add(std::move(r));
  }
  {
    Route r;
    r.path = "/metrics";
    r.policy = "public";
    r.doc = {.summary = "Prometheus metrics (text exposition format 0.0.4)",
             .tag = "system",
             .request_body = nullptr,
             .responses = {{"200", {{"description", "Metrics"}, {"content", {{"text/plain", nlohmann::json::object()}}}}}}};
    r.handler = [&app](Request&) -> asio::awaitable<Response> {
      // Collectors may read files or query stores: expose on the blocking pool.
      auto text = co_await RunOn(app.blocking_pool, [&app] { return app.metrics.Expose(); });
      co_return Response::Text(std::move(text), "text/plain; version=0.0.4; charset=utf-8");
    };
    router.Add(std::move(r));
  }
  {
    Route r;
    r.path = "/api/events";
    r.policy = "user";  // topics are checked per subscription (topic_access)
    r.doc = {.summary = "Server-Sent Events for one or more topics (task:<id>, collection:<id>)",
             .tag = "events",
             .request_body = nullptr,
             .responses = {{"200", {{"description", "An event stream"},
                                    {"content", {{"text/event-stream", nlohmann::json::object()}}}}}},
             .parameters = {{{"name", "topic"},
                             {"in", "query"},
                             {"required", true},
                             {"description", "Topic to follow; repeat for several"},
                             {"schema", {{"type", "string"}}}}}};
    r.handler = [&app](Request& req) -> asio::awaitable<Response> {
      std::vector<std::string> topics;
      for (const auto& [k, v] : http::ParseQuery(req.query)) {
        if (k != "topic") continue;
        auto t = ParseTopic(v);
        if (!t) co_return Response::FromError(t.error());
        topics.push_back(t->name);
      }
      if (topics.empty()) co_return Response::FromError(Error::InvalidArgument("query parameter 'topic' is required"));
      if (topics.size() > 32) co_return Response::FromError(Error::InvalidArgument("at most 32 topics per stream"));
      if (app.topic_access) {
        auto allowed = co_await RunOn(app.blocking_pool, [&]() -> Status {
          for (const auto& t : topics) {
            if (auto st = app.topic_access(req, t); !st) return st;
          }
          return {};
        });
        if (!allowed) co_return Response::FromError(allowed.error());
      }
      auto slot = StreamSlot(app, req);
      if (!slot) co_return Response::FromError(slot.error());
      // The stream outlives this handler: it keeps its own copy of the request (the principal).
      auto held = std::make_shared<const Request>(req);
      co_return Response::EventStream([&app, held, topics, lease = *slot](http::SseWriter& w) -> asio::awaitable<void> {
        AccessRecheck access(app, *held);
        using Event = std::pair<std::string, std::string>;
        auto queue = std::make_shared<http::AsyncQueue<Event>>(w.executor(), 1024);
        std::vector<Subscription> subs;
        for (const auto& t : topics) {
          subs.push_back(app.events.Subscribe(t, [queue](const std::string& topic, const std::string& json) {
            queue->Push({topic, json});
          }));
        }
        w.OnClose([queue] { queue->Close(); });
        if (!co_await w.Comment("subscribed")) co_return;
        while (!w.closed()) {
          auto ev = co_await queue->Pop(std::chrono::seconds(15));
          if (!ev) {
            if (queue->closed()) break;
            bool allowed = true;  // an idle stream is asked again too
            for (const auto& t : topics) allowed = allowed && co_await access.StillAllowed(t);
            if (!allowed) {
              const std::string body = nlohmann::json{{"message", "access to these topics was withdrawn"}}.dump();
              (void)co_await w.Send("error", body);
              break;
            }
            if (!co_await w.Comment("keep-alive")) break;
            continue;
          }
          if (!co_await access.StillAllowed(ev->first)) {
            // (Built before the co_await: GCC 12 cannot keep an initializer list across one.)
            const std::string body = nlohmann::json{{"message", "access to " + ev->first + " was withdrawn"}}.dump();
            (void)co_await w.Send("error", body);
            break;
          }
          if (!co_await w.Send(ev->first.substr(0, ev->first.find(':')), ev->second)) break;
        }
      });
    };
    router.Add(std::move(r));
  }
  {
    Route r;
    r.path = "/ws";
    r.policy = "user";  // topics are checked per subscription (topic_access)
    r.doc = {.summary = "WebSocket: ping/pong and topic subscriptions for live progress events",
             .tag = "events",
             .request_body = nullptr,
             .responses = {{"101", {{"description", "Switching to the WebSocket protocol"}}},
                           {"426", JsonResponseDoc("Not a WebSocket upgrade request")}}};
    r.websocket = [&app](http::WebSocket& ws, Request& req) -> asio::awaitable<void> {
      auto slot = StreamSlot(app, req);
      if (!slot) {
        ws.Send(nlohmann::json{{"type", "error"}, {"code", "rate_limited"}, {"message", slot.error().message()}}.dump());
        co_return;
      }
      ws.Send(nlohmann::json{{"type", "connection_established"},
                             {"connection_id", req.request_id},
                             {"message", "WebSocket connection established successfully"}}
                  .dump());
      // Events reach the socket through one queue and one sender, which asks again whether the
      // user may still follow each topic before passing its events on.
      using Event = std::pair<std::string, std::string>;
      auto events = std::make_shared<http::AsyncQueue<Event>>(ws.executor(), 1024);
      auto sender_done = std::make_shared<std::atomic<bool>>(false);
      std::map<std::string, Subscription> subs;
      asio::co_spawn(
          ws.executor(),
          [&app, &ws, &req, events, sender_done]() -> asio::awaitable<void> {
            AccessRecheck access(app, req);
            while (true) {
              auto ev = co_await events->Pop(std::chrono::seconds(3600));
              if (!ev) {
                if (events->closed()) break;
                continue;
              }
              if (!co_await access.StillAllowed(ev->first)) {
                ws.Send(nlohmann::json{{"type", "error"}, {"topic", ev->first},
                                       {"message", "access to " + ev->first + " was withdrawn"}}.dump());
                ws.Close();
                break;
              }
              ws.Send(R"({"type":"event","topic":)" + nlohmann::json(ev->first).dump() + R"(,"data":)" + ev->second + "}");
            }
            sender_done->store(true);
          },
          asio::detached);
      struct Chats {
        std::atomic<int> running{0};
        std::vector<std::shared_ptr<generate::CancelToken>> cancels;  // the reading loop's only
      };
      auto chats = std::make_shared<Chats>();
      while (auto text = co_await ws.Read()) {
        auto msg = http::ParseJsonText(*text);
        if (!msg || !msg->is_object()) {
          ws.Send(nlohmann::json{{"type", "error"}, {"message", "Invalid JSON format"}}.dump());
          continue;
        }
        const std::string type = msg->value("type", "");
        if (type == "ping") {
          ws.Send(nlohmann::json{{"type", "pong"}, {"timestamp", msg->value("timestamp", nlohmann::json())}}.dump());
        } else if (type == "subscribe" || type == "unsubscribe") {
          auto topic = ParseTopic(msg->contains("topic") && (*msg)["topic"].is_string()
                                      ? (*msg)["topic"].get<std::string>()
                                      : std::string());
          if (!topic) {
            ws.Send(nlohmann::json{{"type", "error"}, {"message", topic.error().message()}}.dump());
            continue;
          }
          if (type == "subscribe" && app.topic_access) {
            auto allowed = co_await RunOn(app.blocking_pool, [&] { return app.topic_access(req, topic->name); });
            if (!allowed) {
              ws.Send(nlohmann::json{{"type", "error"}, {"message", allowed.error().message()}}.dump());
              continue;
            }
          }
          if (type == "subscribe") {
            if (subs.size() >= 64) {
              ws.Send(nlohmann::json{{"type", "error"}, {"message", "at most 64 subscriptions per connection"}}.dump());
              continue;
            }
            subs[topic->name] = app.events.Subscribe(topic->name, [events](const std::string& t, const std::string& json) {
              events->Push({t, json});
            });
          } else {
            subs.erase(topic->name);
          }
          ws.Send(nlohmann::json{{"type", type == "subscribe" ? "subscribed" : "unsubscribed"},
                                 {"topic", topic->name}}
                      .dump());
        } else if (type == "chat_message" && app.ws_chat) {
          // Answers run beside the reading loop (pings and other chats go on meanwhile), at most 4
          // at once per connection; all of them end before the socket goes away.
          if (chats->running >= 4) {
            ws.Send(nlohmann::json{{"type", "error"}, {"request_id", msg->value("request_id", nlohmann::json())},
                                   {"message", "at most 4 chat messages at once per connection"}}
                        .dump());
            continue;
          }
          // A chat message is a search (and an answer): it spends the same budget.
          if (app.take_budget) {
            if (auto st = app.take_budget(req, "search"); !st) {
              ws.Send(nlohmann::json{{"type", "error"}, {"request_id", msg->value("request_id", nlohmann::json())},
                                     {"code", ErrorCodeName(st.error().code())}, {"message", st.error().message()}}
                          .dump());
              continue;
            }
          }
          auto cancel = std::make_shared<generate::CancelToken>();
          chats->cancels.push_back(cancel);
          ++chats->running;
          asio::co_spawn(
              ws.executor(),
              [&app, &ws, &req, chats, cancel, m = std::move(*msg)]() mutable -> asio::awaitable<void> {
                co_await app.ws_chat(ws, req, std::move(m), cancel);
                --chats->running;
              },
              asio::detached);
        } else {
          ws.Send(nlohmann::json{{"type", "error"}, {"message", "Unknown message type: " + type}}.dump(
              -1, ' ', false, nlohmann::json::error_handler_t::replace));
        }
      }
      // Answers still running are cancelled and waited for (they hold the socket and the request).
      for (auto& c : chats->cancels) c->Cancel();
      asio::steady_timer timer(ws.executor());
      while (chats->running > 0) {
        timer.expires_after(std::chrono::milliseconds(20));
        co_await timer.async_wait(asio::use_awaitable);
      }
      // Subscriptions end (no more pushes), then the sender drains and stops before the socket
      // it writes to goes away.
      subs.clear();
      events->Close();
      while (!sender_done->load()) {
        timer.expires_after(std::chrono::milliseconds(5));
        co_await timer.async_wait(asio::use_awaitable);
      }
    };
    router.Add(std::move(r));
  }
}

}  // namespace modulo::api
