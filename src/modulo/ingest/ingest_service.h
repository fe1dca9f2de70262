// IngestService: turns uploaded files into searchable chunks, durably, in the background.
//
// Accept() (called by the upload route, on the blocking pool) hashes each spooled upload, stores
// it in the BlobStore, records the file (deduplicated by content within the collection) and
// enqueues an "ingest_file" job whose id was written on the file first. ProcessFile() is that
// job's handler: parse → chunk (in model tokens) → embed in batches → one transaction that
// replaces the file's chunks and records the outcome. It is idempotent: a retried or re-run job
// replaces the chunks, never appends. Reconcile() repairs what a crash can leave behind: a file
// whose job was never enqueued gets one; a file whose job is dead or failed is marked failed
// with the job's reason. Progress is published on the EventBus topics task:<id> and
// collection:<id>.
//
// Thread-safety: all methods are thread-safe; all block (call them off the I/O threads).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "modulo/core/error.h"
#include "modulo/core/event_bus.h"
#include "modulo/embed/embedder.h"
#include "modulo/ingest/chunker.h"
#include "modulo/jobs/job_queue.h"
#include "modulo/jobs/worker_pool.h"
#include "modulo/metrics/registry.h"
#include "modulo/parse/parser.h"
#include "modulo/store/blob_store.h"
#include "modulo/store/metadata_store.h"

namespace modulo::ingest {

inline constexpr const char* kIngestJob = "ingest_file";
inline constexpr const char* kReindexJob = "reindex_collection";

struct IngestOptions {
  std::size_t embed_batch = 100;  // chunks per embedding call (the seed's batch size)
  parse::ParseLimits limits;
  int max_attempts = 4;           // 1 + the seed's 3 retries
  std::size_t max_chunks_per_file = 100000;  // a file that makes more fails (no partial index)
};

// One uploaded file waiting to be accepted.
struct Upload {
  std::filesystem::path spooled;  // temporary file (moved into the blob store)
  std::string filename;           // as the client sent it
  std::string content_type;       // as the client declared it
  std::uint64_t size = 0;
};

struct Accepted {
  std::string filename;
  std::string file_id;
  std::string task_id;
  std::string status;  // "processing", or "duplicate" when the same bytes were already in the collection
  std::string error;   // set when this file could not be accepted
  std::optional<ErrorCode> error_code;  // with `error`: why (kQuotaExceeded, kInvalidArgument, ...)
  std::string error_details;            // with `error`: the error's JSON details, if any
};

class IngestService {
 public:
  IngestService(store::MetadataStore& store, store::BlobStore& blobs, jobs::JobQueue& queue,
                std::shared_ptr<embed::Embedder> embedder, std::shared_ptr<const TokenSpans> tokens, EventBus& events,
                IngestOptions options, metrics::Registry* registry = nullptr);

  // Records uploads for a collection and queues their processing. Each file gets its own outcome.
  // `limits` are the uploader's quotas, enforced atomically per file.
  [[nodiscard]] Result<std::vector<Accepted>> Accept(const std::string& collection_id, std::vector<Upload> uploads,
                                                     const store::FileLimits& limits = {});

  // The "ingest_file" job handler.
  [[nodiscard]] Status ProcessFile(const jobs::Job& job, jobs::JobContext& ctx);

  // Starts rebuilding a collection into a new generation (optionally with new chunking settings)
  // while searches keep reading the old one; returns the task.
  [[nodiscard]] Result<jobs::Job> StartReindex(const std::string& collection_id, const nlohmann::json& chunking);
  // The "reindex_collection" job handler: every file into the new generation, then the switch.
  [[nodiscard]] Status ReindexCollection(const jobs::Job& job, jobs::JobContext& ctx);

  // Marks the file of a job that will not run again as failed.
  void OnJobFinished(const jobs::Job& job, jobs::JobState state, const std::string& error);

  // Repairs files left without a live job; returns how many files it touched.
  [[nodiscard]] Result<int> Reconcile();

  // Sets the collection's status from its files: processing while any is queued or processing.
  [[nodiscard]] Status RefreshCollectionStatus(const std::string& collection_id);

  // Called after a job is enqueued (wakes the worker pool).
  void SetOnEnqueued(std::function<void()> fn) { on_enqueued_ = std::move(fn); }

  [[nodiscard]] const embed::ModelInfo& model() const noexcept { return embedder_->info(); }

 private:
  void Publish(const std::string& collection_id, const std::string& task_id, const std::string& json);
  // Parses, chunks and embeds one file and writes its chunks into each of `generations`;
  // progress is reported within [from, to] percent.
  [[nodiscard]] Status ProcessInto(const std::string& task_id, store::FileRecord& file,
                                   const store::Collection& collection, const std::vector<std::int64_t>& generations,
                                   jobs::JobContext& ctx, double from, double to);

  store::MetadataStore& store_;
  store::BlobStore& blobs_;
  jobs::JobQueue& queue_;
  std::shared_ptr<embed::Embedder> embedder_;
  std::shared_ptr<const TokenSpans> tokens_;
  EventBus& events_;
  IngestOptions options_;
  std::function<void()> on_enqueued_;
  metrics::Counter* bytes_ = nullptr;
  metrics::Counter* pages_ = nullptr;
  metrics::Counter* chunks_ = nullptr;
  metrics::CounterFamily* files_ = nullptr;  // {outcome}
};

}  // namespace modulo::ingest
