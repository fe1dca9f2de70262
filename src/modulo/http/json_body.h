// Reading JSON request bodies with clear errors: 415 when the content type is not JSON, 400 naming
// the byte position when the text is not valid JSON, 400 when the top level is not an object.
#pragma once

#include <nlohmann/json.hpp>

#include "modulo/core/error.h"
#include "modulo/http/message.h"

namespace modulo::http {

[[nodiscard]] Result<nlohmann::json> ParseJsonBody(const Request& request);
[[nodiscard]] Result<nlohmann::json> ParseJsonText(std::string_view text);

}  // namespace modulo::http
