#include "modulo/core/config.h"

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

extern char** environ;

namespace modulo {
namespace {

std::string Describe(const SettingSpec& spec) {
  return spec.flag.empty() ? spec.name : spec.name + " (--" + spec.flag + ")";
}

template <typename T>
Result<T> ParseInteger(const std::string& value, T lo, T hi) {
  T out{};
  const char* first = value.data();
  const char* last = value.data() + value.size();
  auto [ptr, ec] = std::from_chars(first, last, out);
  if (ec != std::errc() || ptr != last || out < lo || out > hi) {
    return Fail(Error::InvalidArgument("expected an integer between " + std::to_string(lo) + " and " +
                                       std::to_string(hi)));
  }
  return out;
}

// Sizes accept a plain byte count or a K/M/G suffix (powers of 1024).
Result<std::size_t> ParseSize(const std::string& value, std::size_t lo, std::size_t hi) {
  std::string digits = value;
  std::size_t mult = 1;
  if (!digits.empty()) {
    char last = digits.back();
    if (last == 'k' || last == 'K') mult = 1024;
    if (last == 'm' || last == 'M') mult = 1024 * 1024;
    if (last == 'g' || last == 'G') mult = 1024ull * 1024 * 1024;
    if (mult != 1) digits.pop_back();
  }
  auto n = ParseInteger<std::uint64_t>(digits, 0, UINT64_MAX / mult);
  if (!n || *n * mult < lo || *n * mult > hi) {
    return Fail(Error::InvalidArgument("expected a size in bytes (suffix K, M or G allowed) between " +
                                       std::to_string(lo) + " and " + std::to_string(hi)));
  }
  return static_cast<std::size_t>(*n * mult);
}

Result<bool> ParseBool(const std::string& v) {
  if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
  if (v == "0" || v == "false" || v == "no" || v == "off") return false;
  return Fail(Error::InvalidArgument("expected true or false"));
}

SettingSpec IntSetting(std::string name, std::string flag, std::string desc, int Settings::*field, int lo, int hi) {
  SettingSpec s{std::move(name), std::move(flag), std::move(desc), false, {}, {}};
  s.set = [field, lo, hi](Settings& st, const std::string& v) -> Status {
    auto n = ParseInteger<int>(v, lo, hi);
    if (!n) return Fail(n.error());
    st.*field = *n;
    return {};
  };
  s.get = [field](const Settings& st) { return std::to_string(st.*field); };
  return s;
}

SettingSpec SizeSetting(std::string name, std::string flag, std::string desc, std::size_t Settings::*field,
                        std::size_t lo, std::size_t hi) {
  SettingSpec s{std::move(name), std::move(flag), std::move(desc), false, {}, {}};
  s.set = [field, lo, hi](Settings& st, const std::string& v) -> Status {
    auto n = ParseSize(v, lo, hi);
    if (!n) return Fail(n.error());
    st.*field = *n;
    return {};
  };
  s.get = [field](const Settings& st) { return std::to_string(st.*field); };
  return s;
}

SettingSpec BoolSetting(std::string name, std::string flag, std::string desc, bool Settings::*field) {
  SettingSpec s{std::move(name), std::move(flag), std::move(desc), false, {}, {}};
  s.set = [field](Settings& st, const std::string& v) -> Status {
    auto b = ParseBool(v);
    if (!b) return Fail(b.error());
    st.*field = *b;
    return {};
  };
  s.get = [field](const Settings& st) { return std::string(st.*field ? "true" : "false"); };
  return s;
}

SettingSpec StringSetting(std::string name, std::string flag, std::string desc, std::string Settings::*field,
                          std::vector<std::string> allowed = {}, bool secret = false, bool allow_empty = false) {
  SettingSpec s{std::move(name), std::move(flag), std::move(desc), secret, {}, {}};
  s.set = [field, allowed, allow_empty](Settings& st, const std::string& v) -> Status {
    if (!allowed.empty()) {
      bool ok = false;
      std::string list;
      for (const auto& a : allowed) {
        ok = ok || a == v;
        list += (list.empty() ? "" : ", ") + a;
      }
      if (!ok) return Fail(Error::InvalidArgument("expected one of: " + list));
    } else if (v.empty() && !allow_empty) {
      return Fail(Error::InvalidArgument("must not be empty"));
    }
    st.*field = v;
    return {};
  };
  s.get = [field](const Settings& st) { return st.*field; };
  return s;
}

std::string FormatDouble(double d) {
  char buf[32];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, d);
  return ec == std::errc() ? std::string(buf, p) : std::to_string(d);
}

SettingSpec DoubleSetting(std::string name, std::string flag, std::string desc, double Settings::*field, double lo,
                          double hi) {
  SettingSpec s{std::move(name), std::move(flag), std::move(desc), false, {}, {}};
  s.set = [field, lo, hi](Settings& st, const std::string& v) -> Status {
    double d = 0;
    const auto* end = v.data() + v.size();
    auto [p, ec] = std::from_chars(v.data(), end, d);
    if (ec != std::errc() || p != end) return Fail(Error::InvalidArgument("expected a number"));
    if (d < lo || d > hi) {
      return Fail(Error::InvalidArgument("must be between " + FormatDouble(lo) + " and " + FormatDouble(hi)));
    }
    st.*field = d;
    return {};
  };
  s.get = [field](const Settings& st) { return FormatDouble(st.*field); };
  return s;
}

std::vector<SettingSpec> BuildSpecs() {
  constexpr std::size_t kKiB = 1024, kMiB = 1024 * 1024, kGiB = 1024ull * 1024 * 1024;
  std::vector<SettingSpec> v;
  v.push_back(StringSetting("MODULO_HOST", "host", "Address to listen on (127.0.0.1 keeps the server local).",
                            &Settings::host));
  v.push_back(IntSetting("MODULO_PORT", "port", "TCP port to listen on (0 picks a free port).", &Settings::port, 0,
                         65535));
  v.push_back(StringSetting("MODULO_DATA_DIR", "data-dir", "Directory holding all embedded state.",
                            &Settings::data_dir));
  v.push_back(IntSetting("WEB_CONCURRENCY", "web-concurrency", "HTTP I/O threads (0 = number of cores).",
                         &Settings::web_concurrency, 0, 256));
  v.push_back(IntSetting("MODULO_CPU_THREADS", "cpu-threads",
                         "Threads of the CPU pool for embedding, indexing and parsing (0 = number of cores).",
                         &Settings::cpu_threads, 0, 256));
  v.push_back(IntSetting("MODULO_BLOCKING_THREADS", "blocking-threads",
                         "Threads of the pool for blocking file and database I/O.", &Settings::blocking_threads, 1,
                         1024));
  v.push_back(IntSetting("MODULO_MAX_CONNECTIONS", "max-connections",
                         "Open HTTP connections beyond which new ones are refused with 503.",
                         &Settings::max_connections, 1, 1000000));
  v.push_back(SizeSetting("MODULO_MAX_HEADER_BYTES", "max-header-bytes",
                          "Largest request line plus headers; larger gets 431.", &Settings::max_header_bytes,
                          kKiB, kMiB));
  v.push_back(SizeSetting("MODULO_MAX_BODY_BYTES", "max-body-bytes",
                          "Largest JSON/form body for ordinary routes; larger gets 413.", &Settings::max_body_bytes,
                          kKiB, kGiB));
  v.push_back(SizeSetting("MODULO_MAX_UPLOAD_BYTES", "max-upload-bytes",
                          "Largest multipart upload request; larger gets 413.", &Settings::max_upload_bytes, kKiB,
                          1024 * kGiB));
  v.push_back(IntSetting("MODULO_HEADER_TIMEOUT", "header-timeout",
                         "Seconds a client has to send a whole request line and headers.",
                         &Settings::header_timeout_seconds, 1, 3600));
  v.push_back(IntSetting("MODULO_BODY_TIMEOUT", "body-timeout",
                         "Seconds without progress after which a request body read is abandoned.",
                         &Settings::body_timeout_seconds, 1, 3600));
  v.push_back(IntSetting("MODULO_IDLE_TIMEOUT", "idle-timeout",
                         "Seconds an idle keep-alive connection is kept open.", &Settings::idle_timeout_seconds, 1,
                         3600));
  v.push_back(IntSetting("MODULO_SHUTDOWN_GRACE", "shutdown-grace",
                         "Seconds in-flight requests get to finish after SIGTERM.", &Settings::shutdown_grace_seconds,
                         0, 3600));
  v.push_back(StringSetting("MODULO_LOG_LEVEL", "log-level", "Minimum log level.", &Settings::log_level,
                            {"trace", "debug", "info", "warn", "error"}));
  v.push_back(StringSetting("MODULO_LOG_FORMAT", "log-format", "Log line format: human text or JSON lines.",
                            &Settings::log_format, {"text", "json"}));
  v.push_back(BoolSetting("MODULO_ACCESS_LOG", "access-log", "Write one log line per HTTP request.",
                          &Settings::access_log));
  v.push_back(StringSetting("MODULO_EMBEDDER", "embedder",
                            "Embedding engine: local (built-in model), openai (any OpenAI-compatible /v1/embeddings), "
                            "watsonx (IBM watsonx.ai), or none (no embedding or ingestion).",
                            &Settings::embedder, {"local", "openai", "watsonx", "none"}));
  v.push_back(StringSetting("MODULO_MODEL_DIR", "model-dir",
                            "Sentence-transformers model directory for the local embedder (scripts/fetch-model.sh).",
                            &Settings::model_dir));
  v.push_back(StringSetting("MODULO_EMBED_PRECISION", "embed-precision",
                            "Local embedder precision: fp32 (exact), bf16, int8, or auto (bf16 where the CPU has it, else fp32).",
                            &Settings::embed_precision, {"fp32", "bf16", "int8", "auto"}));
  v.push_back(IntSetting("MODULO_EMBED_THREADS", "embed-threads",
                         "Cores one embedding forward pass uses (0 = number of cores).", &Settings::embed_threads, 0,
                         256));
  v.push_back(IntSetting("MODULO_EMBEDDING_CACHE_SIZE", "embedding-cache-size",
                         "Embeddings kept in the LRU cache (0 disables it).", &Settings::embedding_cache_size, 0,
                         10000000));
  v.push_back(IntSetting("MODULO_EMBED_BATCH_WAIT_US", "embed-batch-wait-us",
                         "Longest a query may wait to be batched with concurrent ones, in microseconds (0: batches form from queries that arrive while the embedder is busy; no query waits for company).",
                         &Settings::embed_batch_wait_us, 0, 1000000));
  v.push_back(IntSetting("MODULO_EMBED_MAX_BATCH", "embed-max-batch", "Most queries embedded in one micro-batch.",
                         &Settings::embed_max_batch, 1, 4096));
  v.push_back(StringSetting("MODULO_QUERY_PREFIX", "query-prefix",
                            "Text prepended to queries before embedding (e.g. \"query: \" for e5 models).",
                            &Settings::query_prefix, {}, false, true));
  v.push_back(StringSetting("MODULO_PASSAGE_PREFIX", "passage-prefix",
                            "Text prepended to passages before embedding (e.g. \"passage: \" for e5 models).",
                            &Settings::passage_prefix, {}, false, true));
  v.push_back(StringSetting("MODULO_EMBEDDING_URL", "embedding-url",
                            "Remote embedder URL: an OpenAI-compatible base ending in /v1, or the watsonx.ai URL.",
                            &Settings::embedding_url, {}, false, true));
  v.push_back(StringSetting("MODULO_EMBEDDING_MODEL", "embedding-model", "Remote embedder model name or model_id.",
                            &Settings::embedding_model, {}, false, true));
  v.push_back(StringSetting("MODULO_EMBEDDING_API_KEY", "", "Remote embedder API key (watsonx: IBM Cloud API key).",
                            &Settings::embedding_api_key, {}, true, true));
  v.push_back(StringSetting("MODULO_WATSONX_PROJECT_ID", "watsonx-project-id", "watsonx.ai project id.",
                            &Settings::watsonx_project_id, {}, false, true));
  v.push_back(StringSetting("MODULO_WATSONX_IAM_URL", "watsonx-iam-url", "IBM Cloud IAM token endpoint.",
                            &Settings::watsonx_iam_url));
  v.push_back(IntSetting("MODULO_EMBEDDING_MAX_TOKENS", "embedding-max-tokens",
                         "Input tokens a remote embedding model reads (chunks are sized to fit).",
                         &Settings::embedding_max_tokens, 32, 32768));
  v.push_back(IntSetting("MODULO_EMBEDDING_TIMEOUT_SECONDS", "embedding-timeout-seconds",
                         "Timeout of one remote embedding request.", &Settings::embedding_timeout_seconds, 1, 600));
  v.push_back(IntSetting("MODULO_WORKER_CONCURRENCY", "worker-concurrency",
                         "Background tasks (file processing) run at once.", &Settings::worker_concurrency, 0, 256));
  v.push_back(IntSetting("MODULO_TASK_RETRY_BASE_SECONDS", "task-retry-base-seconds",
                         "First retry delay of a failed task; doubles with each attempt.",
                         &Settings::task_retry_base_seconds, 0, 86400));
  v.push_back(IntSetting("MODULO_TASK_MAX_RETRIES", "task-max-retries",
                         "Retries of a failed task before it is dead-lettered.", &Settings::task_max_retries, 0, 100));
  v.push_back(IntSetting("MODULO_TASK_RATE_LIMIT", "task-rate-limit",
                         "Tasks started per minute per process (0 = unlimited).", &Settings::task_rate_limit, 0,
                         1000000));
  v.push_back(IntSetting("MODULO_EMBED_BATCH_SIZE", "embed-batch-size", "Chunks per embedding call during ingestion.",
                         &Settings::embed_batch_size, 1, 10000));
  v.push_back(SizeSetting("MODULO_MAX_FILE_BYTES", "max-file-bytes",
                          "Largest single uploaded file (0 = the upload request limit).", &Settings::max_file_bytes, 0,
                          1024 * kGiB));
  v.push_back(IntSetting("MODULO_DB_POOL_SIZE", "db-pool-size", "Connections to the embedded database.",
                         &Settings::db_pool_size, 1, 256));
  v.push_back(StringSetting("MODULO_BLOB_STORE", "blob-store",
                            "Where uploaded bytes are kept: local (<data-dir>/blobs) or s3 (S3_BUCKET at S3_ENDPOINT, "
                            "with a local cache in <data-dir>/blob-cache).",
                            &Settings::blob_store, {"local", "s3"}));
  v.push_back(StringSetting("S3_ENDPOINT", "s3-endpoint",
                            "S3 endpoint, http[s]://host[:port] (e.g. https://s3.eu-west-1.amazonaws.com).",
                            &Settings::s3_endpoint, {}, false, true));
  v.push_back(StringSetting("S3_BUCKET", "s3-bucket", "S3 bucket for uploaded bytes.", &Settings::s3_bucket, {}, false,
                            true));
  v.push_back(StringSetting("S3_REGION", "s3-region", "S3 signing region.", &Settings::s3_region));
  v.push_back(StringSetting("S3_ACCESS_KEY_ID", "s3-access-key-id", "S3 access key id.", &Settings::s3_access_key_id,
                            {}, false, true));
  v.push_back(StringSetting("S3_SECRET_ACCESS_KEY", "s3-secret-access-key", "S3 secret access key.",
                            &Settings::s3_secret_access_key, {}, true, true));
  v.push_back(StringSetting("S3_SESSION_TOKEN", "s3-session-token", "S3 session token (temporary credentials only).",
                            &Settings::s3_session_token, {}, true, true));
  v.push_back(BoolSetting("S3_PATH_STYLE", "s3-path-style",
                          "Path-style addressing (host/bucket/key, most self-hosted servers); false: virtual-host "
                          "(bucket.host/key).",
                          &Settings::s3_path_style));
  v.push_back(StringSetting("S3_KEY_PREFIX", "s3-key-prefix",
                            "Prefix of every object key (e.g. modulo/), so deployments can share a bucket.",
                            &Settings::s3_key_prefix, {}, false, true));
  v.push_back(IntSetting("MODULO_BLOB_CACHE_MAX_MB", "blob-cache-max-mb",
                         "Bound of the local cache of S3 blobs, MiB (0: unbounded).", &Settings::blob_cache_max_mb, 0,
                         100000000));
  v.push_back(StringSetting("DATABASE_URL", "database-url",
                            "Metadata database: empty or sqlite:///path for the embedded SQLite file in the data "
                            "directory, postgresql://user:pass@host:port/db for PostgreSQL.",
                            &Settings::database_url, {}, true, true));
  v.push_back(StringSetting("DATABASE_REPLICA_URLS", "database-replica-urls",
                            "Comma-separated postgresql:// URLs of read replicas (reads fall back to the primary).",
                            &Settings::database_replica_urls, {}, true, true));
  v.push_back(IntSetting("DB_POOL_SIZE", "pg-pool-size", "PostgreSQL connections kept in the pool.",
                         &Settings::db_pg_pool_size, 1, 1000));
  v.push_back(IntSetting("DB_MAX_OVERFLOW", "pg-max-overflow",
                         "PostgreSQL connections opened beyond the pool under load (closed when returned).",
                         &Settings::db_max_overflow, 0, 1000));
  v.push_back(IntSetting("DB_REPLICA_MAX_LAG_SECONDS", "replica-max-lag",
                         "A replica further behind than this is skipped (reads go to the primary).",
                         &Settings::db_replica_max_lag_seconds, 0, 86400));
  v.push_back(StringSetting("REDIS_URL", "redis-url",
                            "Redis for the shared result cache, the job queue, rate limits and progress events "
                            "(redis://[:password@]host:port[/db]); empty: in-process equivalents.",
                            &Settings::redis_url, {}, true, true));
  v.push_back(StringSetting("REDIS_HOST", "redis-host", "Redis host, when REDIS_URL is not set.",
                            &Settings::redis_host, {}, false, true));
  v.push_back(IntSetting("REDIS_PORT", "redis-port", "Redis port, with REDIS_HOST.", &Settings::redis_port, 1, 65535));
  v.push_back(StringSetting("MODULO_REDIS_PREFIX", "redis-prefix",
                            "Prefix of every Redis key, so deployments can share one Redis.", &Settings::redis_prefix));
  v.push_back(IntSetting("MODULO_REDIS_POOL_SIZE", "redis-pool-size", "Redis connections per process.",
                         &Settings::redis_pool_size, 1, 1024));
  v.push_back(StringSetting("VECTOR_STORE", "vector-store",
                            "Vector index: embedded (in-process HNSW) or a Milvus address (http://host:19530; needs "
                            "DATABASE_URL=postgresql://…, whose full-text search is then the keyword index).",
                            &Settings::vector_store));
  v.push_back(StringSetting("MILVUS_CONSISTENCY_LEVEL", "milvus-consistency",
                            "Eventually: a vector write returns when Milvus acknowledges it; Strong: when searches "
                            "see it (Milvus's REST v1 reads at its Bounded level either way).",
                            &Settings::milvus_consistency_level, {"Eventually", "Strong"}));
  v.push_back(StringSetting("MILVUS_TOKEN", "milvus-token", "Milvus credentials (user:password or an API key).",
                            &Settings::milvus_token, {}, true, true));
  v.push_back(IntSetting("MAX_TOP_K", "max-top-k", "Largest top_k a search may ask for.", &Settings::max_top_k, 1,
                         10000));
  v.push_back(IntSetting("VECTOR_BATCH_SIZE", "vector-batch-size",
                         "Vectors and chunks written to an index per batch.", &Settings::vector_batch_size, 1,
                         100000));
  v.push_back(StringSetting("MODULO_RETRIEVER", "retriever",
                            "Default retrieval for new collections: hybrid (vector + BM25, fused), vector or keyword.",
                            &Settings::retriever, {"hybrid", "vector", "keyword"}));
  v.push_back(IntSetting("SEARCH_CACHE_TTL", "search-cache-ttl",
                         "Seconds a search result stays cached (0 disables the result cache).",
                         &Settings::search_cache_ttl_seconds, 0, 30 * 86400));
  v.push_back(IntSetting("SEARCH_CACHE_SIZE", "search-cache-size", "Search results kept in the in-process cache.",
                         &Settings::search_cache_size, 1, 10000000));
  v.push_back(IntSetting("HNSW_M", "hnsw-m", "HNSW graph degree (links per vector per layer).", &Settings::hnsw_m, 4,
                         128));
  v.push_back(IntSetting("HNSW_EF_CONSTRUCTION", "hnsw-ef-construction",
                         "HNSW candidate list size while building (higher: better recall, slower builds).",
                         &Settings::hnsw_ef_construction, 8, 4096));
  v.push_back(IntSetting("HNSW_EF_SEARCH", "hnsw-ef-search",
                         "HNSW candidate list size while searching (raised to k when smaller).",
                         &Settings::hnsw_ef_search, 1, 4096));
  v.push_back(IntSetting("MODULO_EXACT_SEARCH_THRESHOLD", "exact-search-threshold",
                         "Collections with fewer vectors than this are searched exactly (brute force) instead of by HNSW.",
                         &Settings::exact_search_threshold, 0, 100000000));
  v.push_back(DoubleSetting("MODULO_BM25_K1", "bm25-k1", "BM25 term-frequency saturation.", &Settings::bm25_k1, 0, 10));
  v.push_back(DoubleSetting("MODULO_BM25_B", "bm25-b", "BM25 document-length normalisation.", &Settings::bm25_b, 0, 1));
  v.push_back(StringSetting("MODULO_AUTH", "auth",
                            "required: every route but health, readiness, metrics and the API description needs an "
                            "API key or a JWT; none: no authentication, everyone is the local admin (refused unless "
                            "the server listens on loopback only).",
                            &Settings::auth, {"required", "none"}));
  v.push_back(StringSetting("MODULO_JWT_SECRET", "", "Shared secret that enables HS256 JWT bearer tokens.",
                            &Settings::jwt_secret, {}, true, true));
  v.push_back(StringSetting("MODULO_JWKS", "jwks",
                            "JWKS of the identity provider for RS256/ES256 JWTs: a file path or an http(s) URL "
                            "(cached, refreshed every 5 minutes and on an unknown key id); needs MODULO_JWT_ISSUER and MODULO_JWT_AUDIENCE.",
                            &Settings::jwks, {}, false, true));
  v.push_back(StringSetting("MODULO_JWT_ISSUER", "jwt-issuer", "Required JWT issuer (iss), when set; required with MODULO_JWKS.",
                            &Settings::jwt_issuer, {}, false, true));
  v.push_back(StringSetting("MODULO_JWT_AUDIENCE", "jwt-audience", "Required JWT audience (aud), when set; required with MODULO_JWKS.",
                            &Settings::jwt_audience, {}, false, true));
  v.push_back(BoolSetting("MODULO_JWT_AUTO_PROVISION", "jwt-auto-provision",
                          "Create the user of a valid JWT whose subject is not known yet.", &Settings::jwt_auto_provision));
  v.push_back(DoubleSetting("MODULO_RATE_LIMIT_SEARCH", "rate-limit-search",
                            "Searches and embeddings per second per principal (bursts of twice that); 0 = unlimited.",
                            &Settings::rate_limit_search, 0, 1e6));
  v.push_back(DoubleSetting("MODULO_RATE_LIMIT_UPLOAD", "rate-limit-upload",
                            "Upload requests per second per principal (bursts of twice that, at least 10); 0 = unlimited.",
                            &Settings::rate_limit_upload, 0, 1e6));
  v.push_back(IntSetting("MODULO_MAX_STREAMS_PER_USER", "max-streams-per-user",
                         "Open WebSocket (/ws) connections and event streams (/api/events) one user may hold at once.",
                         &Settings::max_streams_per_user, 1, 100000));
  v.push_back(StringSetting("MODULO_TRUSTED_PROXIES", "trusted-proxies",
                            "Comma-separated proxy addresses or CIDRs (10.0.0.0/8) whose X-Forwarded-For names the client.",
                            &Settings::trusted_proxies, {}, false, true));
  v.push_back(IntSetting("MODULO_QUOTA_COLLECTIONS", "quota-collections", "Collections a user may own (admins: no limit).",
                         &Settings::quota_collections, 0, 1000000));
  v.push_back(IntSetting("MODULO_QUOTA_TEAMS", "quota-teams",
                         "Teams a user may create and administer (admins: no limit); each team has quotas of its own.",
                         &Settings::quota_teams, 0, 1000000));
  v.push_back(IntSetting("MODULO_QUOTA_FILES_PER_COLLECTION", "quota-files-per-collection",
                         "Files a user's collection may hold.", &Settings::quota_files_per_collection, 0, 100000000));
  v.push_back(SizeSetting("MODULO_QUOTA_STORAGE_BYTES", "quota-storage-bytes",
                          "Bytes of uploaded files a user's collections may hold.", &Settings::quota_storage_bytes, 0,
                          1ULL << 50));
  v.push_back(IntSetting("MODULO_QUOTA_LLM_TOKENS_PER_DAY", "quota-llm-tokens-per-day",
                         "LLM tokens a user may spend per day (UTC).", &Settings::quota_llm_tokens_per_day, 0, 2000000000));
  v.push_back(StringSetting("MODULO_SECRET_KEY", "",
                            "Server key that seals users' LLM provider API keys at rest (64 hex digits or base64 of "
                            "32 bytes); unset: <data dir>/secret.key, created on first start. Servers sharing a "
                            "database need the same key.",
                            &Settings::secret_key, {}, true, true));
  v.push_back(StringSetting("MODULO_LLM_PROVIDER", "llm-provider",
                            "Language model for generated answers: none (extractive answers only), openai (any "
                            "OpenAI-compatible chat completions server), anthropic or watsonx.",
                            &Settings::llm_provider, {"none", "openai", "anthropic", "watsonx"}));
  v.push_back(StringSetting("MODULO_LLM_URL", "llm-url",
                            "Base URL of the language model's API (openai: .../v1; empty: the provider's public "
                            "endpoint; required for watsonx).", &Settings::llm_url, {}, false, true));
  v.push_back(StringSetting("MODULO_LLM_MODEL", "llm-model", "Model id for generated answers.",
                            &Settings::llm_model, {}, false, true));
  v.push_back(StringSetting("MODULO_LLM_API_KEY", "", "API key for the language model's provider.",
                            &Settings::llm_api_key, {}, true, true));
  v.push_back(StringSetting("MODULO_LLM_PROJECT_ID", "llm-project-id", "watsonx.ai project id.",
                            &Settings::llm_project_id, {}, false, true));
  v.push_back(StringSetting("MODULO_LLM_IAM_URL", "llm-iam-url",
                            "IBM Cloud IAM endpoint for watsonx.ai (empty: https://iam.cloud.ibm.com).",
                            &Settings::llm_iam_url, {}, false, true));
  v.push_back(StringSetting("MODULO_EGRESS_ALLOW", "egress-allow",
                            "Internal addresses that users' own LLM provider URLs may reach: CIDRs and host names, "
                            "comma-separated (e.g. a self-hosted model on 10.0.0.0/8). Loopback, private, link-local and "
                            "other internal ranges are refused otherwise; with --auth none, loopback is allowed.",
                            &Settings::egress_allow, {}, false, true));
  v.push_back(IntSetting("MODULO_LLM_CONTEXT_TOKENS", "llm-context-tokens",
                         "The model's context window in tokens: retrieved passages are trimmed so that the prompt and "
                         "the answer fit.", &Settings::llm_context_tokens, 512, 10000000));
  v.push_back(IntSetting("MODULO_LLM_MAX_NEW_TOKENS", "llm-max-new-tokens", "Longest generated answer, in tokens.",
                         &Settings::llm_max_new_tokens, 16, 1000000));
  v.push_back(IntSetting("MODULO_LLM_TIMEOUT_SECONDS", "llm-timeout-seconds",
                         "Longest wait for the language model (whole answer, or the next piece of a streamed one).",
                         &Settings::llm_timeout_seconds, 1, 3600));
  v.push_back(IntSetting("MODULO_LLM_MAX_RETRIES", "llm-max-retries",
                         "Extra attempts on 429, 5xx and connection failures before any text was received.",
                         &Settings::llm_max_retries, 0, 10));
  v.push_back(IntSetting("MODULO_LLM_MAX_CONCURRENCY", "llm-max-concurrency",
                         "Calls to the language model in flight at once (0: unlimited); more wait.",
                         &Settings::llm_max_concurrency, 0, 10000));
  return v;
}

std::string Trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

Status ApplyFile(Settings& st, const std::string& path) {
  std::ifstream in(path);
  if (!in) return Fail(Error::InvalidArgument("cannot read config file '" + path + "'"));
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    line = Trim(line);
    if (line.empty() || line[0] == '#') continue;
    const auto eq = line.find('=');
    const std::string where = path + ":" + std::to_string(lineno);
    if (eq == std::string::npos) return Fail(Error::InvalidArgument(where + ": expected NAME=VALUE"));
    std::string key = Trim(line.substr(0, eq));
    std::string value = Trim(line.substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    const SettingSpec* spec = nullptr;
    for (const auto& s : SettingSpecs()) {
      if (s.name == key) spec = &s;
    }
    if (spec == nullptr) return Fail(Error::InvalidArgument(where + ": unknown setting '" + key + "'"));
    if (auto r = spec->set(st, value); !r) {
      return Fail(Error::InvalidArgument(where + ": invalid value '" + value + "' for " + Describe(*spec) + ": " +
                                         r.error().message()));
    }
  }
  return {};
}

}  // namespace

