#include "modulo/store/s3/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>

namespace modulo::store::s3 {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Trims the value and folds every run of spaces and tabs inside it into one space.
std::string CanonicalHeaderValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  bool in_space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      in_space = true;
      continue;
    }
    if (in_space && !out.empty()) out += ' ';
    in_space = false;
    out += c;
  }
  return out;
}

}  // namespace

std::string UriEncode(std::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3 / 2);
  for (unsigned char c : s) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                            c == '.' || c == '_' || c == '~';
    if (unreserved || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string HexEncode(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(digest), len));
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), mac, &len);
  return std::string(reinterpret_cast<const char*>(mac), len);
}

std::string AmzDate(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string CanonicalRequest(const SignableRequest& r, std::string* signed_headers) {
  std::string out = r.method;
  out += '\n';
  out += r.path.empty() ? std::string("/") : UriEncode(r.path, /*keep_slash=*/true);
  out += '\n';

  std::vector<std::pair<std::string, std::string>> query;
  query.reserve(r.query.size());
  for (const auto& [k, v] : r.query) query.emplace_back(UriEncode(k, false), UriEncode(v, false));
  std::sort(query.begin(), query.end());
  for (std::size_t i = 0; i < query.size(); ++i) {
    if (i > 0) out += '&';
    out += query[i].first;
    out += '=';
    out += query[i].second;
  }
  out += '\n';

  // Sorted by lower-case name; repeated names keep their order of appearance, joined by commas.
  std::map<std::string, std::string> headers;
  for (const auto& [name, value] : r.headers) {
    auto [it, fresh] = headers.emplace(Lower(name), CanonicalHeaderValue(value));
    if (!fresh) it->second += "," + CanonicalHeaderValue(value);
  }
  std::string names;
  for (const auto& [name, value] : headers) {
    out += name;
    out += ':';
    out += value;
    out += '\n';
    if (!names.empty()) names += ';';
    names += name;
  }
  out += '\n';
  out += names;
  out += '\n';
  out += r.payload_hash;
  if (signed_headers != nullptr) *signed_headers = std::move(names);
  return out;
}

std::string StringToSign(std::string_view amz_date, std::string_view region, std::string_view service,
                         std::string_view canonical_request) {
  std::string out = "AWS4-HMAC-SHA256\n";
  out += amz_date;
  out += '\n';
  out += amz_date.substr(0, 8);
  out += '/';
  out += region;
  out += '/';
  out += service;
  out += "/aws4_request\n";
  out += Sha256Hex(canonical_request);
  return out;
}

std::string SigningKey(std::string_view secret_access_key, std::string_view date, std::string_view region,
                       std::string_view service) {
  const std::string k_date = HmacSha256("AWS4" + std::string(secret_access_key), date);
  const std::string k_region = HmacSha256(k_date, region);
  const std::string k_service = HmacSha256(k_region, service);
  return HmacSha256(k_service, "aws4_request");
}

Signature Sign(const SignableRequest& r, const Credentials& credentials, std::string_view region,
               std::string_view service, std::string_view amz_date) {
  Signature s;
  s.canonical_request = CanonicalRequest(r, &s.signed_headers);
  s.string_to_sign = StringToSign(amz_date, region, service, s.canonical_request);
  const std::string date(amz_date.substr(0, 8));
  s.signature = HexEncode(HmacSha256(SigningKey(credentials.secret_access_key, date, region, service), s.string_to_sign));
  s.authorization = "AWS4-HMAC-SHA256 Credential=" + credentials.access_key_id + "/" + date + "/" + std::string(region) +
                    "/" + std::string(service) + "/aws4_request, SignedHeaders=" + s.signed_headers +
                    ", Signature=" + s.signature;
  return s;
}

void AddSigningHeaders(SignableRequest& r, const Credentials& credentials, std::string_view amz_date) {
  r.headers.emplace_back("x-amz-date", std::string(amz_date));
  if (!credentials.session_token.empty()) r.headers.emplace_back("x-amz-security-token", credentials.session_token);
}

}  // namespace modulo::store::s3
