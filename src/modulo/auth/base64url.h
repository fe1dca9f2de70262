// Base64url (RFC 4648 §5) without padding, as used by JWS/JWK and by API key secrets.
//
// Decoding is strict: only the characters A-Z a-z 0-9 '-' '_' are accepted, no '=' padding, no
// whitespace, a length that leaves 1 character over (length % 4 == 1) is rejected, and the unused
// low bits of the last character must be zero (so every byte string has exactly one encoding).
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace modulo::auth {

[[nodiscard]] std::string Base64UrlEncode(std::string_view bytes);

// std::nullopt for any input that is not the canonical unpadded encoding of some byte string, or
// whose decoded size would exceed `max_decoded_bytes`.
[[nodiscard]] std::optional<std::string> Base64UrlDecode(std::string_view text,
                                                         std::size_t max_decoded_bytes = 1u << 20);

}  // namespace modulo::auth
