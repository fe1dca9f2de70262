// modulo: the one binary. This file is the only place where objects are created and wired.
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <thread>

#include "modulo/api/chat_completions_routes.h"
#include "modulo/api/collections_routes.h"
#include "modulo/api/conversation_routes.h"
#include "modulo/api/embeddings_routes.h"
#include "modulo/api/openapi.h"
#include "modulo/api/search_routes.h"
#include "modulo/api/security.h"
#include "modulo/api/tenancy_routes.h"
#include "modulo/api/user_config_routes.h"
#include "modulo/auth/api_key.h"
#include "modulo/auth/jwt.h"
#include "modulo/auth/rate_limiter.h"
#include "modulo/auth/redis/redis_rate_limiter.h"
#include "modulo/auth/secret_box.h"
#include "modulo/api/system_routes.h"
#include "modulo/core/clock.h"
#include "modulo/core/config.h"
#include "modulo/core/event_bus.h"
#include "modulo/core/health.h"
#include "modulo/core/json.h"
#include "modulo/core/log.h"
#include "modulo/core/thread_pool.h"
#include "modulo/embed/embedding_cache.h"
#include "modulo/embed/local_embedder.h"
#include "modulo/embed/query_batcher.h"
#include "modulo/embed/remote/remote_embedders.h"
#include "modulo/generate/answer_service.h"
#include "modulo/generate/conversation_service.h"
#include "modulo/generate/llm_config.h"
#include "modulo/generate/provider_registry.h"
#include "modulo/http/server.h"
#include "modulo/index/bm25/bm25_index.h"
#include "modulo/index/hnsw/hnsw_vector_store.h"
#include "modulo/index/milvus/milvus_vector_store.h"
#include "modulo/index/postgres/pg_keyword_index.h"
#include "modulo/ingest/ingest_service.h"
#include "modulo/ingest/token_spans.h"
#include "modulo/jobs/redis/redis_job_queue.h"
#include "modulo/jobs/sqlite/sqlite_job_queue.h"
#include "modulo/jobs/worker_pool.h"
#include "modulo/store/blob_store.h"
#include "modulo/store/postgres/database.h"
#include "modulo/store/s3/s3_blob_store.h"
#include "modulo/store/postgres/pg_conversation_store.h"
#include "modulo/store/postgres/pg_identity_store.h"
#include "modulo/store/postgres/pg_metadata_store.h"
#include "modulo/store/postgres/pg_user_config_store.h"
#include "modulo/store/sqlite/database.h"
#include "modulo/store/sqlite/sqlite_conversation_store.h"
#include "modulo/store/sqlite/sqlite_identity_store.h"
#include "modulo/store/sqlite/sqlite_metadata_store.h"
#include "modulo/store/sqlite/sqlite_user_config_store.h"
#include "modulo/metrics/registry.h"
#include "modulo/net/egress.h"
#include "modulo/search/index_sync.h"
#include "modulo/search/lru_cache.h"
#include "modulo/search/postgres/pg_sync_checkpoints.h"
#include "modulo/search/redis/redis_cache.h"
#include "modulo/redis/client.h"
#include "modulo/redis/event_bus.h"
#include "modulo/search/search_service.h"

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

// Creates the configured embedding engine; an error names what is missing and how to get it.
Result<std::shared_ptr<embed::Embedder>> MakeEngine(const Settings& settings,
                                                    std::shared_ptr<embed::LocalEmbedder>& local_out) {
  if (settings.embedder == "local") {
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
    return std::shared_ptr<embed::Embedder>(local_out);
  }
  embed::remote::RemoteEmbedderOptions ro;
  ro.url = settings.embedding_url;
  ro.model = settings.embedding_model;
  ro.api_key = settings.embedding_api_key;
  ro.project_id = settings.watsonx_project_id;
  ro.iam_url = settings.watsonx_iam_url;
  ro.max_tokens = static_cast<std::size_t>(settings.embedding_max_tokens);
  ro.timeout = std::chrono::seconds(settings.embedding_timeout_seconds);
  if (settings.embedder == "openai") {
    auto e = embed::remote::OpenAiEmbedder::Create(ro);
    if (!e) return Fail(e.error());
    return std::shared_ptr<embed::Embedder>(std::move(*e));
  }
  auto e = embed::remote::WatsonxEmbedder::Create(ro);
  if (!e) return Fail(e.error());
  return std::shared_ptr<embed::Embedder>(std::move(*e));
}

