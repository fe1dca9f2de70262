#include "modulo/embed/safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <unistd.h>
#include <filesystem>
#include <fstream>

#include "modulo/embed/model.h"
#include "modulo/embed/test_util.h"

namespace modulo::embed {
namespace {

namespace fs = std::filesystem;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("modulo_safetensors_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& bytes) {
    const auto path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path;
  }
  static std::string Image(const std::string& header, const std::string& data) {
    std::string out(8, '\0');
    const std::uint64_t n = header.size();
    std::memcpy(out.data(), &n, 8);
    return out + header + data;
  }
  fs::path dir_;
};

TEST_F(SafetensorsTest, ReadsF32F16Bf16) {
  std::string data;
  const float f[2] = {1.5f, -2.25f};
  data.append(reinterpret_cast<const char*>(f), 8);
  const std::uint16_t h[2] = {0x3e00, 0xc080};   // 1.5, -2.25 in IEEE half
  data.append(reinterpret_cast<const char*>(h), 4);
  const std::uint16_t b[2] = {0x3fc0, 0xc010};   // 1.5, -2.25 in bfloat16
  data.append(reinterpret_cast<const char*>(b), 4);
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("h":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},"b":{"dtype":"BF16","shape":[1,2],"data_offsets":[12,16]}})";
  auto st = SafetensorsFile::Open(Write("ok.safetensors", Image(header, data)));
  ASSERT_TRUE(st.has_value()) << st.error().ToString();
  for (const char* name : {"a", "h", "b"}) {
    auto v = st->ReadF32(name);
    ASSERT_TRUE(v.has_value()) << name;
    EXPECT_EQ(*v, (std::vector<float>{1.5f, -2.25f})) << name;
  }
  const std::int64_t want[] = {2, 2};
  EXPECT_FALSE(st->ReadF32("b", want).has_value());
  EXPECT_FALSE(st->ReadF32("missing").has_value());
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_TRUE(std::isinf(HalfToFloat(0x7c00)));
}

TEST_F(SafetensorsTest, CorruptFilesAreErrorsNotCrashes) {
  const std::string good_header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"empty", ""},
      {"short", "abc"},
      {"huge_header_len", std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + "{}"},
      {"header_past_end", Image(good_header, "").substr(0, 20)},
      {"not_json", Image("{not json", std::string(8, '\0'))},
      {"not_object", Image("[1,2,3]", "")},
      {"missing_fields", Image(R"({"a":{"dtype":"F32"}})", "")},
      {"offsets_past_end", Image(good_header, std::string(4, '\0'))},
      {"size_mismatch", Image(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0'))},
      {"reversed_offsets", Image(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", std::string(8, '\0'))},
      {"negative_dim", Image(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", std::string(8, '\0'))},
      {"overflow_dims",
       Image(R"({"a":{"dtype":"F32","shape":[4294967295,4294967295,16],"data_offsets":[0,8]}})", std::string(8, '\0'))},
  };
  for (const auto& [name, bytes] : cases) {
    auto st = SafetensorsFile::Open(Write(std::string(name) + ".safetensors", bytes));
    ASSERT_FALSE(st.has_value()) << name;
    EXPECT_EQ(st.error().code(), ErrorCode::kInvalidArgument) << name << ": " << st.error().ToString();
  }
  auto missing = SafetensorsFile::Open((dir_ / "nope.safetensors").string());
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

TEST_F(SafetensorsTest, UnsupportedDtypeIsAnError) {
  auto st = SafetensorsFile::Open(
      Write("i8.safetensors", Image(R"({"a":{"dtype":"I8","shape":[4],"data_offsets":[0,4]}})", "abcd")));
  ASSERT_TRUE(st.has_value());
  EXPECT_FALSE(st->ReadF32("a").has_value());
}

// A model directory whose weights are cut short, or corrupted, fails to load with a clear error.
TEST_F(SafetensorsTest, TruncatedAndCorruptModelDirectories) {
  ASSERT_TRUE(testing::ModelPresent()) << testing::MissingModelMessage();
  const fs::path src = testing::ModelDir();
  const fs::path model = dir_ / "all-MiniLM-L6-v2";
  fs::create_directories(model / "1_Pooling");
  for (const char* f : {"config.json", "vocab.txt", "tokenizer_config.json", "sentence_bert_config.json",
                        "1_Pooling/config.json"}) {
    fs::copy_file(src / f, model / f);
  }
  std::string weights;
  {
    std::ifstream in(src / "model.safetensors", std::ios::binary);
    weights.assign(std::istreambuf_iterator<char>(in), {});
  }
  // Truncated: the header promises more data than the file holds.
  Write("all-MiniLM-L6-v2/model.safetensors", weights.substr(0, weights.size() / 2));
  auto m = LoadBertModel(model.string(), {});
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(m.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(m.error().message().find("truncated"), std::string::npos) << m.error().message();

  // One flipped byte in the data: loads structurally, but the checksum catches it.
  std::string flipped = weights;
  flipped[flipped.size() - 100] ^= 0x55;
  Write("all-MiniLM-L6-v2/model.safetensors", flipped);
  ModelLoadOptions opt;
  opt.expected_sha256 = kMiniLmSafetensorsSha256;
  m = LoadBertModel(model.string(), opt);
  ASSERT_FALSE(m.has_value());
  EXPECT_NE(m.error().message().find("sha256"), std::string::npos) << m.error().message();
  EXPECT_NE(m.error().message().find("scripts/fetch-model.sh"), std::string::npos);

  // Malformed config.json.
  Write("all-MiniLM-L6-v2/model.safetensors", weights);
  Write("all-MiniLM-L6-v2/config.json", "{\"hidden_size\": \"big\"");
  m = LoadBertModel(model.string(), {});
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(m.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(SafetensorsTest, MissingModelSaysHowToFetchIt) {
  auto m = LoadBertModel((dir_ / "no-such-model").string(), {});
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(m.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(m.error().message().find("scripts/fetch-model.sh"), std::string::npos) << m.error().message();
}

}  // namespace
}  // namespace modulo::embed
