#include "modulo/http/multipart.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace modulo::http {
namespace {

namespace fs = std::filesystem;

class MultipartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("modulo_multipart_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  static std::string Slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::size_t FilesInDir() const {
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()));
  }
  fs::path dir_;
};

std::string Body(const std::string& boundary, const std::string& file_content) {
  return "preamble to ignore\r\n--" + boundary +
         "\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nHello world\r\n--" + boundary +
         "\r\nContent-Disposition: form-data; name=\"files\"; filename=\"../a\\\"b.txt\"\r\n"
         "Content-Type: text/plain\r\n\r\n" +
         file_content + "\r\n--" + boundary +
         "\r\nContent-Disposition: form-data; name=\"files\"; filename*=UTF-8''%E6%96%87.txt\r\n\r\n\r\n--" +
         boundary + "--\r\nepilogue";
}

TEST_F(MultipartTest, ParsesFieldsAndFilesAcrossEverySplit) {
  const std::string boundary = "----b0undary";
  // File content that contains near-delimiters.
  const std::string content = "line1\r\n--" + boundary.substr(0, 5) + "\r\n-\r\n--\r\nend\r\n--";
  const std::string body = Body(boundary, content);
  for (std::size_t split = 1; split < body.size(); split += 3) {
    MultipartParser p(boundary, dir_);
    ASSERT_TRUE(p.Feed(std::string_view(body).substr(0, split)));
    ASSERT_TRUE(p.Feed(std::string_view(body).substr(split)));
    ASSERT_TRUE(p.Finish()) << "split " << split;
    auto files = p.ReleaseFiles();
    auto fields = p.ReleaseFields();
    ASSERT_EQ(files.size(), 2u);
    EXPECT_EQ(files[0].filename, "../a\"b.txt");  // kept exactly; storing it safely is the caller's job
    EXPECT_EQ(files[0].content_type, "text/plain");
    EXPECT_EQ(Slurp(files[0].path), content) << "split " << split;
    EXPECT_EQ(files[0].size, content.size());
    EXPECT_EQ(files[1].filename, "文.txt");
    EXPECT_EQ(files[1].size, 0u);
    ASSERT_EQ(fields.size(), 1u);
    EXPECT_EQ(fields.begin()->second, "Hello world");
    for (auto& f : files) fs::remove(f.path);
  }
}

TEST_F(MultipartTest, ByteAtATimeAndBinaryContent) {
  std::string content(5000, '\0');
  std::mt19937 rng(7);
  for (auto& c : content) c = static_cast<char>(rng());
  const std::string body = Body("xyz", content);
  MultipartParser p("xyz", dir_);
  for (char c : body) ASSERT_TRUE(p.Feed(std::string_view(&c, 1)));
  ASSERT_TRUE(p.Finish());
  auto files = p.ReleaseFiles();
  EXPECT_EQ(Slurp(files[0].path), content);
}

TEST_F(MultipartTest, TruncatedBodyFailsAndLeavesNoFiles) {
  const std::string body = Body("xyz", "data");
  {
    MultipartParser p("xyz", dir_);
    ASSERT_TRUE(p.Feed(std::string_view(body).substr(0, body.size() / 2)));
    EXPECT_FALSE(p.Finish());
  }
  EXPECT_EQ(FilesInDir(), 0u);
}

TEST_F(MultipartTest, LimitsAreEnforced) {
  MultipartParser::Limits limits;
  limits.max_parts = 1;
  MultipartParser p("xyz", dir_, limits);
  auto st = p.Feed(Body("xyz", "data"));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), ErrorCode::kPayloadTooLarge);

  MultipartParser::Limits small;
  small.max_field_bytes = 4;
  MultipartParser q("xyz", dir_, small);
  EXPECT_FALSE(q.Feed(Body("xyz", "data")));

  MultipartParser r("xyz", dir_);
  EXPECT_FALSE(r.Feed("--xyz\r\n" + std::string(20000, 'h')));
}

TEST_F(MultipartTest, FieldsAreBoundedInTotal) {
  // Ten fields of 200 KB each are each under the 1 MiB per-field limit, and 2 MB together.
  std::string body;
  for (int i = 0; i < 10; ++i) {
    body += "--xyz\r\nContent-Disposition: form-data; name=\"f" + std::to_string(i) + "\"\r\n\r\n" +
            std::string(200000, 'x') + "\r\n";
  }
  body += "--xyz--\r\n";
  MultipartParser p("xyz", dir_);
  auto st = p.Feed(body);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), ErrorCode::kPayloadTooLarge);
  EXPECT_NE(st.error().message().find("fields exceed"), std::string::npos) << st.error().message();
}

TEST_F(MultipartTest, PartsWithoutNameAreRejected) {
  MultipartParser p("xyz", dir_);
  EXPECT_FALSE(p.Feed("--xyz\r\nContent-Type: text/plain\r\n\r\nx\r\n--xyz--"));
}

TEST(MultipartBoundaryTest, ParsesAndValidates) {
  EXPECT_EQ(*MultipartBoundary("multipart/form-data; boundary=abc"), "abc");
  EXPECT_EQ(*MultipartBoundary("Multipart/Form-Data; charset=x; boundary=\"a b\""), "a b");
  EXPECT_EQ(MultipartBoundary("application/json").error().code(), ErrorCode::kUnsupportedMediaType);
  EXPECT_EQ(MultipartBoundary("multipart/form-data").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(MultipartBoundary("multipart/form-data; boundary=" + std::string(71, 'a')));
}

}  // namespace
}  // namespace modulo::http
