#include "modulo/embed/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "modulo/core/json.h"

namespace modulo::embed {
namespace {

constexpr std::uint64_t kMaxHeaderBytes = 100u << 20;  // the format's own limit is 100 MB

TensorDtype ParseDtype(const std::string& s) {
  if (s == "F32") return TensorDtype::kF32;
  if (s == "F16") return TensorDtype::kF16;
  if (s == "BF16") return TensorDtype::kBF16;
  if (s == "I64") return TensorDtype::kI64;
  if (s == "I32") return TensorDtype::kI32;
  return TensorDtype::kOther;
}

std::size_t DtypeBytes(const std::string& s) {
  if (s == "F64" || s == "I64" || s == "U64") return 8;
  if (s == "F32" || s == "I32" || s == "U32") return 4;
  if (s == "F16" || s == "BF16" || s == "I16" || s == "U16") return 2;
  if (s == "I8" || s == "U8" || s == "BOOL" || s == "F8_E4M3" || s == "F8_E5M2") return 1;
  return 0;
}

struct FdCloser {
  void operator()(int* fd) const {
    if (fd != nullptr && *fd >= 0) ::close(*fd);
  }
};

}  // namespace

std::int64_t TensorInfo::NumElements() const {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

float HalfToFloat(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::uint32_t exp = (h >> 10) & 0x1fu;
  std::uint32_t mant = h & 0x3ffu;
  std::uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      bits = sign | static_cast<std::uint32_t>(127 - 15 - e) << 23 | (mant & 0x3ffu) << 13;
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | mant << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

Result<std::shared_ptr<const MappedFile>> MappedFile::Open(const std::string& path) {
  int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) {
    if (errno == ENOENT) return Fail(Error::NotFound("no such file: " + path));
    return Fail(Error::Unavailable("cannot open " + path + ": " + std::strerror(errno)));
  }
  std::unique_ptr<int, FdCloser> fd(&raw);
  struct stat st {};
  if (::fstat(raw, &st) != 0) return Fail(Error::Unavailable("cannot stat " + path + ": " + std::strerror(errno)));
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size == 0) return Fail(Error::InvalidArgument(path + " is empty"));
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, raw, 0);
  if (p == MAP_FAILED) return Fail(Error::Unavailable("cannot map " + path + ": " + std::strerror(errno)));
  return std::make_shared<const MappedFile>(Key{}, static_cast<const std::byte*>(p), size);
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
}

Result<SafetensorsFile> SafetensorsFile::Open(const std::string& path) {
  auto file = MappedFile::Open(path);
  if (!file) return Fail(std::move(file.error()));
  return Parse(std::move(*file), path);
}

