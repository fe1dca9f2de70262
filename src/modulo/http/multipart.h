// MultipartParser: incremental multipart/form-data (RFC 7578) parsing that streams file parts to
// disk as the bytes arrive, so an upload of any size costs a bounded amount of memory.
//
// Feed() takes the body in chunks of any size and split; each part with a filename is written to
// a new file in the spool directory; parts without one are kept in memory up to a limit.
// Finish() checks that the closing delimiter arrived. On any error the files written so far are
// removed by the destructor unless Release() was called.
//
// Thread-safety: not thread-safe; one parser per request.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "modulo/core/error.h"
#include "modulo/http/message.h"

namespace modulo::http {

// The boundary parameter of a multipart/form-data Content-Type; InvalidArgument or
// UnsupportedMediaType naming the problem otherwise.
[[nodiscard]] Result<std::string> MultipartBoundary(std::string_view content_type);

// Parses a Content-Disposition header value into its parameters (name, filename, and
// filename* per RFC 5987, which wins over filename).
[[nodiscard]] std::map<std::string, std::string> ParseContentDisposition(std::string_view value);

class MultipartParser {
 public:
  struct Limits {
    std::size_t max_parts = 10000;
    std::size_t max_part_header_bytes = 16 * 1024;
    std::size_t max_field_bytes = 1024 * 1024;  // per in-memory (non-file) field
    std::size_t max_fields_bytes = 1024 * 1024;  // all in-memory fields of one request together
  };

  MultipartParser(std::string boundary, std::filesystem::path spool_dir, Limits limits);
  MultipartParser(std::string boundary, std::filesystem::path spool_dir)
      : MultipartParser(std::move(boundary), std::move(spool_dir), Limits{}) {}
  ~MultipartParser();
  MultipartParser(const MultipartParser&) = delete;
  MultipartParser& operator=(const MultipartParser&) = delete;

  [[nodiscard]] Status Feed(std::string_view data);
  [[nodiscard]] Status Finish();

  // Hands the parsed parts to the caller, who becomes responsible for the files.
  std::vector<UploadedFile> ReleaseFiles();
  std::multimap<std::string, std::string> ReleaseFields() { return std::move(fields_); }

 private:
  enum class State { kPreamble, kAfterDelimiter, kHeaders, kBody, kDone };
  Status StartPart(std::string_view headers);
  Status EmitBody(std::string_view bytes);
  Status EndPart();
  void CloseFile();

  std::string delimiter_;  // "\r\n--" + boundary
  std::filesystem::path spool_dir_;
  Limits limits_;
  State state_ = State::kPreamble;
  std::string buf_;  // bytes not yet consumed
  std::size_t parts_ = 0;
  // Current part.
  bool in_file_ = false;
  int fd_ = -1;
  UploadedFile current_file_;
  std::string current_field_name_;
  std::string current_field_value_;
  std::size_t fields_bytes_ = 0;  // in-memory field bytes held so far (names and values)
  std::vector<UploadedFile> files_;
  std::multimap<std::string, std::string> fields_;
};

}  // namespace modulo::http
