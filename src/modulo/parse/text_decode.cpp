#include "modulo/parse/text_decode.h"

#include <iconv.h>
#include <uchardet/uchardet.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include "modulo/parse/document_builder.h"

namespace modulo::parse {
namespace {

constexpr std::size_t kSample = 64 * 1024;           // bytes inspected by the heuristics
constexpr std::size_t kDetectorInput = 1024 * 1024;  // bytes fed to uchardet

struct UchardetDeleter {
  void operator()(uchardet_t u) const noexcept { uchardet_delete(u); }
};
using UchardetPtr = std::unique_ptr<std::remove_pointer_t<uchardet_t>, UchardetDeleter>;

// iconv_t is a pointer type; (iconv_t)-1 signals failure.
struct IconvDeleter {
  void operator()(void* cd) const noexcept { iconv_close(static_cast<iconv_t>(cd)); }
};
using IconvPtr = std::unique_ptr<void, IconvDeleter>;

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// UTF-16 without a BOM: in mostly-ASCII text one byte of every pair is zero.
std::string GuessUtf16(std::string_view sample) {
  const std::size_t pairs = sample.size() / 2;
  if (pairs < 2) return "";
  std::size_t zero_even = 0, zero_odd = 0;
  for (std::size_t i = 0; i + 1 < sample.size(); i += 2) {
    zero_even += sample[i] == '\0';
    zero_odd += sample[i + 1] == '\0';
  }
  const double even = static_cast<double>(zero_even) / pairs, odd = static_cast<double>(zero_odd) / pairs;
  if (odd > 0.4 && even < 0.05) return "UTF-16LE";
  if (even > 0.4 && odd < 0.05) return "UTF-16BE";
  return "";
}

// Binary data: NUL bytes or many control bytes other than whitespace and ESC.
bool LooksBinary(std::string_view sample) {
  if (sample.empty()) return false;
  std::size_t control = 0;
  for (const char ch : sample) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == 0) return true;
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v' && c != 0x1B) || c == 0x7F) {
      ++control;
    }
  }
  return static_cast<double>(control) / static_cast<double>(sample.size()) > 0.05;
}

// Strips a trailing partial UTF-8 sequence (the sample may end mid-character).
std::string_view CutToCodePoint(std::string_view s) {
  std::size_t end = s.size();
  std::size_t back = 0;
  while (end > 0 && back < 4 && (static_cast<unsigned char>(s[end - 1]) & 0xC0) == 0x80) --end, ++back;
  if (end > 0 && static_cast<unsigned char>(s[end - 1]) >= 0xC0) return s.substr(0, end - 1);
  return s;
}

// Valid multi-byte UTF-8 sequences and invalid bytes in `s`.
std::pair<std::size_t, std::size_t> CountUtf8(std::string_view s) {
  std::size_t multibyte = 0, invalid = 0;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    const std::size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (len > 1 && i + len <= s.size() && IsValidUtf8(s.substr(i, len))) {
      ++multibyte;
      i += len;
    } else {
      ++invalid;
      ++i;
    }
  }
  return {multibyte, invalid};
}

std::string UchardetGuess(std::string_view bytes) {
  UchardetPtr detector(uchardet_new());
  if (!detector) return "";
  const std::string_view input = bytes.substr(0, kDetectorInput);
  if (uchardet_handle_data(detector.get(), input.data(), input.size()) != 0) return "";
  uchardet_data_end(detector.get());
  const char* charset = uchardet_get_charset(detector.get());
  return charset != nullptr ? std::string(charset) : std::string();
}

struct Detection {
  std::string encoding;
  std::size_t bom = 0;
};