// The engine behind a cache, and the query micro-batcher.
api::EmbeddingService MakeEmbeddingService(const Settings& settings, std::shared_ptr<embed::Embedder> engine,
                                           ThreadPool& cpu_pool, std::shared_ptr<embed::EmbeddingCache>& cache) {
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

// The shared engines a scale-out deployment names (REDIS_URL, ...), and the event bus: Redis
// pub/sub when Redis is configured (a job run by any worker is seen on any server's /ws), else
// in-process.
struct Engines {
  std::unique_ptr<redis::RedisClient> redis;
  std::unique_ptr<EventBus> events;
};

Result<Engines> BuildEngines(const Settings& settings, metrics::Registry& registry, HealthRegistry& health) {
  Engines e;
  if (const std::string url = settings.EffectiveRedisUrl(); !url.empty()) {
    redis::RedisOptions base;
    base.pool_size = static_cast<std::size_t>(settings.redis_pool_size);
    base.key_prefix = settings.redis_prefix;
    auto options = redis::ParseRedisUrl(url, base);
    if (!options) return Fail(std::move(options.error()).Wrap("REDIS_URL"));
    e.redis = std::make_unique<redis::RedisClient>(*options, &registry);
    if (auto st = e.redis->Ping(); !st) {
      return Fail(Error::Unavailable("Redis at " + options->host + ":" + std::to_string(options->port) +
                                     " is not answering: " + st.error().message()));
    }
    health.Add("redis", [r = e.redis.get()] {
      auto st = r->Ping();
      return st ? ComponentHealth{true, "Redis is answering"} : ComponentHealth{false, st.error().message()};
    });
    e.events = std::make_unique<redis::RedisEventBus>(*e.redis, &registry);
  } else {
    e.events = std::make_unique<InProcessEventBus>();
  }
  return e;
}

// The answer pipeline: generated answers with citations when MODULO_LLM_PROVIDER names a language
// model, extractive answers otherwise. Must outlive the HTTP server.
bool IsPostgresUrl(const std::string& url);

// Users' own providers, parameters, templates and pipelines (providers as data) are resolved per
// request; their API keys are sealed with the server key.
struct Answers {
  generate::ProviderRegistry providers;
  std::unique_ptr<generate::AnswerService> service;
  std::optional<auth::SecretBox> secrets;
  std::unique_ptr<generate::ProfileResolver> profiles;
  std::shared_ptr<const net::EgressPolicy> egress;  // where users' own provider URLs may go
};

Result<std::unique_ptr<Answers>> BuildAnswers(const Settings& settings, search::SearchService& search,
                                              store::IdentityStore& identity, store::UserConfigStore& configs,
                                              const std::filesystem::path& data_dir, ThreadPool& blocking_pool,
                                              metrics::Registry& registry) {
  auto a = std::make_unique<Answers>();
  // --auth none runs only on loopback, for its one local user, who owns the machine and its local
  // model servers (Ollama, vLLM): loopback is theirs to reach.
  auto egress = net::EgressPolicy::Make(settings.egress_allow, settings.auth == "none");
  if (!egress) return Fail(std::move(egress.error()));
  a->egress = std::make_shared<const net::EgressPolicy>(std::move(*egress));
  auto secrets = auth::SecretBox::Load(settings.secret_key, data_dir);
  if (!secrets) return Fail(std::move(secrets.error()).Wrap("the server key (MODULO_SECRET_KEY)"));
  a->secrets = std::move(*secrets);
  if (settings.secret_key.empty() && IsPostgresUrl(settings.database_url)) {
    log::Warn("MODULO_SECRET_KEY is not set: provider API keys are sealed with this server's own key file, "
              "which the other servers sharing the database cannot open",
              {{"key_file", (data_dir / "secret.key").string()}, {"key_id", a->secrets->KeyId()}});
  }
  std::shared_ptr<generate::LlmProvider> provider;
  if (settings.llm_provider != "none") {
    if (settings.llm_model.empty()) {
      return Fail(Error::InvalidArgument("MODULO_LLM_MODEL is required with MODULO_LLM_PROVIDER=" +
                                         settings.llm_provider));
    }
    if (settings.llm_context_tokens < settings.llm_max_new_tokens + 256) {
      return Fail(Error::InvalidArgument("MODULO_LLM_CONTEXT_TOKENS (" + std::to_string(settings.llm_context_tokens) +
                                         ") must exceed MODULO_LLM_MAX_NEW_TOKENS (" +
                                         std::to_string(settings.llm_max_new_tokens) + ") by at least 256"));
    }
    generate::ProviderConfig pc;
    pc.type = settings.llm_provider;
    pc.base_url = settings.llm_url;
    pc.api_key = settings.llm_api_key;
    pc.model = settings.llm_model;
    pc.project_id = settings.llm_project_id;
    pc.iam_url = settings.llm_iam_url;
    pc.timeout = std::chrono::seconds(settings.llm_timeout_seconds);
    pc.max_retries = settings.llm_max_retries;
    pc.max_concurrency = settings.llm_max_concurrency;
    auto p = a->providers.Get(pc);
    if (!p) return Fail(std::move(p.error()).Wrap("language model (MODULO_LLM_PROVIDER)"));
    provider = std::move(*p);
    log::Info("generated answers enabled", {{"provider", pc.type}, {"model", pc.model}});
  }
  generate::AnswerOptions o;
  o.context_tokens = settings.llm_context_tokens;
  o.params.max_new_tokens = settings.llm_max_new_tokens;
  o.llm_tokens_per_day = settings.quota_llm_tokens_per_day;
  a->service = std::make_unique<generate::AnswerService>(
      generate::AnswerDeps{search, std::move(provider), &identity, blocking_pool, &registry}, std::move(o));
  const auth::SecretBox* box = &*a->secrets;
  a->profiles = std::make_unique<generate::ProfileResolver>(
      generate::ProfileResolverDeps{configs, a->providers,
                                    [box](std::string_view sealed, std::string_view ctx) { return box->Open(sealed, ctx); },
                                    a->egress},
      *a->service->server_profile());
  return a;
}

// The user behind MODULO_AUTH=none, created on first start.
Status EnsureLocalUser(store::IdentityStore& identity) {
  if (identity.GetUser(api::kLocalUserId)) return {};
  store::User u;
  u.id = api::kLocalUserId;
  u.name = api::kLocalUserId;
  u.role = "admin";
  auto created = identity.CreateUser(u);
  if (created || created.error().code() == ErrorCode::kAlreadyExists) return {};
  return Fail(std::move(created.error()).Wrap("creating the local user"));
}

// The metadata and identity stores: PostgreSQL when DATABASE_URL names it, else the embedded
// SQLite file of the data directory (which also holds the embedded job queue).
struct Stores {
  std::unique_ptr<store::sqlite::Database> sqlite;
  std::unique_ptr<store::postgres::Database> postgres;
  std::unique_ptr<store::MetadataStore> metadata;
  std::unique_ptr<store::IdentityStore> identity;
  std::unique_ptr<store::UserConfigStore> configs;
  std::unique_ptr<store::ConversationStore> conversations;
};

bool IsPostgresUrl(const std::string& url) {
  return url.starts_with("postgresql://") || url.starts_with("postgres://");
}

// The SQLite path DATABASE_URL names (sqlite:///abs/path or sqlite://rel/path), or the data
// directory's modulo.db when it is empty.
Result<std::filesystem::path> SqlitePath(const Settings& settings, const std::filesystem::path& data_dir) {
  const std::string& url = settings.database_url;
  if (url.empty()) return data_dir / "modulo.db";
  if (url.starts_with("sqlite://") && url.size() > 9) return std::filesystem::path(url.substr(9));
  return Fail(Error::InvalidArgument("DATABASE_URL must start with sqlite:// or postgresql:// (got '" +
                                     url.substr(0, url.find(':')) + ":…')"));
}

// `need_sqlite`: open the SQLite file even with PostgreSQL (the embedded job queue lives there
// when no Redis is configured).
Result<Stores> OpenStores(const Settings& settings, const std::filesystem::path& data_dir, metrics::Registry* registry,
                          bool need_sqlite, std::size_t sqlite_pool) {
  Stores s;
  metrics::Gauge* active =
      registry != nullptr ? &registry->AddGauge("rag_active_connections", "Active database connections").With({})
                          : nullptr;
  if (IsPostgresUrl(settings.database_url)) {
    store::postgres::DatabaseOptions o;
    o.primary_url = settings.database_url;
    o.replica_urls = store::postgres::SplitUrls(settings.database_replica_urls);
    o.pool.size = static_cast<std::size_t>(settings.db_pg_pool_size);
    o.pool.max_overflow = static_cast<std::size_t>(settings.db_max_overflow);
    o.max_replica_lag = std::chrono::seconds(settings.db_replica_max_lag_seconds);
    auto db = store::postgres::Database::Open(o, registry, active);
    if (!db) return Fail(std::move(db.error()).Wrap("PostgreSQL (DATABASE_URL)"));
    s.postgres = std::move(*db);
    s.metadata = std::make_unique<store::postgres::PostgresMetadataStore>(*s.postgres);
    s.identity = std::make_unique<store::postgres::PostgresIdentityStore>(*s.postgres);
    s.configs = std::make_unique<store::postgres::PostgresUserConfigStore>(*s.postgres);
    s.conversations = std::make_unique<store::postgres::PostgresConversationStore>(*s.postgres);
    if (!need_sqlite) return s;
    active = nullptr;
  }
  auto path = SqlitePath(settings, data_dir);
  if (!path) return Fail(path.error());
  auto database = store::sqlite::Database::Open(path->string(), sqlite_pool, active);
  if (!database) return Fail(database.error());
  s.sqlite = std::move(*database);
  if (!s.metadata) {
    s.metadata = std::make_unique<store::sqlite::SqliteMetadataStore>(*s.sqlite);
    s.identity = std::make_unique<store::sqlite::SqliteIdentityStore>(*s.sqlite);
    s.configs = std::make_unique<store::sqlite::SqliteUserConfigStore>(*s.sqlite);
    s.conversations = std::make_unique<store::sqlite::SqliteConversationStore>(*s.sqlite);
  }
  return s;
}

// Everything the HTTP server and the workers share: the stores, the job queue, the embedder,
// the ingestion service and a worker pool (not started).
struct Backend {
  std::filesystem::path data_dir;
  std::unique_ptr<store::sqlite::Database> database;       // embedded SQLite, when used
  std::unique_ptr<store::postgres::Database> postgres;     // PostgreSQL, when DATABASE_URL names it
  std::unique_ptr<store::MetadataStore> metadata;
  std::unique_ptr<store::IdentityStore> identity;
  std::unique_ptr<store::UserConfigStore> configs;
  std::unique_ptr<store::ConversationStore> conversations;
  std::unique_ptr<store::BlobStore> blobs;
  std::unique_ptr<jobs::JobQueue> queue;
  std::optional<api::EmbeddingService> embedding;
  std::shared_ptr<embed::LocalEmbedder> local_embedder;
  std::unique_ptr<ingest::IngestService> ingest;
  std::unique_ptr<jobs::WorkerPool> workers;
  // Called (on a worker thread) when an in-process job has changed a collection.
  std::function<void(const std::string& collection_id)> on_collection_changed;
  // Where workers run: every kReconcileInterval, files left without a live job (an upload whose
  // enqueue failed while the queue was away, a job that died) get one. Declared last: stopped
  // first.
  std::jthread reconciler;
};

constexpr auto kReconcileInterval = std::chrono::seconds(30);

// The indexes and what keeps them in step with the store. Embedded: an in-process HNSW store and
// BM25 index in each server, rebuilt from the store and caught up by replaying its change feed.
// Shared (VECTOR_STORE names a Milvus, with PostgreSQL as the store): Milvus for vectors and
// PostgreSQL full-text search for keywords, one copy for every server and worker, replayed under a
// lease with positions kept in PostgreSQL (search/sync_checkpoints.h).
struct Indexes {
  std::unique_ptr<index::VectorStore> vectors;
  std::unique_ptr<index::KeywordIndex> keywords;
  std::unique_ptr<search::SyncCheckpoints> checkpoints;
  std::unique_ptr<search::IndexSync> sync;
};

bool SharedIndexes(const Settings& settings) { return settings.vector_store != "embedded"; }

Result<Indexes> BuildIndexes(const Settings& settings, Backend& b, metrics::Registry& registry,
                             HealthRegistry& health) {
  Indexes r;
  search::IndexSyncOptions so;
  so.batch = static_cast<std::size_t>(settings.vector_batch_size);
  if (SharedIndexes(settings)) {
    if (!b.postgres) {
      return Fail(Error::InvalidArgument(
          "VECTOR_STORE=" + settings.vector_store +
          " needs DATABASE_URL=postgresql://…: the shared indexes keep their replay positions there and use its "
          "full-text search for keywords"));
    }
    if (!settings.vector_store.starts_with("http://") && !settings.vector_store.starts_with("https://")) {
      return Fail(Error::InvalidArgument("VECTOR_STORE must be 'embedded' or a Milvus address such as "
                                         "http://127.0.0.1:19530 (got '" + settings.vector_store + "')"));
    }
    if (b.embedding) {
      index::MilvusOptions mo;
      mo.url = settings.vector_store;
      mo.token = settings.milvus_token;
      mo.batch_size = static_cast<std::size_t>(settings.vector_batch_size);
      auto consistency = index::ParseMilvusConsistency(settings.milvus_consistency_level);
      if (!consistency) return Fail(consistency.error());
      mo.consistency = *consistency;
      auto milvus = index::MilvusVectorStore::Create(b.embedding->embedder->info().dimension, mo, &registry);
      if (!milvus) return Fail(std::move(milvus.error()).Wrap("Milvus (VECTOR_STORE)"));
      if (auto st = (*milvus)->Ping(); !st) {
        return Fail(Error::Unavailable("Milvus at " + settings.vector_store + " is not answering: " + st.error().message()));
      }
      health.Add("milvus", [m = milvus->get()] {
        auto st = m->Ping();
        return st ? ComponentHealth{true, "Milvus is answering"} : ComponentHealth{false, st.error().message()};
      });
      r.vectors = std::move(*milvus);
    }
    r.keywords = std::make_unique<index::PostgresKeywordIndex>(*b.postgres);
    r.checkpoints = std::make_unique<search::PgSyncCheckpoints>(*b.postgres);
    so.checkpoints = r.checkpoints.get();
    so.owner = b.workers->worker_id();
  } else {
    if (b.embedding) {
      index::HnswOptions ho;
      ho.m = static_cast<std::size_t>(settings.hnsw_m);
      ho.ef_construction = static_cast<std::size_t>(settings.hnsw_ef_construction);
      ho.ef_search = static_cast<std::size_t>(settings.hnsw_ef_search);
      ho.exact_threshold = static_cast<std::size_t>(settings.exact_search_threshold);
      ho.build_threads = static_cast<std::size_t>(settings.EffectiveCpuThreads());
      auto hnsw = std::make_unique<index::HnswVectorStore>(b.embedding->embedder->info().dimension, ho);
      // A collection's own HNSW parameters (retrieval.hnsw) over the server's.
      so.before_build = [v = hnsw.get()](const store::Collection& c) {
        auto settings = modulo::ParseJsonOrDiscarded(c.settings_json);
        search::RetrievalSettings rs;
        if (!settings.is_object() || !settings.contains("retrieval") ||
            !rs.Apply(settings["retrieval"], std::numeric_limits<std::size_t>::max(), "retrieval")) {
          return;
        }
        if (rs.hnsw_m == 0 && rs.hnsw_ef_construction == 0 && rs.hnsw_ef_search == 0) return;
        index::HnswOptions o = v->OptionsFor(c.id);
        if (rs.hnsw_m > 0) o.m = rs.hnsw_m;
        if (rs.hnsw_ef_construction > 0) o.ef_construction = rs.hnsw_ef_construction;
        if (rs.hnsw_ef_search > 0) o.ef_search = rs.hnsw_ef_search;
        if (auto st = v->SetCollectionOptions(c.id, o); !st) {
          log::Warn("collection index options refused", {{"collection_id", c.id}, {"error", st.error().message()}});
        }
      };
      r.vectors = std::move(hnsw);
    }
    index::Bm25Options bo;
    bo.k1 = static_cast<float>(settings.bm25_k1);
    bo.b = static_cast<float>(settings.bm25_b);
    auto keywords = index::Bm25Index::Create(bo);
    if (!keywords) return Fail(keywords.error());
    r.keywords = std::move(*keywords);
  }
  r.sync = std::make_unique<search::IndexSync>(*b.metadata, r.vectors.get(), r.keywords.get(), so, &registry);
  return r;
}

// The retrieval side of `modulo serve`: the indexes, the result cache and the search pipeline.
struct Retrieval {
  Indexes indexes;
  search::IndexSync* sync = nullptr;
  std::unique_ptr<search::Cache> cache;
  std::unique_ptr<search::SearchService> service;
  search::RetrievalSettings defaults;
};

Result<Retrieval> BuildRetrieval(const Settings& settings, Backend& b, Engines& engines, ThreadPool& blocking_pool,
                                 metrics::Registry& registry, HealthRegistry& health) {
  Retrieval r;
  auto indexes = BuildIndexes(settings, b, registry, health);
  if (!indexes) return Fail(indexes.error());
  r.indexes = std::move(*indexes);
  r.sync = r.indexes.sync.get();
  search::LruCache* lru = nullptr;
  if (settings.search_cache_ttl_seconds > 0 && engines.redis) {
    r.cache = std::make_unique<search::RedisCache>(*engines.redis, &registry);
  } else if (settings.search_cache_ttl_seconds > 0) {
    search::LruCacheOptions co;
    co.max_entries = static_cast<std::size_t>(settings.search_cache_size);
    auto cache = std::make_unique<search::LruCache>(co);
    lru = cache.get();
    r.cache = std::move(cache);
  }
  r.defaults.retriever = search::ParseRetriever(settings.retriever).value_or(search::Retriever::kHybrid);
  search::SearchOptions opts;
  opts.max_top_k = static_cast<std::size_t>(settings.max_top_k);
  opts.cache_ttl = std::chrono::seconds(settings.search_cache_ttl_seconds);
  opts.defaults = r.defaults;
  search::SearchDeps deps{*b.metadata,
                          *r.sync,
                          r.indexes.vectors.get(),
                          r.indexes.keywords.get(),
                          b.embedding ? b.embedding->batcher : nullptr,
                          b.embedding ? b.embedding->embedder->info().name : std::string(),
                          r.cache.get(),
                          blocking_pool,
                          &registry};
  r.service = std::make_unique<search::SearchService>(std::move(deps), opts);
  // Index sizes for /metrics.
  registry.AddCollector([c = lru](std::string& out) {
    if (c != nullptr) {
      out += "# HELP modulo_search_cache_entries Search results held by the in-process cache\n"
             "# TYPE modulo_search_cache_entries gauge\nmodulo_search_cache_entries " +
             std::to_string(c->size()) + "\n";
    }
  });
  return r;
}

Result<std::unique_ptr<Backend>> BuildBackend(const Settings& settings, metrics::Registry& registry, Engines& engines,
                                              HealthRegistry& health, ThreadPool& cpu_pool) {
  EventBus& events = *engines.events;
  namespace fs = std::filesystem;
  auto b = std::make_unique<Backend>();
  std::error_code ec;
  b->data_dir = fs::absolute(settings.data_dir, ec).lexically_normal();
  const bool existed = fs::exists(b->data_dir, ec);
  fs::create_directories(b->data_dir / "spool", ec);
  if (ec) return Fail(Error::Unavailable("cannot create data directory " + b->data_dir.string() + ": " + ec.message()));
  if (!existed) {
    fs::permissions(b->data_dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  } else if ((fs::status(b->data_dir, ec).permissions() & (fs::perms::group_all | fs::perms::others_all)) !=
             fs::perms::none) {
    log::Warn("the data directory can be read by other users of this machine; chmod 700 it unless that is meant",
              {{"data_dir", b->data_dir.string()}});
  }
  health.Add("file_system", DirectoryWritableCheck(b->data_dir.string()));

  // Stores (SQLite in the data directory, or PostgreSQL), uploaded bytes under the data
  // directory (a shared volume when servers and workers run on several machines), the queue
  // (Redis Streams, or the SQLite database).
  auto stores = OpenStores(settings, b->data_dir, &registry, !engines.redis,
                           static_cast<std::size_t>(settings.db_pool_size));
  if (!stores) return Fail(stores.error());
  b->database = std::move(stores->sqlite);
  b->postgres = std::move(stores->postgres);
  b->metadata = std::move(stores->metadata);
  b->identity = std::move(stores->identity);
  b->configs = std::move(stores->configs);
  b->conversations = std::move(stores->conversations);
  if (settings.blob_store == "s3") {
    store::s3::S3BlobStoreOptions o;
    o.s3.endpoint = settings.s3_endpoint;
    o.s3.bucket = settings.s3_bucket;
    o.s3.region = settings.s3_region;
    o.s3.credentials = {settings.s3_access_key_id, settings.s3_secret_access_key, settings.s3_session_token};
    o.s3.path_style = settings.s3_path_style;
    o.s3.key_prefix = settings.s3_key_prefix;
    o.cache_dir = b->data_dir / "blob-cache";
    o.cache_max_bytes = static_cast<std::uint64_t>(settings.blob_cache_max_mb) << 20;
    auto s3 = store::s3::S3BlobStore::Create(std::move(o), &registry);
    if (!s3) return Fail(std::move(s3.error()).Wrap("S3 blob store (MODULO_BLOB_STORE=s3)"));
    if (auto st = (*s3)->CheckBucket(); !st) return Fail(std::move(st.error()).Wrap("S3 blob store"));
    health.Add("blob_store", [s = s3->get()] {
      auto st = s->CheckBucket();
      return st ? ComponentHealth{true, "S3 bucket is reachable"} : ComponentHealth{false, st.error().message()};
    });
    b->blobs = std::move(*s3);
  } else {
    b->blobs = std::make_unique<store::LocalBlobStore>(b->data_dir / "blobs");
  }
  if (engines.redis) {
    b->queue = std::make_unique<jobs::RedisJobQueue>(*engines.redis);
  } else {
    b->queue = std::make_unique<jobs::SqliteJobQueue>(*b->database);
  }
  health.Add("database", [m = b->metadata.get(), pg = b->postgres != nullptr] {
    auto st = m->Ping();
    return st ? ComponentHealth{true, pg ? "PostgreSQL is answering" : "embedded SQLite database is answering"}
              : ComponentHealth{false, st.error().message()};
  });

  jobs::WorkerPoolOptions wo;
  wo.concurrency = settings.worker_concurrency;
  wo.retry_base = std::chrono::seconds(settings.task_retry_base_seconds);
  wo.max_starts_per_minute = settings.task_rate_limit;
  b->workers = std::make_unique<jobs::WorkerPool>(*b->queue, wo, &registry);
  registry.AddCollector([q = b->queue.get()](std::string& out) {
    auto counts = q->Counts();
    if (!counts) return;
    out += "# HELP modulo_jobs Jobs in the queue by state\n# TYPE modulo_jobs gauge\n";
    for (auto [state, n] : {std::pair{"queued", counts->queued}, {"running", counts->running},
                            {"succeeded", counts->succeeded}, {"failed", counts->failed}, {"dead", counts->dead}}) {
      out += std::string("modulo_jobs{state=\"") + state + "\"} " + std::to_string(n) + "\n";
    }
  });
  if (settings.embedder == "none") return b;

  auto engine = MakeEngine(settings, b->local_embedder);
  if (!engine) return Fail(engine.error());
  std::shared_ptr<embed::EmbeddingCache> cache;
  b->embedding = MakeEmbeddingService(settings, *engine, cpu_pool, cache);
  api::RegisterEmbeddingMetrics(registry, *b->embedding, cache);
  const auto info = b->embedding->embedder->info();
  health.Add("embedding", [info] {
    return ComponentHealth{true, "model " + info.name + " loaded (" + std::to_string(info.dimension) +
                                     " dimensions, " + info.precision + ")"};
  });

  ingest::IngestOptions io;
  io.embed_batch = static_cast<std::size_t>(settings.embed_batch_size);
  io.max_attempts = settings.task_max_retries + 1;
  b->ingest = std::make_unique<ingest::IngestService>(
      *b->metadata, *b->blobs, *b->queue, b->embedding->embedder,
      b->local_embedder ? std::shared_ptr<const ingest::TokenSpans>(
                              std::make_shared<ingest::WordPieceSpans>(b->local_embedder->tokenizer()))
                        : std::make_shared<ingest::EstimatedSpans>(),
      events, io, &registry);
  auto* ingest = b->ingest.get();
  auto* workers = b->workers.get();
  ingest->SetOnEnqueued([workers] { workers->Wake(); });
  workers->AddHandler(ingest::kIngestJob,
                      [ingest](const jobs::Job& job, jobs::JobContext& ctx) { return ingest->ProcessFile(job, ctx); });
  workers->AddHandler(ingest::kReindexJob, [ingest](const jobs::Job& job, jobs::JobContext& ctx) {
    return ingest->ReindexCollection(job, ctx);
  });
  workers->SetListener([&events](const jobs::Job& job, const std::string& event) {
    events.Publish("task:" + job.id, event);
    if (!job.collection_id.empty()) events.Publish("collection:" + job.collection_id, event);
  });
  workers->SetOnFinished([ingest, backend = b.get()](const jobs::Job& job, jobs::JobState state,
                                                     const std::string& error) {
    ingest->OnJobFinished(job, state, error);
    if (backend->on_collection_changed && !job.collection_id.empty()) backend->on_collection_changed(job.collection_id);
  });
  return b;
}

// Crash recovery, then the workers: jobs held by dead processes of this host run again at once,
// and files left without a live job get one.
void StartWorkers(Backend& b, int concurrency) {
  if (!b.ingest || concurrency <= 0) return;
  if (auto n = b.queue->ReleaseLeases(&jobs::WorkerPool::IsDeadLocalOwner); n && *n > 0) {
    log::Info("released tasks of stopped processes", {{"tasks", *n}});
  }
  if (auto n = b.ingest->Reconcile(); n && *n > 0) log::Info("repaired files after a restart", {{"files", *n}});
  b.workers->Start();
  b.reconciler = std::jthread([ingest = b.ingest.get()](std::stop_token stop) {
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock lock(mu);
    for (;;) {
      // Returns at the interval or at once when stopping (the predicate is never true).
      (void)cv.wait_for(lock, stop, kReconcileInterval, [] { return false; });
      if (stop.stop_requested()) return;
      auto n = ingest->Reconcile();
      if (!n) log::Warn("file reconciliation failed", {{"error", n.error().message()}});
      else if (*n > 0) log::Info("gave files without a live task a new one", {{"files", *n}});
    }
  });
}

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    auto end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    std::string item = s.substr(start, end - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) out.push_back(item);
    start = end + 1;
  }
  return out;
}

