// Reading JSON request bodies with clear errors: 415 when the content type is not JSON, 400 naming
// the byte position when the text is not valid JSON, 400 when the top level is not an object.
#pragma once

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string_view>

#include "modulo/core/error.h"
#include "modulo/http/message.h"

namespace modulo::http {

[[nodiscard]] Result<nlohmann::json> ParseJsonBody(const Request& request);
[[nodiscard]] Result<nlohmann::json> ParseJsonText(std::string_view text);

// InvalidArgument unless `body` is an object whose keys are all among `keys` ("unknown field 'x'").
[[nodiscard]] Status OnlyKeys(const nlohmann::json& body, std::initializer_list<std::string_view> keys);

}  // namespace modulo::http
