#include "modulo/ingest/ingest_service.h"

#include <chrono>
#include <thread>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "modulo/core/json.h"
#include "modulo/core/log.h"
#include "modulo/core/request_id.h"

namespace modulo::ingest {
namespace {

std::string FileEvent(const store::FileRecord& f, std::string_view state, const std::string& error) {
  nlohmann::json j = {{"type", "file"},    {"file_id", f.id},   {"collection_id", f.collection_id},
                      {"task_id", f.task_id}, {"state", state}, {"chunk_count", f.chunk_count},
                      {"error", error}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<ChunkingSettings> SettingsOf(const store::Collection& c, std::size_t model_max_tokens) {
  nlohmann::json settings = modulo::ParseJsonOrDiscarded(c.settings_json);
  if (settings.is_discarded() || !settings.is_object()) settings = nlohmann::json::object();
  return ChunkingSettings::FromJson(settings.value("chunking", nlohmann::json()), static_cast<int>(model_max_tokens));
}

}  // namespace

IngestService::IngestService(store::MetadataStore& store, store::BlobStore& blobs, jobs::JobQueue& queue,
                             std::shared_ptr<embed::Embedder> embedder, std::shared_ptr<const TokenSpans> tokens,
                             EventBus& events, IngestOptions options, metrics::Registry* registry)
    : store_(store),
      blobs_(blobs),
      queue_(queue),
      embedder_(std::move(embedder)),
      tokens_(std::move(tokens)),
      events_(events),
      options_(std::move(options)) {
  if (registry != nullptr) {
    bytes_ = &registry->AddCounter("modulo_ingest_bytes_total", "Bytes of files processed").With({});
    pages_ = &registry->AddCounter("modulo_ingest_pages_total", "Pages of files processed").With({});
    chunks_ = &registry->AddCounter("modulo_ingest_chunks_total", "Chunks written").With({});
    files_ = &registry->AddCounter("modulo_ingest_files_total", "Files processed, by outcome", {"outcome"});
  }
}

void IngestService::Publish(const std::string& collection_id, const std::string& task_id, const std::string& json) {
  if (!task_id.empty()) events_.Publish("task:" + task_id, json);
  if (!collection_id.empty()) events_.Publish("collection:" + collection_id, json);
}

Result<std::vector<Accepted>> IngestService::Accept(const std::string& collection_id, std::vector<Upload> uploads,
                                                    const store::FileLimits& limits) {
  auto collection = store_.GetCollection(collection_id);
  if (!collection) return Fail(collection.error());
  std::vector<Accepted> out;
  out.reserve(uploads.size());
  bool queued_any = false;
  for (auto& up : uploads) {
    Accepted a;
    a.filename = up.filename;
    auto fail = [&](const Error& e) {
      a.status = "failed";
      a.error = e.message();
      a.error_code = e.code();
      a.error_details = e.details();
      std::error_code ec;
      std::filesystem::remove(up.spooled, ec);
      out.push_back(a);
    };
    if (up.size == 0) {
      fail(Error::InvalidArgument("file is empty"));
      continue;
    }
    auto digest = store::Sha256File(up.spooled);
    if (!digest) {
      fail(digest.error());
      continue;
    }
    const std::string format = parse::DetectFormat(up.spooled, up.filename);
    auto key = blobs_.Put(up.spooled, *digest);
    if (!key) {
      fail(key.error());
      continue;
    }
    store::FileRecord f;
    f.collection_id = collection_id;
    f.filename = up.filename;
    f.size_bytes = static_cast<std::int64_t>(up.size);
    f.content_hash = *digest;
    f.mime_type = up.content_type;
    f.format = format;
    f.storage_key = *key;
    f.task_id = NewUuid();  // recorded before the job exists, so a crash in between is repaired
    auto added = store_.AddFile(f, limits);
    if (!added) {
      fail(added.error());
      continue;
    }
    a.file_id = added->first.id;
    a.task_id = added->first.task_id;
    if (!added->second) {
      a.status = "duplicate";
      out.push_back(a);
      continue;
    }
    jobs::NewJob job;
    job.id = a.task_id;
    job.kind = kIngestJob;
    job.collection_id = collection_id;
    job.file_id = a.file_id;
    job.max_attempts = options_.max_attempts;
    // A queue that is briefly away (Redis restarting) gets two more tries; after that the file
    // stays queued and the next Reconcile() (workers run it periodically) enqueues it.
    Status enqueued = {};
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(attempt == 1 ? 200 : 1000));
      auto j = queue_.Enqueue(job);
      if (j || j.error().code() == ErrorCode::kAlreadyExists) {
        enqueued = {};
        break;
      }
      enqueued = Fail(j.error());
    }
    if (!enqueued) {
      log::Warn("could not enqueue a task; it will be retried",
                {{"file_id", a.file_id}, {"error", enqueued.error().message()}});
    }
    a.status = "processing";
    queued_any = true;
    out.push_back(a);
  }
  if (queued_any) {
    (void)store_.SetCollectionStatus(collection_id, store::CollectionStatus::kProcessing);
    if (on_enqueued_) on_enqueued_();
  }
  return out;
}

Status IngestService::ProcessFile(const jobs::Job& job, jobs::JobContext& ctx) {
  auto file = store_.GetFile(job.file_id);
  if (!file) return Fail(file.error());  // deleted meanwhile: permanent
  auto collection = store_.GetCollection(file->collection_id);
  if (!collection) return Fail(collection.error());
  // While a reindex builds the next generation, new files go into both.
  std::vector<std::int64_t> generations = {collection->generation};
  if (collection->next_generation > collection->generation) generations.push_back(collection->next_generation);
  (void)store_.SetFileStatus(file->id, store::FileStatus::kProcessing, "");
  Publish(file->collection_id, job.id, FileEvent(*file, "processing", ""));
  auto st = ProcessInto(job.id, *file, *collection, generations, ctx, 0, 100);
  (void)RefreshCollectionStatus(file->collection_id);
  return st;
}

Status IngestService::ProcessInto(const std::string& task_id, store::FileRecord& file,
                                  const store::Collection& collection, const std::vector<std::int64_t>& generations,
                                  jobs::JobContext& ctx, double from, double to) {
  auto progress = [&](const char* stage, double pct) { ctx.Progress(stage, from + (to - from) * pct / 100.0); };
  // Anything that is the file's own fault fails the file permanently with the reason.
  auto fail_file = [&](const Error& e) -> Status {
    store::FileOutcome outcome;
    outcome.status = store::FileStatus::kFailed;
    outcome.format = file.format;
    outcome.error = e.message();
    for (auto g : generations) {
      if (auto st = store_.ReplaceFileChunks(file.id, g, {}, outcome); !st) return st;
    }
    if (files_) files_->With({"failed"}).Inc();
    file.error = e.message();
    Publish(file.collection_id, task_id, FileEvent(file, "failed", e.message()));
    return Fail(e);
  };

  auto settings = SettingsOf(collection, embedder_->info().max_tokens);
  if (!settings) return fail_file(settings.error());

  progress("parse", 5);
  auto path = blobs_.Fetch(file.storage_key);
  if (!path) return Fail(path.error());
  auto doc = parse::ParseFile(*path, file.filename, options_.limits);
  if (!doc) {
    if (jobs::WorkerPool::IsPermanent(doc.error())) return fail_file(doc.error());
    return Fail(doc.error());
  }
  if (bytes_) bytes_->Inc(static_cast<double>(file.size_bytes));
  if (pages_) pages_->Inc(doc->page_count);
  if (ctx.cancelled()) return Fail(Error::Cancelled("stopping"));

  progress("chunk", 15);
  SentenceEmbedder sentence_embedder;
  if (settings->strategy == "semantic") {
    sentence_embedder = [this](std::span<const std::string> texts) -> Result<std::vector<std::vector<float>>> {
      std::vector<std::vector<float>> out;
      for (std::size_t i = 0; i < texts.size(); i += options_.embed_batch) {
        const auto n = std::min(options_.embed_batch, texts.size() - i);
        auto e = embedder_->Embed(texts.subspan(i, n), embed::InputKind::kPassage);
        if (!e) return Fail(e.error());
        for (std::size_t r = 0; r < e->size(); ++r) out.emplace_back(e->Row(r).begin(), e->Row(r).end());
      }
      return out;
    };
  }
  auto pieces = ChunkDocument(*doc, *settings, *tokens_, sentence_embedder);
  if (!pieces) return Fail(pieces.error());
  if (pieces->size() > options_.max_chunks_per_file) {
    return Fail(Error::PayloadTooLarge("the file makes " + std::to_string(pieces->size()) + " chunks, over the limit of " +
                                       std::to_string(options_.max_chunks_per_file) + " per file"));
  }

  // Embed the indexed chunks in batches; parents (hierarchical) are context only.
  std::vector<store::Chunk> chunks;
  chunks.reserve(pieces->size());
  std::vector<std::size_t> to_embed;
  for (auto& p : *pieces) {
    store::Chunk k;
    k.chunk_number = p.chunk_number;
    k.text = std::move(p.text);
    k.page_number = p.page;
    k.section_path = std::move(p.section_path);
    k.char_start = p.char_start;
    k.char_end = p.char_end;
    k.token_count = p.token_count;
    k.parent_number = p.parent_number;
    k.is_parent = p.is_parent;
    if (!k.is_parent) to_embed.push_back(chunks.size());
    chunks.push_back(std::move(k));
  }
  progress("embed", 20);  // the chunk stage ends here, before the first batch is embedded
  for (std::size_t i = 0; i < to_embed.size(); i += options_.embed_batch) {
    if (ctx.cancelled()) return Fail(Error::Cancelled("stopping"));
    const auto n = std::min(options_.embed_batch, to_embed.size() - i);
    std::vector<std::string> texts;
    texts.reserve(n);
    for (std::size_t k = 0; k < n; ++k) texts.push_back(chunks[to_embed[i + k]].text);
    auto vectors = embedder_->Embed(texts, embed::InputKind::kPassage);
    if (!vectors) return Fail(vectors.error());
    for (std::size_t k = 0; k < n; ++k) {
      auto row = vectors->Row(k);
      chunks[to_embed[i + k]].embedding.assign(row.begin(), row.end());
    }
    progress("embed", 20 + 70.0 * static_cast<double>(i + n) / static_cast<double>(to_embed.size()));
  }

  progress("index", 92);
  store::FileOutcome outcome;
  outcome.status = store::FileStatus::kCompleted;
  outcome.format = doc->format;
  outcome.page_count = doc->page_count;
  outcome.warnings_json = nlohmann::json(doc->warnings).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const std::size_t indexed = to_embed.size();
  for (std::size_t g = 0; g < generations.size(); ++g) {
    auto copy = g + 1 < generations.size() ? chunks : std::move(chunks);
    if (auto st = store_.ReplaceFileChunks(file.id, generations[g], std::move(copy), outcome); !st) return st;
  }
  if (chunks_) chunks_->Inc(static_cast<double>(indexed));
  if (files_) files_->With({"completed"}).Inc();
  file.chunk_count = static_cast<std::int64_t>(indexed);
  Publish(file.collection_id, task_id, FileEvent(file, "completed", ""));
  return {};
}

Result<jobs::Job> IngestService::StartReindex(const std::string& collection_id, const nlohmann::json& chunking) {
  auto collection = store_.GetCollection(collection_id);
  if (!collection) return Fail(collection.error());
  nlohmann::json settings = modulo::ParseJsonOrDiscarded(collection->settings_json);
  if (settings.is_discarded() || !settings.is_object()) settings = nlohmann::json::object();
  if (!chunking.is_null()) {
    auto parsed = ChunkingSettings::FromJson(chunking, static_cast<int>(embedder_->info().max_tokens));
    if (!parsed) return Fail(parsed.error());
    settings["chunking"] = parsed->ToJson();
  }
  auto generation = store_.BeginReindex(collection_id, settings.dump());
  if (!generation) return Fail(generation.error());
  jobs::NewJob job;
  job.kind = kReindexJob;
  job.collection_id = collection_id;
  job.payload_json = nlohmann::json{{"generation", *generation}}.dump();
  job.max_attempts = options_.max_attempts;
  auto j = queue_.Enqueue(job);
  if (j && on_enqueued_) on_enqueued_();
  return j;
}

Status IngestService::ReindexCollection(const jobs::Job& job, jobs::JobContext& ctx) {
  nlohmann::json payload = modulo::ParseJsonOrDiscarded(job.payload_json);
  if (payload.is_discarded() || !payload.contains("generation") || !payload["generation"].is_number_integer()) {
    return Fail(Error::InvalidArgument("reindex task without a generation"));
  }
  const std::int64_t generation = payload["generation"].get<std::int64_t>();
  auto collection = store_.GetCollection(job.collection_id);
  if (!collection) return Fail(collection.error());
  if (collection->next_generation != generation) {
    return Fail(Error::InvalidArgument("collection is no longer being reindexed into generation " +
                                       std::to_string(generation)));
  }
  auto files = store_.ListFiles(job.collection_id);
  if (!files) return Fail(files.error());
  const double n = static_cast<double>(std::max<std::size_t>(files->size(), 1));
  for (std::size_t i = 0; i < files->size(); ++i) {
    // Every file, even one still queued or in flight elsewhere: writing a generation is
    // idempotent, and a file that started before the reindex would otherwise miss it.
    auto& f = (*files)[i];
    auto st = ProcessInto(job.id, f, *collection, {generation}, ctx, 100.0 * i / n, 100.0 * (i + 1) / n);
    if (!st && !jobs::WorkerPool::IsPermanent(st.error())) return st;  // retry the whole reindex later
  }
  if (auto st = store_.FinishReindex(job.collection_id, generation); !st) return st;
  Publish(job.collection_id, job.id,
          nlohmann::json{{"type", "reindex"}, {"collection_id", job.collection_id}, {"generation", generation},
                         {"state", "completed"}}
              .dump());
  return RefreshCollectionStatus(job.collection_id);
}

void IngestService::OnJobFinished(const jobs::Job& job, jobs::JobState state, const std::string& error) {
  if (state != jobs::JobState::kDead && state != jobs::JobState::kFailed) return;
  if (job.kind == kReindexJob) {
    // A reindex that will not run again is given up, so the collection can be reindexed later.
    nlohmann::json p = modulo::ParseJsonOrDiscarded(job.payload_json);
    if (!p.is_discarded() && p.contains("generation") && p["generation"].is_number_integer()) {
      if (store_.AbortReindex(job.collection_id, p["generation"].get<std::int64_t>())) {
        Publish(job.collection_id, job.id,
                nlohmann::json{{"type", "reindex"}, {"collection_id", job.collection_id}, {"state", "failed"},
                               {"error", error}}
                    .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      }
    }
    return;
  }
  if (job.kind != kIngestJob) return;
  auto file = store_.GetFile(job.file_id);
  if (!file || file->status == store::FileStatus::kFailed || file->status == store::FileStatus::kCompleted) return;
  const std::string reason = state == jobs::JobState::kDead
                                 ? "gave up after " + std::to_string(job.attempts) + " attempts: " + error
                                 : error;
  (void)store_.SetFileStatus(file->id, store::FileStatus::kFailed, reason);
  Publish(file->collection_id, job.id, FileEvent(*file, "failed", reason));
  (void)RefreshCollectionStatus(file->collection_id);
}

Result<int> IngestService::Reconcile() {
  auto pending = store_.ListFilesWithStatus({store::FileStatus::kQueued, store::FileStatus::kProcessing});
  if (!pending) return Fail(pending.error());
  int touched = 0;
  for (const auto& f : *pending) {
    auto job = queue_.Get(f.task_id);
    if (!job && job.error().code() == ErrorCode::kNotFound) {
      jobs::NewJob nj;
      nj.id = f.task_id.empty() ? NewUuid() : f.task_id;
      nj.kind = kIngestJob;
      nj.collection_id = f.collection_id;
      nj.file_id = f.id;
      nj.max_attempts = options_.max_attempts;
      if (queue_.Enqueue(nj)) ++touched;
      continue;
    }
    if (!job) continue;
    if (job->state == jobs::JobState::kDead || job->state == jobs::JobState::kFailed) {
      OnJobFinished(*job, job->state, job->error.empty() ? "processing stopped" : job->error);
      ++touched;
    }
  }
  // Reindexes whose task is gone or finished without switching are given up.
  auto collections = store_.ListCollections("");
  if (collections) {
    for (const auto& c : *collections) {
      if (c.next_generation <= c.generation) continue;
      auto tasks = queue_.ListForCollection(c.id);
      if (!tasks) continue;
      const bool live = std::any_of(tasks->begin(), tasks->end(), [](const jobs::Job& j) {
        return j.kind == kReindexJob && (j.state == jobs::JobState::kQueued || j.state == jobs::JobState::kRunning);
      });
      if (!live && store_.AbortReindex(c.id, c.next_generation)) ++touched;
    }
  }
  if (touched > 0 && on_enqueued_) on_enqueued_();
  return touched;
}

Status IngestService::RefreshCollectionStatus(const std::string& collection_id) {
  auto counts = store_.CountFilesByStatus(collection_id);
  if (!counts) return Fail(counts.error());
  auto n = [&](store::FileStatus st) { return counts->contains(st) ? counts->at(st) : 0; };
  const bool pending = n(store::FileStatus::kQueued) + n(store::FileStatus::kProcessing) > 0;
  const bool any_failed = n(store::FileStatus::kFailed) > 0, any_completed = n(store::FileStatus::kCompleted) > 0;
  const auto status = pending                        ? store::CollectionStatus::kProcessing
                      : (any_failed && !any_completed) ? store::CollectionStatus::kError
                                                       : store::CollectionStatus::kCompleted;
  return store_.SetCollectionStatus(collection_id, status);
}

}  // namespace modulo::ingest
