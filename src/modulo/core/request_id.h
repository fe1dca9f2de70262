// Request ids: every HTTP response carries X-Request-ID. A client-sent id is echoed when it is
// safe to put in logs and headers (1-128 characters of [A-Za-z0-9._:-]); otherwise a new random
// id (32 hex digits) is generated.
//
// Thread-safety: both functions are thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace modulo {

[[nodiscard]] bool IsValidRequestId(std::string_view id) noexcept;
[[nodiscard]] std::string NewRequestId();

}  // namespace modulo
