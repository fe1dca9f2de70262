#include "modulo/auth/secret_box.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include "modulo/auth/base64url.h"

namespace modulo::auth {
namespace {

constexpr unsigned char kVersion = 0x01;
constexpr std::size_t kNonce = 12, kTag = 16, kKeyId = 8;

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

std::string Hex(const unsigned char* bytes, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    hex += kDigits[bytes[i] >> 4];
    hex += kDigits[bytes[i] & 15];
  }
  return hex;
}

const unsigned char* U(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

std::optional<std::string> FromHex(std::string_view s) {
  if (s.size() % 2 != 0) return std::nullopt;
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (std::size_t i = 0; i < s.size(); i += 2) {
    const int hi = nib(s[i]), lo = nib(s[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi << 4 | lo);
  }
  return out;
}

// Standard or url-safe base64, padding optional.
std::optional<std::string> FromBase64(std::string_view s) {
  std::string t(s);
  while (!t.empty() && t.back() == '=') t.pop_back();
  for (char& c : t) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return Base64UrlDecode(t, 64);
}

}  // namespace

Result<SecretBox> SecretBox::FromKey(std::string_view key) {
  if (key.size() != kKeyBytes) {
    return Fail(Error::InvalidArgument("the server key must be 32 bytes, got " + std::to_string(key.size())));
  }
  SecretBox b;
  std::memcpy(b.key_.data(), key.data(), kKeyBytes);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(U(key), key.size(), digest);
  std::memcpy(b.key_id_.data(), digest, kKeyId);
  return b;
}

Result<SecretBox> SecretBox::FromText(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.remove_suffix(1);
  if (text.size() == 64) {
    if (auto raw = FromHex(text)) return FromKey(*raw);
  }
  if (auto raw = FromBase64(text); raw && raw->size() == kKeyBytes) return FromKey(*raw);
  return Fail(Error::InvalidArgument(
      "MODULO_SECRET_KEY must be 64 hex digits or the base64 of 32 bytes (e.g. `openssl rand -hex 32`)"));
}

Result<SecretBox> SecretBox::Load(std::string_view configured, const std::filesystem::path& data_dir) {
  if (!configured.empty()) return FromText(configured);
  const auto path = data_dir / "secret.key";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    unsigned char raw[kKeyBytes];
    if (RAND_bytes(raw, sizeof raw) != 1) return Fail(Error::Internal("no random bytes for the server key"));
    const std::string hex = Hex(raw, sizeof raw) + "\n";
    // Written to a private temporary file, synced, then linked into place: a crash leaves either no
    // key or the whole key, and two servers starting at once agree on the first one linked.
    unsigned char tag[8];
    if (RAND_bytes(tag, sizeof tag) != 1) return Fail(Error::Internal("no random bytes"));
    const auto tmp = data_dir / ("secret.key.tmp." + Hex(tag, sizeof tag));
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return Fail(Error::Unavailable("cannot create " + tmp.string() + ": " + std::strerror(errno)));
    const bool ok = ::write(fd, hex.data(), hex.size()) == static_cast<ssize_t>(hex.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) {
      std::filesystem::remove(tmp, ec);
      return Fail(Error::Unavailable("cannot write " + tmp.string()));
    }
    const int linked = ::link(tmp.c_str(), path.c_str());
    const int link_errno = errno;
    std::filesystem::remove(tmp, ec);
    if (linked != 0 && link_errno != EEXIST) {
      return Fail(Error::Unavailable("cannot create " + path.string() + ": " + std::strerror(link_errno)));
    }
    if (const int dir = ::open(data_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
      (void)::fsync(dir);
      ::close(dir);
    }
  }
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in && !in.eof()) return Fail(Error::Unavailable("cannot read " + path.string()));
  auto box = FromText(text);
  if (!box) return Fail(std::move(box.error()).Wrap(path.string()));
  return box;
}

Result<std::string> SecretBox::Seal(std::string_view plaintext, std::string_view context) const {
  std::string out(1 + kKeyId + kNonce + plaintext.size() + kTag, '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  p[0] = kVersion;
  std::memcpy(p + 1, key_id_.data(), kKeyId);
  unsigned char* nonce = p + 1 + kKeyId;
  if (RAND_bytes(nonce, kNonce) != 1) return Fail(Error::Internal("no random bytes for a nonce"));
  Ctx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  unsigned char* ct = nonce + kNonce;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonce, nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key_.data(), nonce) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, U(context), static_cast<int>(context.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), ct, &len, U(plaintext), static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), ct + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, ct + plaintext.size()) != 1) {
    return Fail(Error::Internal("encryption failed"));
  }
  return out;
}

Result<std::string> SecretBox::Open(std::string_view sealed, std::string_view context) const {
  if (sealed.size() < kOverhead || static_cast<unsigned char>(sealed[0]) != kVersion) {
    return Fail(Error::InvalidArgument("not a sealed secret"));
  }
  const auto* p = U(sealed);
  if (std::memcmp(p + 1, key_id_.data(), kKeyId) != 0) {
    return Fail(Error::Conflict(
        "the secret was encrypted with another server key (set the same MODULO_SECRET_KEY on every server)"));
  }
  const unsigned char* nonce = p + 1 + kKeyId;
  const unsigned char* ct = nonce + kNonce;
  const std::size_t ct_len = sealed.size() - kOverhead;
  std::string out(ct_len, '\0');
  Ctx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  unsigned char tag[kTag];
  std::memcpy(tag, ct + ct_len, kTag);
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonce, nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key_.data(), nonce) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, U(context), static_cast<int>(context.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, ct, static_cast<int>(ct_len)) !=
          1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag, tag) != 1) {
    return Fail(Error::Internal("decryption failed"));
  }
  int final_len = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len, &final_len) != 1) {
    OPENSSL_cleanse(out.data(), out.size());
    return Fail(Error::PermissionDenied("the secret does not verify (altered, or sealed for another record)"));
  }
  return out;
}

std::string SecretBox::KeyId() const {
  return Hex(key_id_.data(), key_id_.size());
}

}  // namespace modulo::auth
