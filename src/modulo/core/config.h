// Settings: the typed configuration of a Modulo process, and the registry that loads it.
//
// Every setting is declared once in config.cpp with its name (also its environment variable),
// optional command-line flag, default, description and validator. Values are applied in order:
// defaults, then a config file (KEY=VALUE lines, same names), then the environment, then flags;
// the first invalid value stops start-up with a message naming the setting.
// The seed's names are kept where they mean the same here: WEB_CONCURRENCY, MAX_TOP_K,
// VECTOR_BATCH_SIZE.
//
// Thread-safety: Settings is a plain value; load it once at start-up and pass it (or the parts a
// module needs) into constructors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "modulo/core/error.h"

namespace modulo {

struct Settings {
  // Server
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string data_dir = "./modulo-data";
  int web_concurrency = 0;  // 0 = number of cores
  int cpu_threads = 0;      // 0 = number of cores
  int blocking_threads = 16;
  int max_connections = 10000;
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = 1024 * 1024;
  std::size_t max_upload_bytes = 1024ull * 1024 * 1024;
  int header_timeout_seconds = 10;
  int body_timeout_seconds = 30;
  int idle_timeout_seconds = 60;
  int shutdown_grace_seconds = 20;
  // Logging
  std::string log_level = "info";
  std::string log_format = "text";
  bool access_log = true;
  // Embedding
  std::string embedder = "local";
  std::string model_dir = "models/all-MiniLM-L6-v2";
  std::string embed_precision = "fp32";
  int embed_threads = 0;  // 0 = number of cores
  int embedding_cache_size = 10000;
  int embed_batch_wait_us = 0;
  int embed_max_batch = 32;
  std::string query_prefix;
  std::string passage_prefix;
  std::string embedding_url;
  std::string embedding_model;
  std::string embedding_api_key;
  std::string watsonx_project_id;
  std::string watsonx_iam_url = "https://iam.cloud.ibm.com/identity/token";
  int embedding_max_tokens = 512;
  int embedding_timeout_seconds = 30;
  // Ingestion
  int worker_concurrency = 4;
  int task_retry_base_seconds = 60;
  int task_max_retries = 3;
  int task_rate_limit = 0;  // task starts per minute; 0 = unlimited
  int embed_batch_size = 100;
  std::size_t max_file_bytes = 0;  // 0 = MODULO_MAX_UPLOAD_BYTES
  int db_pool_size = 8;
  // Retrieval limits (seed names)
  int max_top_k = 100;
  int vector_batch_size = 1000;
  // Retrieval
  std::string retriever = "hybrid";
  int search_cache_ttl_seconds = 3600;
  int search_cache_size = 10000;
  int hnsw_m = 16;
  int hnsw_ef_construction = 256;
  int hnsw_ef_search = 64;
  int exact_search_threshold = 5000;
  double bm25_k1 = 0.9;
  double bm25_b = 0.4;
  // Tenancy and security
  std::string auth = "required";  // "required" | "none" (loopback only)
  std::string jwt_secret;         // HS256
  std::string jwks;               // RS256/ES256 keys: a file or an http(s) URL
  std::string jwt_issuer;
  std::string jwt_audience;
  bool jwt_auto_provision = false;
  double rate_limit_search = 20;  // requests per second per principal (burst: twice that); 0 = off
  double rate_limit_upload = 2;
  int max_streams_per_user = 32;  // open /ws connections and /api/events streams together
  std::string trusted_proxies;    // comma-separated addresses
  int quota_collections = 10;
  int quota_teams = 5;  // teams a user may administer (each has collection and storage budgets of its own)
  int quota_files_per_collection = 100;
  std::size_t quota_storage_bytes = 10ULL << 30;
  int quota_llm_tokens_per_day = 100000;

  // Language model for generated answers (none: extractive answers only)
  std::string llm_provider = "none";  // none | openai | anthropic | watsonx
  std::string llm_url;                // the provider's API base URL (empty: its public endpoint)
  std::string llm_model;
  std::string llm_api_key;            // secret
  std::string secret_key;             // MODULO_SECRET_KEY: seals provider API keys at rest
  std::string llm_project_id;         // watsonx
  std::string llm_iam_url;            // watsonx (empty: https://iam.cloud.ibm.com)
  // CIDRs and host names that users' own provider URLs may reach although they are internal
  // (loopback, private, link-local...); every other internal address is refused.
  std::string egress_allow;
  int llm_context_tokens = 8192;
  int llm_max_new_tokens = 512;
  int llm_timeout_seconds = 60;
  int llm_max_retries = 2;
  int llm_max_concurrency = 8;

  // Where uploaded bytes are kept
  std::string blob_store = "local";  // local | s3
  std::string s3_endpoint, s3_bucket, s3_region = "us-east-1", s3_access_key_id, s3_secret_access_key,
      s3_session_token, s3_key_prefix;
  bool s3_path_style = true;
  int blob_cache_max_mb = 10240;

  // Scale-out engines (empty: the embedded defaults)
  std::string database_url;           // sqlite:///path, postgresql://...
  std::string database_replica_urls;  // comma-separated postgresql:// URLs of read replicas
  int db_pg_pool_size = 20;
  int db_max_overflow = 10;
  int db_replica_max_lag_seconds = 10;
  std::string redis_url;
  std::string redis_host;
  int redis_port = 6379;
  std::string redis_prefix = "modulo:";
  int redis_pool_size = 8;
  std::string vector_store = "embedded";  // embedded | a Milvus address (http://host:19530)
  std::string milvus_consistency_level = "Eventually";
  std::string milvus_token;

  // Resolved values for the 0 = auto settings.
  // The Redis URL from REDIS_URL, or REDIS_HOST and REDIS_PORT; empty when neither is set.
  [[nodiscard]] std::string EffectiveRedisUrl() const;
  [[nodiscard]] int EffectiveWebConcurrency() const;
  [[nodiscard]] int EffectiveCpuThreads() const;
};

// One declared setting.
struct SettingSpec {
  std::string name;         // environment / config-file name, e.g. "MODULO_PORT"
  std::string flag;         // command-line flag without dashes, e.g. "port"; empty when none
  std::string description;  // one line
  bool secret = false;      // redacted by `modulo config`
  std::function<Status(Settings&, const std::string&)> set;
  std::function<std::string(const Settings&)> get;
};

// All declared settings, in the order they are documented.
[[nodiscard]] const std::vector<SettingSpec>& SettingSpecs();

// Where values come from, in increasing precedence.
struct ConfigSources {
  std::string file;                           // path of a KEY=VALUE file; empty for none
  std::map<std::string, std::string> env;     // the process environment (only declared names are read)
  std::map<std::string, std::string> flags;   // flag name -> value
};

// Builds Settings from defaults, then sources, validating each value and the whole.
[[nodiscard]] Result<Settings> LoadSettings(const ConfigSources& sources);

// Reads the process environment into a map (only names that some setting declares).
[[nodiscard]] std::map<std::string, std::string> ReadEnvironment();

// The effective configuration as KEY=VALUE lines with descriptions; secrets redacted.
[[nodiscard]] std::string RenderSettings(const Settings& s);
// A Markdown table of every setting: name, flag, default, description (for the README).
[[nodiscard]] std::string RenderSettingsMarkdown();

}  // namespace modulo