Detection Detect(std::string_view bytes) {
  if (StartsWith(bytes, "\xEF\xBB\xBF")) return {"UTF-8", 3};
  if (StartsWith(bytes, std::string_view("\xFF\xFE\x00\x00", 4))) return {"UTF-32LE", 4};
  if (StartsWith(bytes, std::string_view("\x00\x00\xFE\xFF", 4))) return {"UTF-32BE", 4};
  if (StartsWith(bytes, "\xFF\xFE")) return {"UTF-16LE", 2};
  if (StartsWith(bytes, "\xFE\xFF")) return {"UTF-16BE", 2};
  const std::string_view sample = bytes.substr(0, kSample);
  if (std::string utf16 = GuessUtf16(sample); !utf16.empty()) return {utf16, 0};
  if (LooksBinary(sample)) return {"", 0};
  if (IsValidUtf8(bytes)) return {"UTF-8", 0};
  // UTF-8 with a few damaged bytes stays UTF-8 (the damaged bytes become U+FFFD).
  const auto [multibyte, invalid] = CountUtf8(CutToCodePoint(sample));
  if (multibyte >= 4 && invalid * 10 <= multibyte) return {"UTF-8", 0};
  std::string guess = UchardetGuess(bytes);
  const std::string lower = AsciiLower(guess);
  if (lower == "utf-8") return {"UTF-8", 0};
  // uchardet answers "" when unsure and "ASCII" for 7-bit text with stray bytes; such bytes are
  // most often Windows-1252 / Latin-1 in the documents users upload (Windows-1252 is a superset).
  if (guess.empty() || lower == "ascii" || lower == "iso-8859-1") guess = "WINDOWS-1252";
  return {guess, 0};
}

// Converts with iconv; invalid or incomplete input sequences become U+FFFD.
Result<std::string> Convert(std::string_view in, const std::string& from, bool& replaced) {
  IconvPtr cd(iconv_open("UTF-8", from.c_str()));
  if (cd.get() == reinterpret_cast<void*>(static_cast<std::intptr_t>(-1))) {
    cd.release();
    return Fail(Error::InvalidArgument("unsupported text encoding " + from));
  }
  std::string out;
  out.reserve(in.size() + in.size() / 2);
  char buffer[16 * 1024];
  auto* src = const_cast<char*>(in.data());
  std::size_t src_left = in.size();
  // Bytes per replaced unit: skip a whole code unit of fixed-width encodings.
  const std::size_t unit = StartsWith(from, "UTF-32") ? 4 : StartsWith(from, "UTF-16") ? 2 : 1;
  while (src_left > 0) {
    char* dst = buffer;
    std::size_t dst_left = sizeof(buffer);
    const std::size_t rc = iconv(static_cast<iconv_t>(cd.get()), &src, &src_left, &dst, &dst_left);
    out.append(buffer, static_cast<std::size_t>(dst - buffer));
    if (rc != static_cast<std::size_t>(-1)) break;
    if (errno == E2BIG) continue;
    if (errno == EILSEQ || errno == EINVAL) {
      out += "\xEF\xBF\xBD";
      replaced = true;
      const std::size_t skip = std::min(unit, src_left);
      src += skip;
      src_left -= skip;
      iconv(static_cast<iconv_t>(cd.get()), nullptr, nullptr, nullptr, nullptr);  // reset shift state
      continue;
    }
    return Fail(Error::Internal("text conversion from " + from + " failed"));
  }
  return out;
}

}  // namespace

std::string DetectEncoding(std::string_view bytes) {
  return Detect(bytes).encoding;
}

Result<DecodedText> DecodeText(std::string_view bytes) {
  const Detection detection = Detect(bytes);
  if (detection.encoding.empty()) {
    return Fail(Error::InvalidArgument("file does not look like text (binary content: NUL or control bytes)"));
  }
  DecodedText decoded;
  decoded.encoding = detection.encoding;
  const std::string_view body = bytes.substr(detection.bom);
  std::string utf8;
  if (detection.encoding == "UTF-8") {
    utf8 = std::string(body);
  } else {
    auto converted = Convert(body, detection.encoding, decoded.replaced);
    if (!converted) return Fail(std::move(converted.error()));
    utf8 = std::move(*converted);
  }
  // Decoded UTF-16/32 or a legacy encoding may still reveal binary content.
  if (detection.encoding != "UTF-8" && LooksBinary(std::string_view(utf8).substr(0, kSample))) {
    return Fail(Error::InvalidArgument("file does not look like text (binary content: NUL or control bytes)"));
  }
  const bool valid = IsValidUtf8(utf8);
  decoded.replaced = decoded.replaced || !valid;
  decoded.text = SanitizeUtf8(utf8);
  return decoded;
}

}  // namespace modulo::parse
