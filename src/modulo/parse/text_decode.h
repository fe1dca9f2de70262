// Text decoding: finds the character encoding of a byte string (BOM, UTF-8 validity, UTF-16
// heuristics, then uchardet for legacy encodings) and converts it to UTF-8 with iconv.
//
// Thread-safety: pure functions; each call uses its own uchardet and iconv handles.
#pragma once

#include <string>
#include <string_view>

#include "modulo/core/error.h"

namespace modulo::parse {

struct DecodedText {
  std::string text;       // valid UTF-8, NUL-free, without a BOM
  std::string encoding;   // e.g. "UTF-8", "UTF-16LE", "WINDOWS-1252"
  bool replaced = false;  // some input bytes were invalid and became U+FFFD
};

// Decodes `bytes` to UTF-8. Fails with kInvalidArgument ("file does not look like text") when the
// bytes are binary: NUL bytes outside UTF-16/32 text, or a high ratio of control bytes.
[[nodiscard]] Result<DecodedText> DecodeText(std::string_view bytes);

// The encoding DecodeText would use, without converting ("" for binary-looking input).
[[nodiscard]] std::string DetectEncoding(std::string_view bytes);

}  // namespace modulo::parse
