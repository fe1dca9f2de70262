#include "modulo/http/status.h"

#include <nlohmann/json.hpp>

#include "modulo/core/json.h"

namespace modulo::http {

using boost::beast::http::status;

status ToHttpStatus(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInvalidArgument: return status::bad_request;
    case ErrorCode::kNotFound: return status::not_found;
    case ErrorCode::kAlreadyExists: return status::conflict;
    case ErrorCode::kConflict: return status::conflict;
    case ErrorCode::kUnauthenticated: return status::unauthorized;
    case ErrorCode::kPermissionDenied: return status::forbidden;
    case ErrorCode::kQuotaExceeded: return status::too_many_requests;
    case ErrorCode::kRateLimited: return status::too_many_requests;
    case ErrorCode::kPayloadTooLarge: return status::payload_too_large;
    case ErrorCode::kHeaderTooLarge: return status::request_header_fields_too_large;
    case ErrorCode::kUnsupportedMediaType: return status::unsupported_media_type;
    case ErrorCode::kMethodNotAllowed: return status::method_not_allowed;
    case ErrorCode::kDeadlineExceeded: return status::gateway_timeout;
    case ErrorCode::kUnavailable: return status::service_unavailable;
    case ErrorCode::kCancelled: return status::service_unavailable;
    case ErrorCode::kUnimplemented: return status::not_implemented;
    case ErrorCode::kInternal: return status::internal_server_error;
  }
  return status::internal_server_error;
}

std::string ErrorBody(const Error& error) {
  nlohmann::json j = {{"detail", error.message()}, {"code", ErrorCodeName(error.code())}};
  if (!error.details().empty()) {
    auto details = modulo::ParseJsonOrDiscarded(error.details());
    if (details.is_object()) {
      for (auto& [k, v] : details.items()) {
        if (!j.contains(k)) j[k] = std::move(v);
      }
    }
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace modulo::http
