// modulo: the one binary. This file is the only place where objects are created and wired.
#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>

#include "modulo/api/collections_routes.h"
#include "modulo/api/embeddings_routes.h"
#include "modulo/api/openapi.h"
#include "modulo/api/system_routes.h"
#include "modulo/core/config.h"
#include "modulo/core/event_bus.h"
#include "modulo/core/health.h"
#include "modulo/core/log.h"
#include "modulo/core/thread_pool.h"
#include "modulo/embed/embedding_cache.h"
#include "modulo/embed/local_embedder.h"
#include "modulo/embed/query_batcher.h"
#include "modulo/http/server.h"
#include "modulo/ingest/ingest_service.h"
#include "modulo/ingest/token_spans.h"
#include "modulo/jobs/sqlite/sqlite_job_queue.h"
#include "modulo/jobs/worker_pool.h"
#include "modulo/store/blob_store.h"
#include "modulo/store/sqlite/database.h"
#include "modulo/store/sqlite/sqlite_metadata_store.h"
#include "modulo/metrics/registry.h"

#ifndef MODULO_VERSION
#define MODULO_VERSION "0.0.0"
#endif

namespace {

using namespace modulo;

// Adds one option per declared setting that has a flag; values land in `values`.
std::map<std::string, CLI::Option*> AddSettingFlags(CLI::App& cmd, std::map<std::string, std::string>& values) {
  std::map<std::string, CLI::Option*> opts;
  for (const auto& spec : SettingSpecs()) {
    if (spec.flag.empty()) continue;
    opts[spec.flag] = cmd.add_option("--" + spec.flag, values[spec.flag], spec.description + " [" + spec.name + "]");
  }
  return opts;
}

Result<Settings> Load(const std::string& config_file, const std::map<std::string, CLI::Option*>& opts,
                      const std::map<std::string, std::string>& values) {
  ConfigSources src;
  src.env = ReadEnvironment();
  src.file = config_file;
  if (src.file.empty()) {
    if (auto it = src.env.find("MODULO_CONFIG"); it != src.env.end()) src.file = it->second;
  }
  for (const auto& [flag, opt] : opts) {
    if (opt->count() > 0) src.flags[flag] = values.at(flag);
  }
  return LoadSettings(src);
}

// Loads the configured embedder; an error names what is missing and how to get it.
Result<api::EmbeddingService> MakeEmbeddingService(const Settings& settings, ThreadPool& cpu_pool,
                                                   std::shared_ptr<embed::EmbeddingCache>& cache,
                                                   std::shared_ptr<embed::LocalEmbedder>& local_out) {
  embed::LocalEmbedderOptions eo;
  eo.model_dir = settings.model_dir;
  auto precision = embed::ParsePrecision(settings.embed_precision);
  if (!precision) return Fail(precision.error());
  eo.precision = *precision;
  eo.threads = settings.embed_threads;
  eo.query_prefix = settings.query_prefix;
  eo.passage_prefix = settings.passage_prefix;
  auto local = embed::LocalEmbedder::Create(eo);
  if (!local) return Fail(std::move(local.error()).Wrap("loading the embedding model from " + settings.model_dir));
  local_out = std::shared_ptr<embed::LocalEmbedder>(std::move(*local));
  std::shared_ptr<embed::Embedder> engine = local_out;
  api::EmbeddingService service;
  if (settings.embedding_cache_size > 0) {
    cache = std::make_shared<embed::EmbeddingCache>(static_cast<std::size_t>(settings.embedding_cache_size));
    service.embedder = std::make_shared<embed::CachingEmbedder>(engine, cache);
  } else {
    service.embedder = engine;
  }
  embed::QueryBatcherOptions bo;
  bo.max_wait = std::chrono::microseconds(settings.embed_batch_wait_us);
  bo.max_batch = static_cast<std::size_t>(settings.embed_max_batch);
  service.batcher = std::make_shared<embed::QueryBatcher>(engine, cpu_pool, bo, cache);
  return service;
}

int Serve(const Settings& settings) {
  const auto started = std::chrono::steady_clock::now();
  log::Init(log::ParseLevel(settings.log_level),
            settings.log_format == "json" ? log::Format::kJson : log::Format::kText);

  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path data_dir = fs::absolute(settings.data_dir, ec);
  const fs::path spool_dir = data_dir / "spool";
  fs::create_directories(spool_dir, ec);
  if (ec) {
    std::fprintf(stderr, "modulo: cannot create data directory %s: %s\n", spool_dir.c_str(), ec.message().c_str());
    return 1;
  }

  metrics::Registry registry;
  metrics::RegisterProcessCollector(registry);

  ThreadPool cpu_pool("cpu", static_cast<std::size_t>(settings.EffectiveCpuThreads()));
  ThreadPool blocking_pool("blocking", static_cast<std::size_t>(settings.blocking_threads));
  InProcessEventBus events;
  HealthRegistry health;
  health.Add("file_system", DirectoryWritableCheck(data_dir.string()));

  http::ServerOptions opt;
  opt.host = settings.host;
  opt.port = static_cast<std::uint16_t>(settings.port);
  opt.threads = settings.EffectiveWebConcurrency();
  opt.max_connections = settings.max_connections;
  opt.max_header_bytes = settings.max_header_bytes;
  opt.max_body_bytes = settings.max_body_bytes;
  opt.max_upload_bytes = settings.max_upload_bytes;
  opt.header_timeout = std::chrono::seconds(settings.header_timeout_seconds);
  opt.body_timeout = std::chrono::seconds(settings.body_timeout_seconds);
  opt.idle_timeout = std::chrono::seconds(settings.idle_timeout_seconds);
  opt.shutdown_grace = std::chrono::seconds(settings.shutdown_grace_seconds);
  opt.access_log = settings.access_log;
  opt.spool_dir = spool_dir;

  // Embedded stores: one SQLite database and a blob directory under the data directory.
  auto database = store::sqlite::Database::Open((data_dir / "modulo.db").string(),
                                                static_cast<std::size_t>(settings.db_pool_size),
                                                &registry.AddGauge("rag_active_connections", "Active database connections").With({}));
  if (!database) {
    std::fprintf(stderr, "modulo: %s\n", database.error().message().c_str());
    return 1;
  }
  store::sqlite::SqliteMetadataStore metadata(**database);
  store::LocalBlobStore blobs(data_dir / "blobs");
  jobs::SqliteJobQueue job_queue(**database);
  health.Add("database", [&metadata] {
    auto st = metadata.Ping();
    return st ? ComponentHealth{true, "embedded SQLite database is answering"}
              : ComponentHealth{false, st.error().message()};
  });

  std::optional<api::EmbeddingService> embedding;
  std::shared_ptr<embed::LocalEmbedder> local_embedder;
  if (settings.embedder == "local") {
    std::shared_ptr<embed::EmbeddingCache> cache;
    auto service = MakeEmbeddingService(settings, cpu_pool, cache, local_embedder);
    if (!service) {
      log::Error("cannot start the embedder", {{"error", service.error().message()}});
      log::Flush();
      std::fprintf(stderr, "modulo: %s\n", service.error().message().c_str());
      return 1;
    }
    embedding = std::move(*service);
    api::RegisterEmbeddingMetrics(registry, *embedding, cache);
    const auto info = embedding->embedder->info();
    health.Add("embedding", [info] {
      return ComponentHealth{true, "model " + info.name + " loaded (" + std::to_string(info.dimension) + " dimensions, " +
                                       info.precision + ")"};
    });
  }

  http::Router router;
  std::unique_ptr<http::Server> server;
  api::AppContext app{settings, registry, events, health, cpu_pool, blocking_pool,
                      [&server] { return server == nullptr || server->draining(); }};
  api::AddSystemRoutes(router, app);
  if (embedding) api::AddEmbeddingRoutes(router, app, *embedding);

  // Background processing of uploads.
  std::unique_ptr<ingest::IngestService> ingest_service;
  jobs::WorkerPoolOptions wo;
  wo.concurrency = settings.worker_concurrency;
  wo.retry_base = std::chrono::seconds(settings.task_retry_base_seconds);
  wo.max_starts_per_minute = settings.task_rate_limit;
  jobs::WorkerPool workers(job_queue, wo, &registry);
  if (embedding) {
    ingest::IngestOptions io;
    io.embed_batch = static_cast<std::size_t>(settings.embed_batch_size);
    io.max_attempts = settings.task_max_retries + 1;
    ingest_service = std::make_unique<ingest::IngestService>(
        metadata, blobs, job_queue, embedding->embedder,
        std::make_shared<ingest::WordPieceSpans>(local_embedder->tokenizer()), events, io, &registry);
    ingest_service->SetOnEnqueued([&workers] { workers.Wake(); });
    workers.AddHandler(ingest::kIngestJob, [&](const jobs::Job& job, jobs::JobContext& ctx) {
      return ingest_service->ProcessFile(job, ctx);
    });
    workers.AddHandler(ingest::kReindexJob, [&](const jobs::Job& job, jobs::JobContext& ctx) {
      return ingest_service->ReindexCollection(job, ctx);
    });
    workers.SetListener([&events](const jobs::Job& job, const std::string& event) {
      events.Publish("task:" + job.id, event);
      if (!job.collection_id.empty()) events.Publish("collection:" + job.collection_id, event);
    });
    workers.SetOnFinished([&](const jobs::Job& job, jobs::JobState state, const std::string& error) {
      ingest_service->OnJobFinished(job, state, error);
    });
    // Crash recovery: jobs held by dead processes of this host run again now, and files left
    // without a live job get one.
    if (auto n = job_queue.ReleaseLeases(&jobs::WorkerPool::IsDeadLocalOwner); n && *n > 0) {
      log::Info("released tasks of stopped processes", {{"tasks", *n}});
    }
    if (auto n = ingest_service->Reconcile(); n && *n > 0) log::Info("repaired files after a restart", {{"files", *n}});
    if (settings.worker_concurrency > 0) workers.Start();
  }
  api::CollectionServices collection_services{metadata, job_queue, ingest_service.get(),
                                              embedding ? embedding->embedder->info().name : std::string(),
                                              embedding ? static_cast<int>(embedding->embedder->info().max_tokens) : 256,
                                              settings.max_file_bytes > 0 ? settings.max_file_bytes
                                                                          : settings.max_upload_bytes};
  api::AddCollectionRoutes(router, app, collection_services);
  api::AddOpenApiRoute(router, MODULO_VERSION);

  server = std::make_unique<http::Server>(opt, router, registry);
  if (auto st = server->Start(); !st) {
    log::Error("cannot start server", {{"error", st.error().message()}});
    log::Flush();
    std::fprintf(stderr, "modulo: %s\n", st.error().message().c_str());
    return 1;
  }
  const double ready_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  const std::string url = "http://" + (settings.host.find(':') != std::string::npos ? "[" + settings.host + "]"
                                                                                      : settings.host) +
                          ":" + std::to_string(server->port());
  log::Info("modulo ready", {{"url", url},
                             {"data_dir", data_dir.string()},
                             {"io_threads", opt.threads},
                             {"cpu_threads", static_cast<std::int64_t>(cpu_pool.size())},
                             {"startup_ms", ready_ms},
                             {"version", MODULO_VERSION}});
  std::printf("Modulo is serving at %s\n", url.c_str());
  std::fflush(stdout);

  // Signals were blocked in every thread at start; wait for one here.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  sigwait(&set, &sig);
  log::Info("shutting down", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"},
                              {"grace_seconds", settings.shutdown_grace_seconds}});
  server->Shutdown();
  workers.Stop(std::chrono::seconds(settings.shutdown_grace_seconds));
  log::Info("stopped");
  log::Flush();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Block termination signals before any thread starts, so only Serve()'s sigwait sees them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  CLI::App app{"Modulo: a retrieval-augmented generation server"};
  app.require_subcommand(1);
  std::string config_file;
  app.add_option("--config", config_file, "KEY=VALUE settings file [MODULO_CONFIG]");

