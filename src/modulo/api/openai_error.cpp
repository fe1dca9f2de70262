#include "modulo/api/openai_error.h"

#include "modulo/http/status.h"

namespace modulo::api {

http::Response OpenAiError(const Error& error, const char* param) {
  const char* type = "invalid_request_error";
  switch (error.code()) {
    case ErrorCode::kUnauthenticated: type = "authentication_error"; break;
    case ErrorCode::kPermissionDenied: type = "permission_error"; break;
    case ErrorCode::kNotFound: type = "not_found_error"; break;
    case ErrorCode::kRateLimited:
    case ErrorCode::kQuotaExceeded: type = "rate_limit_error"; break;
    case ErrorCode::kUnavailable:
    case ErrorCode::kDeadlineExceeded:
    case ErrorCode::kCancelled:
    case ErrorCode::kInternal:
    case ErrorCode::kUnimplemented: type = "server_error"; break;
    default: break;
  }
  nlohmann::json body = {{"error",
                          {{"message", error.message()},
                           {"type", type},
                           {"param", param ? nlohmann::json(param) : nlohmann::json(nullptr)},
                           {"code", ErrorCodeName(error.code())}}}};
  return http::Response::Json(body, http::ToHttpStatus(error.code()));
}

}  // namespace modulo::api
