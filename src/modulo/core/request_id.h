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

namespace modulo {
// A random (version 4) UUID in canonical text form, e.g. "3f2b8c1e-...".
[[nodiscard]] std::string NewUuid();
// True for a canonical lower- or upper-case UUID text.
[[nodiscard]] bool IsUuid(std::string_view s) noexcept;
}  // namespace modulo
