// The one table that maps Modulo error codes to HTTP statuses, and the JSON error body
// {"detail": "...", "code": "..."} (the FastAPI convention RAG Modulo clients expect).
#pragma once

#include <boost/beast/http/status.hpp>
#include <string>

#include "modulo/core/error.h"

namespace modulo::http {

[[nodiscard]] boost::beast::http::status ToHttpStatus(ErrorCode code) noexcept;
[[nodiscard]] std::string ErrorBody(const Error& error);

}  // namespace modulo::http