Result<SafetensorsFile> SafetensorsFile::Parse(std::shared_ptr<const MappedFile> file, std::string path) {
  const auto bytes = file->bytes();
  auto corrupt = [&](const std::string& why) {
    return Fail(Error::InvalidArgument("corrupt safetensors file " + path + ": " + why));
  };
  if (bytes.size() < 8) return corrupt("shorter than its 8-byte header length");
  std::uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);  // little-endian, as is the host
  if (header_len < 2 || header_len > kMaxHeaderBytes || header_len > bytes.size() - 8) {
    return corrupt("header length " + std::to_string(header_len) + " does not fit the file of " +
                   std::to_string(bytes.size()) + " bytes");
  }
  const char* hdr = reinterpret_cast<const char*>(bytes.data() + 8);
  nlohmann::json json = modulo::ParseJsonOrDiscarded(std::string_view(hdr, header_len));
  if (json.is_discarded() || !json.is_object()) return corrupt("header is not a JSON object");

  SafetensorsFile out;
  out.path_ = std::move(path);
  out.data_start_ = 8 + static_cast<std::size_t>(header_len);
  const std::size_t data_size = bytes.size() - out.data_start_;
  for (const auto& [name, value] : json.items()) {
    if (name == "__metadata__") continue;
    if (!value.is_object()) return corrupt("entry '" + name + "' is not an object");
    const auto dtype = value.find("dtype");
    const auto shape = value.find("shape");
    const auto offsets = value.find("data_offsets");
    if (dtype == value.end() || !dtype->is_string() || shape == value.end() || !shape->is_array() ||
        offsets == value.end() || !offsets->is_array() || offsets->size() != 2 || !(*offsets)[0].is_number_unsigned() ||
        !(*offsets)[1].is_number_unsigned()) {
      return corrupt("entry '" + name + "' lacks a valid dtype, shape or data_offsets");
    }
    TensorInfo info;
    info.dtype_name = dtype->get<std::string>();
    info.dtype = ParseDtype(info.dtype_name);
    std::uint64_t elements = 1;
    for (const auto& d : *shape) {
      if (!d.is_number_unsigned()) return corrupt("entry '" + name + "' has a non-integer dimension");
      const auto dim = d.get<std::uint64_t>();
      if (dim != 0 && elements > std::numeric_limits<std::uint32_t>::max() / dim) {
        return corrupt("entry '" + name + "' is implausibly large");
      }
      elements *= dim;
      info.shape.push_back(static_cast<std::int64_t>(dim));
    }
    const auto begin = (*offsets)[0].get<std::uint64_t>();
    const auto end = (*offsets)[1].get<std::uint64_t>();
    if (begin > end || end > data_size) {
      return corrupt("entry '" + name + "' has data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                     ") outside the " + std::to_string(data_size) + "-byte data section (truncated file?)");
    }
    const std::size_t width = DtypeBytes(info.dtype_name);
    if (width != 0 && elements * width != end - begin) {
      return corrupt("entry '" + name + "' has " + std::to_string(end - begin) + " bytes for " +
                     std::to_string(elements) + " elements of " + info.dtype_name);
    }
    info.offset = static_cast<std::size_t>(begin);
    info.size = static_cast<std::size_t>(end - begin);
    out.tensors_.emplace(name, std::move(info));
  }
  out.file_ = std::move(file);
  return out;
}

const TensorInfo* SafetensorsFile::Find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

std::span<const std::byte> SafetensorsFile::Data(const TensorInfo& info) const {
  return file_->bytes().subspan(data_start_ + info.offset, info.size);
}

Result<std::vector<float>> SafetensorsFile::ReadF32(const std::string& name,
                                                    std::span<const std::int64_t> expected_shape) const {
  const TensorInfo* info = Find(name);
  if (info == nullptr) return Fail(Error::InvalidArgument(path_ + " has no tensor '" + name + "'"));
  if (!expected_shape.empty() && !std::equal(expected_shape.begin(), expected_shape.end(), info->shape.begin(),
                                             info->shape.end())) {
    std::string want, got;
    for (auto d : expected_shape) want += std::to_string(d) + ",";
    for (auto d : info->shape) got += std::to_string(d) + ",";
    return Fail(Error::InvalidArgument(path_ + ": tensor '" + name + "' has shape [" + got + "], expected [" + want + "]"));
  }
  const auto data = Data(*info);
  const auto n = static_cast<std::size_t>(info->NumElements());
  std::vector<float> out(n);
  switch (info->dtype) {
    case TensorDtype::kF32:
      std::memcpy(out.data(), data.data(), n * sizeof(float));
      break;
    case TensorDtype::kF16:
    case TensorDtype::kBF16:
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t v;
        std::memcpy(&v, data.data() + 2 * i, 2);
        out[i] = info->dtype == TensorDtype::kF16 ? HalfToFloat(v) : Bf16ToFloat(v);
      }
      break;
    default:
      return Fail(Error::InvalidArgument(path_ + ": tensor '" + name + "' has unsupported dtype " + info->dtype_name));
  }
  return out;
}

}  // namespace modulo::embed
