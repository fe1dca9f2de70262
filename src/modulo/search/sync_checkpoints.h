// SyncCheckpoints: where IndexSync keeps the replay position of indexes that several processes
// share (Milvus vectors, PostgreSQL full-text search), so that the position survives restarts and
// one process at a time replays a collection. In-process indexes need none of this: each process
// builds its own from the store and keeps its position in memory.
//
// A position belongs to a collection: the generation its indexes hold, the collection version
// they are current to, the last chunk id added and the last removal applied. A holder takes a
// lease (Acquire), saves progress after every batch (Save, which also renews the lease) and lets
// go (Release). A holder that dies loses its lease when it expires; the next holder resumes from
// the last saved position, and replaying a batch twice is harmless (upserts and removals are
// idempotent).
//
// Implementations: PgSyncCheckpoints (search/postgres/, a row per collection beside the store's
// own tables). Thread-safety: all methods are thread-safe and block (network).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "modulo/core/error.h"

namespace modulo::search {

struct SyncPosition {
  std::int64_t generation = 0;  // 0: nothing built yet
  std::int64_t version = 0;
  std::int64_t last_chunk_id = 0;
  std::int64_t last_removal_seq = 0;
};

class SyncCheckpoints {
 public:
  virtual ~SyncCheckpoints() = default;
  // Takes (or renews) the lease on `collection_id`'s replay until now + ttl and returns the
  // stored position; nullopt when another owner's lease is live.
  [[nodiscard]] virtual Result<std::optional<SyncPosition>> Acquire(const std::string& collection_id,
                                                                    const std::string& owner,
                                                                    std::chrono::milliseconds ttl) = 0;
  // Stores progress and renews the lease; Conflict when `owner` no longer holds it.
  [[nodiscard]] virtual Status Save(const std::string& collection_id, const std::string& owner,
                                    const SyncPosition& position, std::chrono::milliseconds ttl) = 0;
  // Gives the lease up (no error when it was not held).
  [[nodiscard]] virtual Status Release(const std::string& collection_id, const std::string& owner) = 0;
};

}  // namespace modulo::search
