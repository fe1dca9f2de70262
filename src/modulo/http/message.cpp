#include "modulo/http/message.h"

#include <algorithm>
#include <cmath>

#include "modulo/core/json.h"
#include "modulo/http/status.h"
#include "modulo/http/url.h"

namespace modulo::http {

std::string_view Request::Header(std::string_view name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string_view{} : it->value();
}

std::optional<std::string> Request::QueryParam(std::string_view name) const {
  for (const auto& [k, v] : ParseQuery(query)) {
    if (k == name) return v;
  }
  return std::nullopt;
}

const std::string& Request::PathParam(std::string_view name) const {
  static const std::string kEmpty;
  auto it = path_params.find(name);
  return it == path_params.end() ? kEmpty : it->second;
}

void Request::Log(log::Level level, std::string_view message, log::Fields fields) const {
  log::Write(level, message, {{"request_id", request_id}}, fields);
}

Response Response::Json(const nlohmann::json& j, beast_http::status s) {
  Response r;
  r.status = s;
  r.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

Response Response::Text(std::string body, std::string content_type, beast_http::status s) {
  Response r;
  r.status = s;
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  return r;
}

Response Response::FromError(const Error& e) {
  Response r;
  r.status = ToHttpStatus(e.code());
  r.body = ErrorBody(e);
  if (!e.details().empty()) {
    // Rate limits and quotas say when to come back.
    auto details = modulo::ParseJsonOrDiscarded(e.details());
    if (details.is_object() && details.contains("retry_after") && details["retry_after"].is_number()) {
      const auto seconds = static_cast<long long>(std::ceil(details["retry_after"].get<double>()));
      r.WithHeader("Retry-After", std::to_string(std::max(1LL, seconds)));
    }
  }
  return r;
}

Response Response::NoContent() {
  Response r;
  r.status = beast_http::status::no_content;
  return r;
}

Response Response::EventStream(std::function<boost::asio::awaitable<void>(SseWriter&)> producer) {
  Response r;
  r.content_type = "text/event-stream";
  r.stream = std::move(producer);
  return r;
}

}  // namespace modulo::http
