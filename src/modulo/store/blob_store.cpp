#include "modulo/store/blob_store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

namespace modulo::store {
namespace {

bool IsHexDigest(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Status FsyncPath(const std::filesystem::path& p, bool directory) {
  const int fd = ::open(p.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return Fail(Error::Unavailable("cannot open " + p.string() + ": " + std::strerror(errno)));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Fail(Error::Unavailable("cannot fsync " + p.string() + ": " + std::strerror(errno)));
  return {};
}

}  // namespace

Result<std::string> Sha256File(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Fail(Error::Unavailable("cannot read " + file.string() + ": " + std::strerror(errno)));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<unsigned char> buf(1 << 20);
  while (true) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return Fail(Error::Unavailable("cannot read " + file.string() + ": " + std::strerror(errno)));
    }
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

std::filesystem::path LocalBlobStore::PathOf(const std::string& key) const {
  return root_ / key.substr(0, 2) / key;
}

Result<std::string> LocalBlobStore::Put(const std::filesystem::path& file, const std::string& sha256) {
  if (!IsHexDigest(sha256)) return Fail(Error::InvalidArgument("blob key must be a sha256 hex digest"));
  const auto dest = PathOf(sha256);
  std::error_code ec;
  std::filesystem::create_directories(dest.parent_path(), ec);
  if (ec) return Fail(Error::Unavailable("cannot create " + dest.parent_path().string() + ": " + ec.message()));
  if (std::filesystem::exists(dest, ec)) {
    std::filesystem::remove(file, ec);  // same content is already stored
    return sha256;
  }
  if (auto st = FsyncPath(file, false); !st) return Fail(st.error());
  std::filesystem::rename(file, dest, ec);
  if (ec) {
    // Another filesystem: copy, then sync the copy.
    std::filesystem::copy_file(file, dest, std::filesystem::copy_options::overwrite_existing, ec);
    if (ec) return Fail(Error::Unavailable("cannot store blob " + sha256 + ": " + ec.message()));
    if (auto st = FsyncPath(dest, false); !st) return Fail(st.error());
    std::filesystem::remove(file, ec);
  }
  if (auto st = FsyncPath(dest.parent_path(), true); !st) return Fail(st.error());
  return sha256;
}

Result<std::filesystem::path> LocalBlobStore::Fetch(const std::string& key) {
  if (!IsHexDigest(key)) return Fail(Error::InvalidArgument("invalid blob key"));
  auto p = PathOf(key);
  std::error_code ec;
  if (!std::filesystem::exists(p, ec)) return Fail(Error::NotFound("blob " + key + " is missing from the store"));
  return p;
}

Status LocalBlobStore::Delete(const std::string& key) {
  if (!IsHexDigest(key)) return Fail(Error::InvalidArgument("invalid blob key"));
  std::error_code ec;
  std::filesystem::remove(PathOf(key), ec);
  if (ec) return Fail(Error::Unavailable("cannot delete blob " + key + ": " + ec.message()));
  return {};
}

}  // namespace modulo::store