int Settings::EffectiveWebConcurrency() const {
  return web_concurrency > 0 ? web_concurrency : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}
int Settings::EffectiveCpuThreads() const {
  return cpu_threads > 0 ? cpu_threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

std::string Settings::EffectiveRedisUrl() const {
  if (!redis_url.empty()) return redis_url;
  if (!redis_host.empty()) return "redis://" + redis_host + ":" + std::to_string(redis_port);
  return {};
}

const std::vector<SettingSpec>& SettingSpecs() {
  static const std::vector<SettingSpec> specs = BuildSpecs();
  return specs;
}

std::map<std::string, std::string> ReadEnvironment() {
  std::set<std::string> names;
  for (const auto& s : SettingSpecs()) names.insert(s.name);
  names.insert("MODULO_CONFIG");
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    const auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    std::string key(kv.substr(0, eq));
    if (names.contains(key)) env[key] = std::string(kv.substr(eq + 1));
  }
  return env;
}

Result<Settings> LoadSettings(const ConfigSources& sources) {
  Settings st;
  if (!sources.file.empty()) {
    if (auto r = ApplyFile(st, sources.file); !r) return Fail(r.error());
  }
  for (const auto& spec : SettingSpecs()) {
    if (auto it = sources.env.find(spec.name); it != sources.env.end()) {
      if (auto r = spec.set(st, it->second); !r) {
        return Fail(Error::InvalidArgument("invalid value '" + it->second + "' for " + Describe(spec) +
                                           " (from the environment): " + r.error().message()));
      }
    }
  }
  for (const auto& [flag, value] : sources.flags) {
    const SettingSpec* spec = nullptr;
    for (const auto& s : SettingSpecs()) {
      if (s.flag == flag) spec = &s;
    }
    if (spec == nullptr) return Fail(Error::InvalidArgument("unknown flag --" + flag));
    if (auto r = spec->set(st, value); !r) {
      return Fail(Error::InvalidArgument("invalid value '" + value + "' for " + Describe(*spec) + ": " +
                                         r.error().message()));
    }
  }
  // Cross-setting checks.
  if (st.max_upload_bytes < st.max_body_bytes) {
    return Fail(Error::InvalidArgument("MODULO_MAX_UPLOAD_BYTES must be at least MODULO_MAX_BODY_BYTES"));
  }
  return st;
}

std::string RenderSettings(const Settings& s) {
  std::ostringstream out;
  for (const auto& spec : SettingSpecs()) {
    out << "# " << spec.description << "\n" << spec.name << "=" << (spec.secret ? "<redacted>" : spec.get(s))
        << "\n";
  }
  return out.str();
}

std::string RenderSettingsMarkdown() {
  const Settings defaults;
  std::ostringstream out;
  out << "| Environment / file name | Flag | Default | Description |\n|---|---|---|---|\n";
  for (const auto& spec : SettingSpecs()) {
    out << "| `" << spec.name << "` | " << (spec.flag.empty() ? "" : "`--" + spec.flag + "`") << " | `"
        << (spec.secret ? "" : spec.get(defaults)) << "` | " << spec.description << " |\n";
  }
  return out.str();
}

}  // namespace modulo