  std::map<std::string, std::string> values;
  auto* serve = app.add_subcommand("serve", "Run the HTTP server");
  auto serve_opts = AddSettingFlags(*serve, values);

  auto* config = app.add_subcommand("config", "Print the effective configuration (secrets redacted)");
  bool markdown = false;
  config->add_flag("--markdown", markdown, "Print the reference of every setting as a Markdown table");
  std::map<std::string, std::string> config_values;
  auto config_opts = AddSettingFlags(*config, config_values);

  auto* version = app.add_subcommand("version", "Print the version");

  CLI11_PARSE(app, argc, argv);

  if (version->parsed()) {
    std::printf("modulo %s\n", MODULO_VERSION);
    return 0;
  }
  if (config->parsed()) {
    if (markdown) {
      std::fputs(RenderSettingsMarkdown().c_str(), stdout);
      return 0;
    }
    auto s = Load(config_file, config_opts, config_values);
    if (!s) {
      std::fprintf(stderr, "modulo: configuration error: %s\n", s.error().message().c_str());
      return 2;
    }
    std::fputs(RenderSettings(*s).c_str(), stdout);
    return 0;
  }
  auto s = Load(config_file, serve_opts, values);
  if (!s) {
    std::fprintf(stderr, "modulo: configuration error: %s\n", s.error().message().c_str());
    return 2;
  }
  return Serve(*s);
}
