// Collections, documents, files and tasks (RAG Modulo's paths and shapes where it has them):
//   POST   /api/collections                          create
//   GET    /api/collections                          list
//   GET    /api/collections/{id}                     one, with its files
//   DELETE /api/collections/{id}                     delete with all files and chunks
//   POST   /api/collections/{id}/documents           multipart upload → 202 [{file_id, task_id, status}]
//   GET    /api/collections/{id}/files               files with status, chunk count, error
//   DELETE /api/collections/{id}/documents/{doc_id}  delete a document (its chunks leave every index)
//   GET    /api/tasks/{task_id}                      state, stage, progress, attempts, error
// Store work runs on the blocking pool.
#pragma once

#include "modulo/api/app_context.h"
#include "modulo/api/security.h"
#include "modulo/api/tenancy_routes.h"
#include "modulo/http/router.h"
#include "modulo/ingest/ingest_service.h"
#include "modulo/jobs/job_queue.h"
#include "modulo/search/index_sync.h"
#include "modulo/search/retrieval_settings.h"
#include "modulo/store/metadata_store.h"

namespace modulo::api {

struct CollectionServices {
  store::MetadataStore& store;
  jobs::JobQueue& jobs;
  ingest::IngestService* ingest;  // null when no embedder is configured (uploads answer 503)
  std::string default_embedding_model;
  int model_max_tokens = 256;
  std::size_t max_file_bytes = 0;
  search::IndexSync* index_sync = nullptr;  // told when a collection is deleted
  search::RetrievalSettings retrieval_defaults;
  std::size_t max_top_k = 100;
  store::IdentityStore* identity = nullptr;  // every handler reads through a store scoped to the caller
  Security* security = nullptr;
  QuotaDefaults quotas;
};

void AddCollectionRoutes(http::Router& router, AppContext& app, CollectionServices& services);

}  // namespace modulo::api