// Authentication, authorization and rate limits of the HTTP API.
struct Access {
  std::unique_ptr<auth::JwtVerifier> jwt;
  std::unique_ptr<auth::RateLimiter> limiter;
  std::unique_ptr<api::Security> security;
};

Result<Access> BuildAccess(const Settings& settings, Backend& b, Engines& engines, ThreadPool& blocking_pool,
                           metrics::Registry& registry) {
  Access a;
  if (settings.auth == "none" && !IsLoopback(settings.host)) {
    return Fail(Error::InvalidArgument("MODULO_AUTH=none is refused on " + settings.host +
                                       ": without authentication the server must listen on loopback only"));
  }
  if (!settings.jwt_secret.empty() || !settings.jwks.empty()) {
    auth::JwtVerifierOptions jo;
    if (!settings.jwt_secret.empty()) jo.hs256_secret = settings.jwt_secret;
    jo.jwks_source = settings.jwks;
    jo.issuer = settings.jwt_issuer;
    jo.audience = settings.jwt_audience;
    auto jwt = auth::JwtVerifier::Create(jo);
    if (!jwt) return Fail(std::move(jwt.error()).Wrap("JWT configuration"));
    a.jwt = std::move(*jwt);
    if (auto e = a.jwt->last_jwks_error()) log::Warn("JWKS not loaded yet", {{"error", e->message()}});
  }
  if (engines.redis) {
    a.limiter = std::make_unique<auth::RedisRateLimiter>(*engines.redis, &registry);  // one budget across servers
  } else {
    a.limiter = std::make_unique<auth::TokenBucketLimiter>();
  }
  api::SecurityOptions so;
  so.required = settings.auth != "none";
  so.auto_provision = settings.jwt_auto_provision;
  so.search = {2 * settings.rate_limit_search, settings.rate_limit_search};
  so.upload = {std::max(10.0, 2 * settings.rate_limit_upload), settings.rate_limit_upload};
  so.trusted_proxies = SplitList(settings.trusted_proxies);
  if (auto st = api::CheckTrustedProxies(so.trusted_proxies); !st) return Fail(st.error());
  so.jwt_may_block = settings.jwks.starts_with("http://") || settings.jwks.starts_with("https://");
  a.security = std::make_unique<api::Security>(*b.identity, blocking_pool, a.jwt.get(), *a.limiter, so, registry);
  return a;
}

