// SafetensorsFile: a read-only view of a .safetensors file (the Hugging Face tensor format).
//
// The file is memory-mapped; the JSON header is parsed and validated up front (every tensor's
// dtype, shape and byte range must be consistent and inside the file), so later reads cannot
// run off the mapping. Tensors in F32, F16 and BF16 are converted to fp32 on request.
// A corrupt or truncated file yields a modulo::Error (kInvalidArgument), never a crash.
//
// Thread-safety: immutable after Open(); const members may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "modulo/core/error.h"

namespace modulo::embed {

enum class TensorDtype { kF32, kF16, kBF16, kI64, kI32, kOther };

struct TensorInfo {
  TensorDtype dtype = TensorDtype::kOther;
  std::string dtype_name;            // as written in the header, e.g. "F32"
  std::vector<std::int64_t> shape;
  std::size_t offset = 0;            // byte offset from the start of the data section
  std::size_t size = 0;              // bytes
  [[nodiscard]] std::int64_t NumElements() const;
};

// A read-only memory mapping of a whole file; unmapped on destruction.
class MappedFile {
 public:
  [[nodiscard]] static Result<std::shared_ptr<const MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }

 private:
  struct Key {};  // makes the constructor usable by make_shared inside Open() only

 public:
  MappedFile(Key, const std::byte* data, std::size_t size) : data_(data), size_(size) {}

 private:
  const std::byte* data_;
  std::size_t size_;
};

class SafetensorsFile {
 public:
  [[nodiscard]] static Result<SafetensorsFile> Open(const std::string& path);
  // Parses an in-memory image (used by Open and by tests).
  [[nodiscard]] static Result<SafetensorsFile> Parse(std::shared_ptr<const MappedFile> file, std::string path);

  [[nodiscard]] const std::map<std::string, TensorInfo>& tensors() const noexcept { return tensors_; }
  [[nodiscard]] const TensorInfo* Find(const std::string& name) const;
  // Raw bytes of a tensor (valid while this object or the mapping lives).
  [[nodiscard]] std::span<const std::byte> Data(const TensorInfo& info) const;
  // The tensor converted to fp32; fails if absent, of an unsupported dtype, or (when
  // expected_shape is non-empty) of another shape.
  [[nodiscard]] Result<std::vector<float>> ReadF32(const std::string& name,
                                                   std::span<const std::int64_t> expected_shape = {}) const;
  [[nodiscard]] const std::shared_ptr<const MappedFile>& mapping() const noexcept { return file_; }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  std::shared_ptr<const MappedFile> file_;
  std::string path_;
  std::size_t data_start_ = 0;
  std::map<std::string, TensorInfo> tensors_;
};

// Converts IEEE half and bfloat16 values to fp32.
[[nodiscard]] float HalfToFloat(std::uint16_t h) noexcept;
[[nodiscard]] inline float Bf16ToFloat(std::uint16_t b) noexcept {
  std::uint32_t u = static_cast<std::uint32_t>(b) << 16;
  float f;
  __builtin_memcpy(&f, &u, sizeof f);
  return f;
}

}  // namespace modulo::embed
