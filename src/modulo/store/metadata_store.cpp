#include "modulo/store/metadata_store.h"

namespace modulo::store {

std::string_view ToString(CollectionStatus s) noexcept {
  switch (s) {
    case CollectionStatus::kCreated: return "created";
    case CollectionStatus::kProcessing: return "processing";
    case CollectionStatus::kCompleted: return "completed";
    case CollectionStatus::kError: return "error";
  }
  return "error";
}

std::string_view ToString(FileStatus s) noexcept {
  switch (s) {
    case FileStatus::kQueued: return "queued";
    case FileStatus::kProcessing: return "processing";
    case FileStatus::kCompleted: return "completed";
    case FileStatus::kFailed: return "failed";
  }
  return "failed";
}

std::optional<CollectionStatus> ParseCollectionStatus(std::string_view s) noexcept {
  for (auto v : {CollectionStatus::kCreated, CollectionStatus::kProcessing, CollectionStatus::kCompleted,
                 CollectionStatus::kError}) {
    if (ToString(v) == s) return v;
  }
  return std::nullopt;
}

std::optional<FileStatus> ParseFileStatus(std::string_view s) noexcept {
  for (auto v : {FileStatus::kQueued, FileStatus::kProcessing, FileStatus::kCompleted, FileStatus::kFailed}) {
    if (ToString(v) == s) return v;
  }
  return std::nullopt;
}

}  // namespace modulo::store