// `modulo admin create-user`: a user straight in the configured store, with a new API key.
int CreateUser(const Settings& settings, const std::string& name, bool admin, const std::string& key_name) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path dir = fs::absolute(settings.data_dir, ec).lexically_normal();
  fs::create_directories(dir, ec);
  auto stores = OpenStores(settings, dir, nullptr, false, 1);
  if (!stores) {
    std::fprintf(stderr, "modulo: %s\n", stores.error().message().c_str());
    return 1;
  }
  store::IdentityStore& identity = *stores->identity;
  store::User u;
  u.name = name;
  u.role = admin ? "admin" : "user";
  auto user = identity.CreateUser(u);
  if (!user) {
    std::fprintf(stderr, "modulo: cannot create user '%s': %s\n", name.c_str(), user.error().message().c_str());
    return 1;
  }
  auto key = auth::GenerateApiKey();
  if (!key) {
    std::fprintf(stderr, "modulo: %s\n", key.error().message().c_str());
    return 1;
  }
  store::ApiKeyRecord rec;
  rec.key_id = key->key_id;
  rec.user_id = user->id;
  rec.name = key_name;
  rec.prefix = key->prefix;
  rec.hash = key->hash;
  rec.created_at_ms = NowMs();
  if (auto st = identity.CreateApiKey(rec); !st) {
    std::fprintf(stderr, "modulo: %s\n", st.error().message().c_str());
    return 1;
  }
  store::AuditEntry e;
  e.principal_id = user->id;
  e.action = "user.create";
  e.resource = "user:" + user->id;
  e.outcome = "ok";
  e.detail = nlohmann::json{{"via", "modulo admin create-user"}, {"role", user->role}}.dump();
  (void)identity.AppendAudit(e);
  std::printf("user_id: %s\nname: %s\nrole: %s\napi_key: %s\n", user->id.c_str(), user->name.c_str(),
              user->role.c_str(), key->secret_text.c_str());
  std::fprintf(stderr, "Keep the API key: it is shown only this once. Send it as 'Authorization: Bearer <api_key>'.\n");
  return 0;
}

