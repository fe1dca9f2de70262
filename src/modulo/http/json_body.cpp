#include "modulo/http/json_body.h"

#include <algorithm>
#include <cctype>

#include "modulo/core/json.h"

namespace modulo::http {

Result<nlohmann::json> ParseJsonText(std::string_view text) { return ParseJson(text); }

Status OnlyKeys(const nlohmann::json& body, std::initializer_list<std::string_view> keys) {
  if (!body.is_object()) return Fail(Error::InvalidArgument("the request body must be a JSON object"));
  for (const auto& item : body.items()) {
    if (std::find(keys.begin(), keys.end(), item.key()) == keys.end()) {
      return Fail(Error::InvalidArgument("unknown field '" + item.key() + "'"));
    }
  }
  return {};
}

Result<nlohmann::json> ParseJsonBody(const Request& request) {
  std::string type(request.Header("Content-Type"));
  std::transform(type.begin(), type.end(), type.begin(), [](unsigned char c) { return std::tolower(c); });
  const std::string media = type.substr(0, type.find(';'));
  const bool is_json = media == "application/json" ||
                       (media.size() > 5 && media.compare(media.size() - 5, 5, "+json") == 0);
  if (!is_json) {
    return Fail(Error::UnsupportedMediaType("expected Content-Type application/json, got '" +
                                            (media.empty() ? std::string("none") : media) + "'"));
  }
  if (request.body.empty()) return Fail(Error::InvalidArgument("request body is empty; expected a JSON object"));
  auto j = ParseJsonText(request.body);
  if (!j) return j;
  if (!j->is_object()) return Fail(Error::InvalidArgument("request body must be a JSON object"));
  return j;
}

}  // namespace modulo::http
