// Errors in the OpenAI API shape, for the OpenAI-compatible routes under /v1, so that OpenAI
// clients (SDKs, LangChain, ...) understand them:
//   {"error": {"message": "...", "type": "invalid_request_error", "param": null, "code": "..."}}
// The HTTP status still comes from the one ErrorCode table (http/status.h).
#pragma once

#include "modulo/core/error.h"
#include "modulo/http/message.h"

namespace modulo::api {

[[nodiscard]] http::Response OpenAiError(const Error& error, const char* param = nullptr);

}  // namespace modulo::api