// Signals were blocked in every thread at start; wait for one here.
int WaitForSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

int StartupFailure(const Error& e) {
  log::Error("cannot start", {{"error", e.message()}});
  log::Flush();
  std::fprintf(stderr, "modulo: %s\n", e.message().c_str());
  return 1;
}

int Serve(const Settings& settings) {
  const auto started = std::chrono::steady_clock::now();
  log::Init(log::ParseLevel(settings.log_level),
            settings.log_format == "json" ? log::Format::kJson : log::Format::kText);
  metrics::Registry registry;
  metrics::RegisterProcessCollector(registry);
  ThreadPool cpu_pool("cpu", static_cast<std::size_t>(settings.EffectiveCpuThreads()));
  ThreadPool blocking_pool("blocking", static_cast<std::size_t>(settings.blocking_threads));
  HealthRegistry health;
  auto engines = BuildEngines(settings, registry, health);
  if (!engines) return StartupFailure(engines.error());
  EventBus& events = *engines->events;
  auto backend = BuildBackend(settings, registry, *engines, health, cpu_pool);
  if (!backend) return StartupFailure(backend.error());
  Backend& b = **backend;

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
  opt.spool_dir = b.data_dir / "spool";

  auto retrieval = BuildRetrieval(settings, b, *engines, blocking_pool, registry, health);
  if (!retrieval) return StartupFailure(retrieval.error());
  auto access = BuildAccess(settings, b, *engines, blocking_pool, registry);
  if (!access) return StartupFailure(access.error());
  auto answers = BuildAnswers(settings, *retrieval->service, *b.identity, *b.configs, b.data_dir, blocking_pool,
                              registry);
  if (!answers) return StartupFailure(answers.error());
  if (settings.auth == "none") {
    log::Warn("authentication is off (MODULO_AUTH=none): every request acts as the local admin");
    // The local admin owns configurations and conversations like any user: it needs its row.
    if (auto st = EnsureLocalUser(*b.identity); !st) return StartupFailure(st.error());
  }
  // Jobs run here keep the indexes warm (catch-up off the worker thread); writes by other
  // processes are caught up by the next search.
  // A collection whose files are all done gets its suggested questions (by the server's language
  // model when there is one) unless it has some.
  generate::LlmProvider* server_model = (*answers)->service->server_profile()->provider.get();
  generate::AnswerService& answers_service = *(*answers)->service;
  b.on_collection_changed = [&blocking_pool, &b, sync = retrieval->sync, server_model,
                             &answers_service](const std::string& id) {
    boost::asio::post(blocking_pool.executor(), [&b, sync, id, server_model, &answers_service] {
      auto state = b.metadata->GetCollectionState(id);
      if (!state) return;
      if (auto st = sync->EnsureCurrent(*state); !st) {
        log::Warn("index catch-up failed", {{"collection_id", id}, {"error", st.error().message()}});
      }
      if (state->status != store::CollectionStatus::kCompleted) return;
      auto existing = b.conversations->ListSuggestedQuestions(id);
      if (!existing || !existing->empty()) return;
      // The server's model spends the tokens; they count for the collection's owner.
      auto owner_spent = [&answers_service, owner = state->owner_id, server_model](const generate::TokenUsage& u) {
        generate::AnswerRequest who;
        who.user_id = owner;
        answers_service.Record(who, *server_model, u);
      };
      if (auto made = api::GenerateSuggestedQuestions(*b.metadata, *b.conversations, id, server_model, owner_spent);
          !made) {
        log::Warn("suggested questions failed", {{"collection_id", id}, {"error", made.error().message()}});
      }
    });
  };

  http::Router router;
  std::unique_ptr<http::Server> server;
  api::AppContext app{settings, registry, events, health, cpu_pool, blocking_pool,
                      [&server] { return server == nullptr || server->draining(); }};
  router.SetGuard(access->security->MakeGuard());
  app.topic_access = [&b](const http::Request& req, const std::string& topic) -> Status {
    // Asked again while a stream delivers: a user disabled since it opened loses it.
    const auth::Principal* p = api::Security::PrincipalOf(req);
    if (p != nullptr) {
      auto user = b.identity->GetUser(p->user_id);
      if (!user && user.error().code() != ErrorCode::kNotFound) return Fail(user.error());
      if (!user || user->disabled) return Fail(Error::PermissionDenied("this user is disabled or deleted"));
    }
    // task:<id> follows the task's collection; collection:<id> needs read access to it.
    if (p != nullptr && p->is_admin()) return {};
    std::string collection_id;
    if (topic.starts_with("collection:")) {
      collection_id = topic.substr(11);
    } else if (topic.starts_with("task:")) {
      auto job = b.queue->Get(topic.substr(5));
      if (!job) return Fail(Error::NotFound("topic " + topic + " not found"));
      collection_id = job->collection_id;
    }
    if (collection_id.empty()) return {};
    if (auto st = api::ScopedStore(*b.metadata, *b.identity, req).Require(collection_id, store::AccessLevel::kRead); !st) {
      return Fail(Error::NotFound("topic " + topic + " not found"));
    }
    return {};
  };
  api::AddSystemRoutes(router, app);
  if (b.embedding) api::AddEmbeddingRoutes(router, app, *b.embedding);
  api::QuotaDefaults quotas;
  quotas.collections = settings.quota_collections;
  quotas.teams = settings.quota_teams;
  quotas.files_per_collection = settings.quota_files_per_collection;
  quotas.storage_bytes = static_cast<std::int64_t>(settings.quota_storage_bytes);
  quotas.llm_tokens_per_day = settings.quota_llm_tokens_per_day;
  api::CollectionServices collection_services{
      *b.metadata,
      *b.queue,
      b.ingest.get(),
      b.embedding ? b.embedding->embedder->info().name : std::string(),
      b.embedding ? static_cast<int>(b.embedding->embedder->info().max_tokens) : 256,
      settings.max_file_bytes > 0 ? settings.max_file_bytes : settings.max_upload_bytes,
      retrieval->sync,
      retrieval->defaults,
      static_cast<std::size_t>(settings.max_top_k),
      b.identity.get(),
      access->security.get(),
      quotas};
  api::AddCollectionRoutes(router, app, collection_services);
  api::AnswerRoutesDeps answer_routes{*retrieval->service, *b.metadata, *b.identity, (*answers)->service.get(),
                                      (*answers)->profiles.get()};
  api::AddSearchRoutes(router, app, answer_routes);
  api::AddChatCompletionsRoutes(router, app, answer_routes);
  api::UserConfigServices config_services{*b.configs, *b.identity, *(*answers)->secrets, (*answers)->providers,
                                         (*answers)->egress};
  api::AddUserConfigRoutes(router, app, config_services);
  generate::ConversationService conversation_service({*b.conversations, *(*answers)->service, blocking_pool});
  api::ConversationServices conversation_services{answer_routes, *b.conversations, conversation_service};
  api::AddConversationRoutes(router, app, conversation_services);
  app.ws_chat = api::MakeWsChat(conversation_services, app);
  app.take_budget = [security = access->security.get()](const http::Request& req, std::string_view budget) {
    return security->TakeBudget(req, budget);
  };
  app.streams = std::make_shared<api::StreamSlots>(settings.max_streams_per_user);
  api::TenancyServices tenancy{*b.identity, *b.metadata, *access->security, quotas,
                               [sync = retrieval->sync](const store::Collection& c) { sync->DropCollection(c); }};
  api::AddTenancyRoutes(router, app, tenancy);
  api::AddOpenApiRoute(router, MODULO_VERSION);
  if (auto st = api::CheckRoutePolicies(router); !st) return StartupFailure(st.error());

  StartWorkers(b, settings.worker_concurrency);
  server = std::make_unique<http::Server>(opt, router, registry);
  if (auto st = server->Start(); !st) return StartupFailure(st.error());
  const double ready_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  const std::string url = "http://" + (settings.host.find(':') != std::string::npos ? "[" + settings.host + "]"
                                                                                      : settings.host) +
                          ":" + std::to_string(server->port());
  log::Info("modulo ready", {{"url", url},
                             {"data_dir", b.data_dir.string()},
                             {"io_threads", opt.threads},
                             {"cpu_threads", static_cast<std::int64_t>(cpu_pool.size())},
                             {"workers", settings.worker_concurrency},
                             {"startup_ms", ready_ms},
                             {"version", MODULO_VERSION}});
  std::printf("Modulo is serving at %s\n", url.c_str());
  std::fflush(stdout);
  // Rebuild the in-memory indexes from the store in the background; a search that arrives first
  // catches its own collection up.
  boost::asio::post(blocking_pool.executor(), [sync = retrieval->sync] {
    const auto t = std::chrono::steady_clock::now();
    auto n = sync->SyncAll();
    if (!n) {
      log::Warn("index warm-up failed", {{"error", n.error().message()}});
      return;
    }
    log::Info("indexes loaded", {{"collections", static_cast<std::int64_t>(*n)},
                                 {"ms", std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count()}});
  });

  const int sig = WaitForSignal();
  log::Info("shutting down", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"},
                              {"grace_seconds", settings.shutdown_grace_seconds}});
  server->Shutdown();
  b.reconciler = std::jthread();  // stop and join it before the workers
  b.workers->Stop(std::chrono::seconds(settings.shutdown_grace_seconds));
  b.on_collection_changed = nullptr;
  blocking_pool.Join();  // no catch-up may outlive the indexes
  log::Info("stopped");
  log::Flush();
  return 0;
}

