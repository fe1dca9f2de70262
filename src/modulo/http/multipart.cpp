#include "modulo/http/multipart.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "modulo/core/request_id.h"
#include "modulo/http/url.h"

namespace modulo::http {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view TrimView(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits "a; b=c; d=\"e;f\"" into parameters, honouring quoted strings with backslash escapes.
std::vector<std::pair<std::string, std::string>> SplitParams(std::string_view v) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t i = 0;
  while (i < v.size()) {
    while (i < v.size() && (v[i] == ';' || v[i] == ' ' || v[i] == '\t')) ++i;
    std::size_t k = i;
    while (i < v.size() && v[i] != '=' && v[i] != ';') ++i;
    std::string key = Lower(TrimView(v.substr(k, i - k)));
    std::string value;
    if (i < v.size() && v[i] == '=') {
      ++i;
      while (i < v.size() && (v[i] == ' ' || v[i] == '\t')) ++i;
      if (i < v.size() && v[i] == '"') {
        ++i;
        while (i < v.size() && v[i] != '"') {
          if (v[i] == '\\' && i + 1 < v.size()) ++i;
          value.push_back(v[i++]);
        }
        if (i < v.size()) ++i;  // closing quote
      } else {
        std::size_t s = i;
        while (i < v.size() && v[i] != ';') ++i;
        value = std::string(TrimView(v.substr(s, i - s)));
      }
    }
    if (!key.empty()) out.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

}  // namespace

Result<std::string> MultipartBoundary(std::string_view content_type) {
  const auto semi = content_type.find(';');
  const std::string media = Lower(TrimView(content_type.substr(0, semi)));
  if (media != "multipart/form-data") {
    return Fail(Error::UnsupportedMediaType("expected Content-Type multipart/form-data, got '" +
                                            (media.empty() ? std::string("none") : media) + "'"));
  }
  if (semi != std::string_view::npos) {
    for (auto& [k, v] : SplitParams(content_type.substr(semi + 1))) {
      if (k == "boundary") {
        if (v.empty() || v.size() > 70) {
          return Fail(Error::InvalidArgument("multipart boundary must be 1 to 70 characters"));
        }
        return v;
      }
    }
  }
  return Fail(Error::InvalidArgument("multipart/form-data Content-Type has no boundary parameter"));
}

std::map<std::string, std::string> ParseContentDisposition(std::string_view value) {
  std::map<std::string, std::string> out;
  const auto semi = value.find(';');
  if (semi == std::string_view::npos) return out;
  std::optional<std::string> extended;
  for (auto& [k, v] : SplitParams(value.substr(semi + 1))) {
    if (k == "filename*") {
      // charset'language'percent-encoded
      const auto q1 = v.find('\'');
      const auto q2 = q1 == std::string::npos ? std::string::npos : v.find('\'', q1 + 1);
      if (q2 != std::string::npos) {
        if (auto d = PercentDecode(std::string_view(v).substr(q2 + 1))) extended = std::move(*d);
      }
    } else {
      out[k] = v;
    }
  }
  if (extended) out["filename"] = *extended;
  return out;
}

MultipartParser::MultipartParser(std::string boundary, std::filesystem::path spool_dir, Limits limits)
    : delimiter_("\r\n--" + boundary), spool_dir_(std::move(spool_dir)), limits_(limits) {
  // The first delimiter may come without the leading CRLF; prefix one so every delimiter looks alike.
  buf_ = "\r\n";
}

MultipartParser::~MultipartParser() {
  CloseFile();
  std::error_code ec;
  if (!current_file_.path.empty()) std::filesystem::remove(current_file_.path, ec);
  for (const auto& f : files_) std::filesystem::remove(f.path, ec);
}

std::vector<UploadedFile> MultipartParser::ReleaseFiles() {
  std::vector<UploadedFile> out = std::move(files_);
  files_.clear();
  return out;
}

void MultipartParser::CloseFile() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status MultipartParser::StartPart(std::string_view headers) {
  if (++parts_ > limits_.max_parts) {
    return Fail(Error::PayloadTooLarge("too many parts in multipart body (limit " +
                                       std::to_string(limits_.max_parts) + ")"));
  }
  std::map<std::string, std::string> disposition;
  std::string content_type = "application/octet-stream";
  bool has_disposition = false;
  while (!headers.empty()) {
    const auto eol = headers.find("\r\n");
    std::string_view line = headers.substr(0, eol);
    headers = eol == std::string_view::npos ? std::string_view{} : headers.substr(eol + 2);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string name = Lower(TrimView(line.substr(0, colon)));
    const std::string_view value = TrimView(line.substr(colon + 1));
    if (name == "content-disposition") {
      if (Lower(value.substr(0, 9)) != "form-data") {
        return Fail(Error::InvalidArgument("multipart part has Content-Disposition other than form-data"));
      }
      disposition = ParseContentDisposition(value);
      has_disposition = true;
    } else if (name == "content-type") {
      content_type = std::string(value);
    }
  }
  if (!has_disposition || !disposition.contains("name")) {
    return Fail(Error::InvalidArgument("multipart part without Content-Disposition name"));
  }
  if (auto fn = disposition.find("filename"); fn != disposition.end()) {
    in_file_ = true;
    current_file_ = UploadedFile{disposition["name"], fn->second, content_type, {}, 0};
    current_file_.path = spool_dir_ / ("upload-" + NewRequestId() + ".part");
    fd_ = ::open(current_file_.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd_ < 0) {
      current_file_.path.clear();
      return Fail(Error::Internal(std::string("cannot create upload spool file: ") + std::strerror(errno)));
    }
  } else {
    in_file_ = false;
    current_field_name_ = disposition["name"];
    current_field_value_.clear();
    fields_bytes_ += current_field_name_.size();
    if (fields_bytes_ > limits_.max_fields_bytes) {
      return Fail(Error::PayloadTooLarge("the form's fields exceed " + std::to_string(limits_.max_fields_bytes) +
                                         " bytes in all (files are not counted)"));
    }
  }
  return {};
}

Status MultipartParser::EmitBody(std::string_view bytes) {
  if (bytes.empty()) return {};
  if (!in_file_) {
    if (current_field_value_.size() + bytes.size() > limits_.max_field_bytes) {
      return Fail(Error::PayloadTooLarge("form field '" + current_field_name_ + "' exceeds " +
                                         std::to_string(limits_.max_field_bytes) + " bytes"));
    }
    if (fields_bytes_ + bytes.size() > limits_.max_fields_bytes) {
      return Fail(Error::PayloadTooLarge("the form's fields exceed " + std::to_string(limits_.max_fields_bytes) +
                                         " bytes in all (files are not counted)"));
    }
    fields_bytes_ += bytes.size();
    current_field_value_.append(bytes);
    return {};
  }
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Fail(Error::Unavailable(std::string("cannot write upload to disk: ") + std::strerror(errno)));
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
    current_file_.size += static_cast<std::size_t>(n);
  }
  return {};
}

Status MultipartParser::EndPart() {
  if (in_file_) {
    CloseFile();
    files_.push_back(std::move(current_file_));
    current_file_ = {};
  } else {
    fields_.emplace(std::move(current_field_name_), std::move(current_field_value_));
  }
  return {};
}

Status MultipartParser::Feed(std::string_view data) {
  buf_.append(data);
  std::size_t pos = 0;  // consumed prefix of buf_
  Status st;
  while (st) {
    std::string_view rest(buf_.data() + pos, buf_.size() - pos);
    if (state_ == State::kDone) {
      pos = buf_.size();  // epilogue is ignored
      break;
    }
    if (state_ == State::kPreamble || state_ == State::kBody) {
      const auto hit = rest.find(delimiter_);
      if (hit == std::string_view::npos) {
        // Everything except a possible delimiter prefix at the end is body (or preamble).
        const std::size_t keep = std::min(rest.size(), delimiter_.size() - 1);
        if (state_ == State::kBody) st = EmitBody(rest.substr(0, rest.size() - keep));
        pos += rest.size() - keep;
        break;
      }
      if (state_ == State::kBody) {
        st = EmitBody(rest.substr(0, hit));
        if (st) st = EndPart();
      }
      pos += hit + delimiter_.size();
      state_ = State::kAfterDelimiter;
      continue;
    }
    if (state_ == State::kAfterDelimiter) {
      if (rest.size() < 2) break;
      if (rest.substr(0, 2) == "--") {
        state_ = State::kDone;
        pos += 2;
        continue;
      }
      // Transport padding (spaces/tabs) may precede the CRLF.
      const auto crlf = rest.find("\r\n");
      if (crlf == std::string_view::npos) {
        if (rest.size() > 256) return Fail(Error::InvalidArgument("malformed multipart delimiter line"));
        break;
      }
      if (rest.substr(0, crlf).find_first_not_of(" \t") != std::string_view::npos) {
        return Fail(Error::InvalidArgument("malformed multipart delimiter line"));
      }
      pos += crlf + 2;
      state_ = State::kHeaders;
      continue;
    }
    if (state_ == State::kHeaders) {
      // An empty header block is "\r\n" straight away.
      std::size_t end;
      std::size_t skip;
      if (rest.substr(0, 2) == "\r\n") {
        end = 0;
        skip = 2;
      } else {
        end = rest.find("\r\n\r\n");
        skip = 4;
      }
      if (end == std::string_view::npos) {
        if (rest.size() > limits_.max_part_header_bytes) {
          return Fail(Error::PayloadTooLarge("multipart part headers exceed " +
                                             std::to_string(limits_.max_part_header_bytes) + " bytes"));
        }
        break;
      }
      st = StartPart(rest.substr(0, end));
      pos += end + skip;
      state_ = State::kBody;
      continue;
    }
  }
  buf_.erase(0, pos);
  return st;
}

Status MultipartParser::Finish() {
  if (state_ != State::kDone) {
    return Fail(Error::InvalidArgument("multipart body ended before its closing boundary"));
  }
  return {};
}

}  // namespace modulo::http
