#include "modulo/api/collections_routes.h"

#include <utility>  // must precede Asio's coroutine headers on Boost 1.74

#include <chrono>
#include <ctime>

#include <algorithm>

#include "modulo/core/clock.h"
#include "modulo/core/json.h"
#include "modulo/http/json_body.h"
#include "modulo/index/types.h"

namespace modulo::api {
namespace {

namespace asio = boost::asio;
using http::Request;
using http::Response;
using http::Route;
using status = http::beast_http::status;
using json = nlohmann::json;

json FileJson(const store::FileRecord& f) {
  json warnings = modulo::ParseJsonOrDiscarded(f.warnings_json);
  return {{"id", f.id},
          {"document_id", f.id},
          {"collection_id", f.collection_id},
          {"filename", f.filename},
          {"file_type", f.format},
          {"mime_type", f.mime_type},
          {"file_size_bytes", f.size_bytes},
          {"content_hash", f.content_hash},
          {"status", store::ToString(f.status)},
          {"chunk_count", f.chunk_count},
          {"page_count", f.page_count},
          {"error", f.error.empty() ? json(nullptr) : json(f.error)},
          {"warnings", warnings.is_discarded() ? json::array() : warnings},
          {"task_id", f.task_id},
          {"created_at", FormatTimestamp(f.created_at_ms)},
          {"updated_at", FormatTimestamp(f.updated_at_ms)}};
}

std::string VectorDbName(const store::Collection& c) {
  return index::VectorCollectionName(c.owner_type, c.owner_id, c.id, c.generation);
}

json CollectionJson(const store::Collection& c, const std::vector<store::FileRecord>* files) {
  json settings = modulo::ParseJsonOrDiscarded(c.settings_json);
  if (settings.is_discarded() || !settings.is_object()) settings = json::object();
  json out = {{"id", c.id},
              {"name", c.name},
              {"description", c.description},
              {"vector_db_name", VectorDbName(c)},
              {"is_private", c.is_private},
              {"status", store::ToString(c.status)},
              {"embedding_model", c.embedding_model},
              {"chunking", settings.value("chunking", json::object())},
              {"retrieval", settings.value("retrieval", json::object())},
              {"owner_type", c.owner_type},
              {"owner_id", c.owner_id},
              {"user_ids", c.owner_id.empty() || c.owner_type != "user" ? json::array() : json::array({c.owner_id})},
              {"generation", c.generation},
              {"reindexing", c.next_generation > c.generation},
              {"file_count", c.file_count},
              {"chunk_count", c.chunk_count},
              {"created_at", FormatTimestamp(c.created_at_ms)},
              {"updated_at", FormatTimestamp(c.updated_at_ms)}};
  if (files != nullptr) {
    json arr = json::array();
    for (const auto& f : *files) {
      arr.push_back({{"id", f.id},
                     {"filename", f.filename},
                     {"file_size_bytes", f.size_bytes},
                     {"chunk_count", f.chunk_count},
                     {"document_id", f.id},
                     {"status", store::ToString(f.status)}});
    }
    out["files"] = std::move(arr);
  }
  return out;
}

json TaskJson(const jobs::Job& j) {
  return {{"task_id", j.id},
          {"kind", j.kind},
          {"state", jobs::ToString(j.state)},
          {"stage", j.stage},
          {"progress", j.progress},
          {"attempts", j.attempts},
          {"max_attempts", j.max_attempts},
          {"error", j.error.empty() ? json(nullptr) : json(j.error)},
          {"collection_id", j.collection_id.empty() ? json(nullptr) : json(j.collection_id)},
          {"file_id", j.file_id.empty() ? json(nullptr) : json(j.file_id)},
          {"next_attempt_at", j.state == jobs::JobState::kQueued ? json(FormatTimestamp(j.run_after_ms)) : json(nullptr)},
          {"created_at", FormatTimestamp(j.created_at_ms)},
          {"updated_at", FormatTimestamp(j.updated_at_ms)}};
}

json Doc(const std::string& description) {
  return {{"description", description}, {"content", {{"application/json", {{"schema", {{"type", "object"}}}}}}}};
}

Response ErrorResponse(const Error& e) { return Response::FromError(e); }

}  // namespace

void AddCollectionRoutes(http::Router& router, AppContext& app, CollectionServices& svc) {
  {
    Route r;
    r.method = http::beast_http::verb::post;
    r.path = "/api/collections";
    r.policy = "user";
    r.doc.summary = "Create a collection (yours, or a team's with team_id when you are its admin)";
    r.doc.tag = "collections";
    r.doc.request_body = {
        {"required", true},
        {"content",
         {{"application/json",
           {{"schema",
             json::parse(R"({"type":"object","required":["name"],"properties":{
               "name":{"type":"string","maxLength":255},"description":{"type":"string"},
               "is_private":{"type":"boolean"},
               "chunking":{"type":"object","properties":{
                 "strategy":{"enum":["sentence","fixed","semantic","hierarchical"]},
                 "chunk_tokens":{"type":"integer"},"overlap_tokens":{"type":"integer"},
                 "parent_tokens":{"type":"integer"},"semantic_percentile":{"type":"number"}}},
               "retrieval":{"type":"object","properties":{
                 "retriever":{"enum":["vector","keyword","hybrid"]},"fusion":{"enum":["rrf","weighted"]},
                 "rrf_k":{"type":"number"},"vector_weight":{"type":"number"},"top_k":{"type":"integer"},
                 "candidates":{"type":"integer"},"expand_parents":{"type":"boolean"},"dedupe":{"type":"boolean"}}}}})")}}}}}};
    r.doc.responses = {{"200", Doc("The new collection")}, {"409", Doc("A collection with this name exists")}};
    r.handler = [&app, &svc](Request& req) -> asio::awaitable<Response> {
      auto body = http::ParseJsonBody(req);
      if (!body) co_return ErrorResponse(body.error());
      const json& j = *body;
      for (const auto& [key, value] : j.items()) {
        if (key != "name" && key != "description" && key != "is_private" && key != "chunking" && key != "retrieval" &&
            key != "team_id" && key != "users" && key != "status") {
          co_return ErrorResponse(Error::InvalidArgument("unknown field '" + key + "'"));
        }
        (void)value;
      }
      if (!j.contains("name") || !j["name"].is_string()) {
        co_return ErrorResponse(Error::InvalidArgument("'name' is required and must be a string"));
      }
      store::NewCollection nc;
      nc.name = j["name"].get<std::string>();
      if (nc.name.empty() || nc.name.size() > 255) {
        co_return ErrorResponse(Error::InvalidArgument("'name' must be 1 to 255 bytes"));
      }
      if (j.contains("description")) {
        if (!j["description"].is_string()) co_return ErrorResponse(Error::InvalidArgument("'description' must be a string"));
        nc.description = j["description"].get<std::string>();
      }
      if (j.contains("is_private")) {
        if (!j["is_private"].is_boolean()) co_return ErrorResponse(Error::InvalidArgument("'is_private' must be a boolean"));
        nc.is_private = j["is_private"].get<bool>();
      }
      auto chunking = ingest::ChunkingSettings::FromJson(j.value("chunking", json()), svc.model_max_tokens);
      if (!chunking) co_return ErrorResponse(chunking.error());
      search::RetrievalSettings retrieval = svc.retrieval_defaults;
      if (auto st = retrieval.Apply(j.value("retrieval", json()), svc.max_top_k, "retrieval"); !st) {
        co_return ErrorResponse(st.error());
      }
      nc.settings_json = json{{"chunking", chunking->ToJson()}, {"retrieval", retrieval.ToJson()}}.dump();
      nc.embedding_model = svc.default_embedding_model;
      const auth::Principal* me = Security::PrincipalOf(req);
      nc.owner_id = me != nullptr ? me->user_id : "";
      if (j.contains("team_id")) {
        if (!j["team_id"].is_string()) co_return ErrorResponse(Error::InvalidArgument("'team_id' must be a string"));
        nc.owner_type = "team";
        nc.owner_id = j["team_id"].get<std::string>();
      }
      auto created = co_await RunOn(app.blocking_pool, [&]() -> Result<store::Collection> {
        auto scoped = ScopedStore(svc.store, *svc.identity, req);
        if (me != nullptr) {
          auto quota = QuotaFor(*svc.identity, svc.quotas, *me);
          if (!quota) return Fail(quota.error());
          nc.owner_collection_limit = quota->collections;
        }
        return scoped.CreateCollection(nc);
      });
      if (!created) {
        if (created.error().code() == ErrorCode::kQuotaExceeded) svc.security->quota_rejections().With({"collections"}).Inc();
        co_return ErrorResponse(created.error());
      }
      svc.security->Audit(req, "collection.create", "collection:" + created->id, "ok",
                          {{"owner_type", created->owner_type}, {"owner_id", created->owner_id}});
      std::vector<store::FileRecord> none;
      co_return Response::Json(CollectionJson(*created, &none));
    };
    router.Add(std::move(r));
  }
  {
    Route r;
    r.path = "/api/collections";
    r.policy = "user";
    r.doc.summary = "Collections you can read (file and chunk counts, without file lists)";
    r.doc.tag = "collections";
    r.doc.responses = {{"200", Doc("Collections, newest first")}};
    r.handler = [&app, &svc](Request& req) -> asio::awaitable<Response> {
      auto list = co_await RunOn(app.blocking_pool, [&] {
        return ScopedStore(svc.store, *svc.identity, req).ListCollections("");
      });
      if (!list) co_return ErrorResponse(list.error());
      json arr = json::array();
      for (const auto& c : *list) arr.push_back(CollectionJson(c, nullptr));
      co_return Response::Json(arr);
    };
    router.Add(std::move(r));
  }
  {
    Route r;
    r.path = "/api/collections/{collection_id}";
    r.policy = "collection:read:collection_id";
    r.doc.summary = "Get a collection with its files";
    r.doc.tag = "collections";
    r.doc.responses = {{"200", Doc("The collection")}, {"404", Doc("No such collection")}};
    r.handler = [&app, &svc](Request& req) -> asio::awaitable<Response> {
      const std::string id = req.PathParam("collection_id");
      auto result = co_await RunOn(app.blocking_pool, [&]() -> Result<json> {
        auto scoped = ScopedStore(svc.store, *svc.identity, req);
        auto c = scoped.GetCollection(id);
        if (!c) return Fail(c.error());
        auto files = scoped.ListFiles(id);
        if (!files) return Fail(files.error());
        return CollectionJson(*c, &*files);
      });
      if (!result) co_return ErrorResponse(result.error());
      co_return Response::Json(*result);
    };
    router.Add(std::move(r));
  }
  {
    Route r;
    r.method = http::beast_http::verb::delete_;
    r.path = "/api/collections/{collection_id}";
    r.policy = "collection:admin:collection_id";
    r.doc.summary = "Delete a collection with all its files and chunks";
    r.doc.tag = "collections";
    r.doc.responses = {{"204", {{"description", "Deleted"}}}, {"404", Doc("No such collection")}};
    r.handler = [&app, &svc](Request& req) -> asio::awaitable<Response> {
      const std::string id = req.PathParam("collection_id");
      auto st = co_await RunOn(app.blocking_pool, [&]() -> Status {
        auto scoped = ScopedStore(svc.store, *svc.identity, req);
        auto state = scoped.GetCollectionState(id);
        if (!state) return Fail(state.error());
        if (auto d = scoped.DeleteCollection(id); !d) return d;
        if (svc.index_sync != nullptr) svc.index_sync->DropCollection(*state);
        return {};
      });
      if (!st) co_return ErrorResponse(st.error());
      svc.security->Audit(req, "collection.delete", "collection:" + id, "ok");
      co_return Response::NoContent();
    };
    router.Add(std::move(r));
  }
  {
    Route r;
    r.method = http::beast_http::verb::post;
    r.path = "/api/collections/{collection_id}/documents";
    r.policy = "collection:write:collection_id|upload";
    r.body = http::BodyKind::kMultipart;
    r.doc.summary = "Upload documents (multipart field 'files', one or many); processing runs in the background";
    r.doc.tag = "documents";
    r.doc.request_body = {
        {"required", true},
        {"content",
         {{"multipart/form-data",
           {{"schema",
             {{"type", "object"},
              {"properties", {{"files", {{"type", "array"}, {"items", {{"type", "string"}, {"format", "binary"}}}}}}}}}}}}}};
    r.doc.responses = {{"202", Doc("One entry per file: file_id, task_id, status (processing, duplicate, failed)")},
                       {"413", Doc("The request is larger than the upload limit")}};
    r.handler = [&app, &svc](Request& req) -> asio::awaitable<Response> {
      const std::string id = req.PathParam("collection_id");
      if (svc.ingest == nullptr) {
        co_return ErrorResponse(Error::Unavailable("no embedder is configured, so documents cannot be processed"));
      }
      // A form's empty file input arrives as a part with no name and no bytes: not a file.
      std::erase_if(req.files, [](const http::UploadedFile& f) {
        if (!f.filename.empty() || f.size != 0) return false;
        std::error_code ec;
        std::filesystem::remove(f.path, ec);
        return true;
      });
      if (req.files.empty()) {
        co_return ErrorResponse(Error::InvalidArgument("no files in the request; send them as multipart field 'files'"));
      }
      std::vector<ingest::Upload> uploads;
      std::vector<ingest::Accepted> rejected;
      for (auto& f : req.files) {
        if (svc.max_file_bytes > 0 && f.size > svc.max_file_bytes) {
          rejected.push_back({f.filename, "", "", "failed",
                              "file of " + std::to_string(f.size) + " bytes exceeds the per-file limit of " +
                                  std::to_string(svc.max_file_bytes) + " bytes"});
          continue;
        }
        uploads.push_back({f.path, f.filename, f.content_type, f.size});
      }
      auto accepted = co_await RunOn(app.blocking_pool, [&]() -> Result<std::vector<ingest::Accepted>> {
        store::FileLimits limits;
        if (const auth::Principal* me = Security::PrincipalOf(req)) {
          auto quota = QuotaFor(*svc.identity, svc.quotas, *me);
          if (!quota) return Fail(quota.error());
          limits.files_per_collection = quota->files_per_collection;
          limits.owner_storage_bytes = quota->storage_bytes;
        }
        return svc.ingest->Accept(id, std::move(uploads), limits);
      });
      if (!accepted) co_return ErrorResponse(accepted.error());
      // Every file refused by a quota: the request as a whole is over quota.
      const bool all_over_quota =
          !accepted->empty() && rejected.empty() && std::all_of(accepted->begin(), accepted->end(), [](const auto& a) {
            return a.error_code == ErrorCode::kQuotaExceeded;
          });
      for (const auto& a : *accepted) {
        if (a.error_code == ErrorCode::kQuotaExceeded) {
          auto d = modulo::ParseJsonOrDiscarded(a.error_details);
          svc.security->quota_rejections().With({d.is_object() ? d.value("resource", "files") : "files"}).Inc();
        }
      }
      if (all_over_quota) {
        const auto& first = accepted->front();
        co_return ErrorResponse(Error(ErrorCode::kQuotaExceeded, first.error).WithDetails(first.error_details));
      }
      json arr = json::array();
      for (const auto& list : {&*accepted, &rejected}) {
        for (const auto& a : *list) {
          json item = {{"filename", a.filename},
                       {"file_id", a.file_id.empty() ? json(nullptr) : json(a.file_id)},
                       {"task_id", a.task_id.empty() ? json(nullptr) : json(a.task_id)},
                       {"status", a.status}};
          if (!a.error.empty()) item["error"] = a.error;
          arr.push_back(std::move(item));
        }
      }
      co_return Response::Json(arr, status::accepted);
    };
    router.Add(std::move(r));
  }
  {
    Route r;
    r.path = "/api/collections/{collection_id}/files";
    r.policy = "collection:read:collection_id";
    r.doc.summary = "Files of a collection with their processing status";
    r.doc.tag = "documents";
    r.doc.responses = {{"200", Doc("Files in upload order")}, {"404", Doc("No such collection")}};
    r.handler = [&app, &svc](Request& req) -> asio::awaitable<Response> {
      const std::string id = req.PathParam("collection_id");
      auto files = co_await RunOn(app.blocking_pool, [&] { return ScopedStore(svc.store, *svc.identity, req).ListFiles(id); });
      if (!files) co_return ErrorResponse(files.error());
      json arr = json::array();
      for (const auto& f : *files) arr.push_back(FileJson(f));
      co_return Response::Json(arr);
    };
    router.Add(std::move(r));
  }
  {
    Route r;
    r.method = http::beast_http::verb::delete_;
    r.path = "/api/collections/{collection_id}/documents/{document_id}";
    r.policy = "collection:write:collection_id";
    r.doc.summary = "Delete a document and its chunks";
    r.doc.tag = "documents";
    r.doc.responses = {{"204", {{"description", "Deleted"}}}, {"404", Doc("No such document in this collection")}};
    r.handler = [&app, &svc](Request& req) -> asio::awaitable<Response> {
      const std::string cid = req.PathParam("collection_id");
      const std::string did = req.PathParam("document_id");
      auto st = co_await RunOn(app.blocking_pool, [&]() -> Status {
        auto scoped = ScopedStore(svc.store, *svc.identity, req);
        auto f = scoped.GetFile(did);
        if (!f || f->collection_id != cid) {
          return Fail(Error::NotFound("document " + did + " not found in collection " + cid));
        }
        if (auto s = scoped.DeleteFile(did); !s) return s;
        if (svc.ingest != nullptr) return svc.ingest->RefreshCollectionStatus(cid);
        return {};
      });
      if (!st) co_return ErrorResponse(st.error());
      co_return Response::NoContent();
    };
    router.Add(std::move(r));
  }
  {
    Route r;
    r.method = http::beast_http::verb::post;
    r.path = "/api/collections/{collection_id}/reindex";
    r.policy = "collection:write:collection_id";
    r.doc.summary = "Re-chunk and re-embed every file into a new generation, then switch to it atomically";
    r.doc.tag = "collections";
    r.doc.request_body = {{"required", false},
                          {"content", {{"application/json", {{"schema", json::parse(R"({"type":"object",
                            "properties":{"chunking":{"type":"object"}}})")}}}}}};
    r.doc.responses = {{"202", Doc("The reindex task")}, {"409", Doc("A reindex of this collection is running")}};
    r.handler = [&app, &svc](Request& req) -> asio::awaitable<Response> {
      const std::string id = req.PathParam("collection_id");
      if (svc.ingest == nullptr) {
        co_return ErrorResponse(Error::Unavailable("no embedder is configured, so collections cannot be reindexed"));
      }
      json chunking;
      if (!req.body.empty()) {
        auto body = http::ParseJsonBody(req);
        if (!body) co_return ErrorResponse(body.error());
        for (const auto& [key, value] : body->items()) {
          if (key != "chunking") co_return ErrorResponse(Error::InvalidArgument("unknown field '" + key + "'"));
          chunking = value;
        }
      }
      auto job = co_await RunOn(app.blocking_pool, [&] { return svc.ingest->StartReindex(id, chunking); });
      if (!job) co_return ErrorResponse(job.error());
      json payload = modulo::ParseJsonOrDiscarded(job->payload_json);
      co_return Response::Json({{"task_id", job->id},
                                {"collection_id", id},
                                {"generation", payload.value("generation", 0)},
                                {"status", "processing"}},
                               status::accepted);
    };
    router.Add(std::move(r));
  }
  {
    Route r;
    r.path = "/api/tasks/{task_id}";
    r.policy = "user";  // and read access to the task's collection, checked below
    r.doc.summary = "A background task: state, stage, progress, attempts and error";
    r.doc.tag = "tasks";
    r.doc.responses = {{"200", Doc("The task")}, {"404", Doc("No such task")}};
    r.handler = [&app, &svc](Request& req) -> asio::awaitable<Response> {
      const std::string id = req.PathParam("task_id");
      auto job = co_await RunOn(app.blocking_pool, [&]() -> Result<jobs::Job> {
        auto j = svc.jobs.Get(id);
        if (!j) return j;
        // A task is visible to whoever can read its collection.
        if (!j->collection_id.empty()) {
          if (auto st = ScopedStore(svc.store, *svc.identity, req).Require(j->collection_id, store::AccessLevel::kRead);
              !st) {
            return Fail(Error::NotFound("task " + id + " not found"));
          }
        }
        return j;
      });
      if (!job) co_return ErrorResponse(job.error());
      co_return Response::Json(TaskJson(*job));
    };
    router.Add(std::move(r));
  }
}

}  // namespace modulo::api