// Runs the background job workers without the HTTP server (they share the data directory's
// database with `modulo serve`, which may then run with --worker-concurrency 0).
int Work(const Settings& settings) {
  log::Init(log::ParseLevel(settings.log_level),
            settings.log_format == "json" ? log::Format::kJson : log::Format::kText);
  metrics::Registry registry;
  ThreadPool cpu_pool("cpu", static_cast<std::size_t>(settings.EffectiveCpuThreads()));
  HealthRegistry health;
  auto engines = BuildEngines(settings, registry, health);
  if (!engines) return StartupFailure(engines.error());
  (void)engines->events;  // a worker publishes through the backend
  auto backend = BuildBackend(settings, registry, *engines, health, cpu_pool);
  if (!backend) return StartupFailure(backend.error());
  if (!(*backend)->ingest) return StartupFailure(Error::InvalidArgument("a worker needs an embedder (MODULO_EMBEDDER)"));
  // With shared indexes a worker brings them up to date as each job finishes, so searches find
  // the new chunks without replaying them (in-process indexes belong to the servers).
  std::optional<Indexes> indexes;
  if (SharedIndexes(settings)) {
    auto built = BuildIndexes(settings, **backend, registry, health);
    if (!built) return StartupFailure(built.error());
    indexes = std::move(*built);
    (*backend)->on_collection_changed = [b = backend->get(), sync = indexes->sync.get()](const std::string& id) {
      if (auto state = b->metadata->GetCollectionState(id)) {
        if (auto st = sync->EnsureCurrent(*state); !st) {
          log::Warn("index catch-up failed", {{"collection_id", id}, {"error", st.error().message()}});
        }
      }
    };
  }
  const int concurrency = std::max(1, settings.worker_concurrency);
  StartWorkers(**backend, concurrency);
  log::Info("modulo worker ready", {{"worker_id", (*backend)->workers->worker_id()},
                                    {"concurrency", concurrency},
                                    {"data_dir", (*backend)->data_dir.string()}});
  std::printf("Modulo worker %s is running\n", (*backend)->workers->worker_id().c_str());
  std::fflush(stdout);
  const int sig = WaitForSignal();
  log::Info("worker stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  (*backend)->reconciler = std::jthread();
  (*backend)->workers->Stop(std::chrono::seconds(settings.shutdown_grace_seconds));
  (*backend)->on_collection_changed = nullptr;
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
  // Everything Modulo writes (databases, uploaded files, the server key, spooled uploads) is its
  // own: directories 0700, files 0600.
  umask(077);

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

  auto* worker = app.add_subcommand("worker", "Run background job workers (no HTTP server)");
  std::map<std::string, std::string> worker_values;
  auto worker_opts = AddSettingFlags(*worker, worker_values);
  std::string concurrency;
  auto* concurrency_opt = worker->add_option("--concurrency", concurrency, "Jobs run at once (default 4)");

  auto* admin = app.add_subcommand("admin", "Administration that works straight on the configured store");
  admin->require_subcommand(1);
  auto* create_user = admin->add_subcommand("create-user", "Create a user and print a new API key for it");
  std::string new_user_name, new_key_name = "created by modulo admin";
  bool new_user_admin = false;
  create_user->add_option("--name", new_user_name, "User name (unique)")->required();
  create_user->add_flag("--admin", new_user_admin, "Make the user a system admin");
  create_user->add_option("--key-name", new_key_name, "A label for the API key");
  std::map<std::string, std::string> admin_values;
  auto admin_opts = AddSettingFlags(*create_user, admin_values);

  auto* migrate = app.add_subcommand("migrate", "Bring the PostgreSQL schema (DATABASE_URL) to this version");
  std::map<std::string, std::string> migrate_values;
  auto migrate_opts = AddSettingFlags(*migrate, migrate_values);

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
  if (migrate->parsed()) {
    auto s = Load(config_file, migrate_opts, migrate_values);
    if (!s) {
      std::fprintf(stderr, "modulo: configuration error: %s\n", s.error().message().c_str());
      return 2;
    }
    if (!IsPostgresUrl(s->database_url)) {
      std::fprintf(stderr, "modulo: migrate needs DATABASE_URL=postgresql://… (the embedded SQLite database "
                           "migrates itself when opened)\n");
      return 2;
    }
    auto outcome = store::postgres::Migrate(s->database_url);
    if (!outcome) {
      std::fprintf(stderr, "modulo: migration failed: %s\n", outcome.error().message().c_str());
      return 1;
    }
    std::printf("schema version %d (%d step%s applied now)\n", outcome->version, outcome->applied,
                outcome->applied == 1 ? "" : "s");
    return 0;
  }
  if (create_user->parsed()) {
    auto s = Load(config_file, admin_opts, admin_values);
    if (!s) {
      std::fprintf(stderr, "modulo: configuration error: %s\n", s.error().message().c_str());
      return 2;
    }
    return CreateUser(*s, new_user_name, new_user_admin, new_key_name);
  }
  if (worker->parsed()) {
    if (concurrency_opt->count() > 0) {
      worker_values["worker-concurrency"] = concurrency;
      worker_opts["worker-concurrency"]->add_result(concurrency);
    }
    auto s = Load(config_file, worker_opts, worker_values);
    if (!s) {
      std::fprintf(stderr, "modulo: configuration error: %s\n", s.error().message().c_str());
      return 2;
    }
    return Work(*s);
  }
  auto s = Load(config_file, serve_opts, values);
  if (!s) {
    std::fprintf(stderr, "modulo: configuration error: %s\n", s.error().message().c_str());
    return 2;
  }
  return Serve(*s);
}
