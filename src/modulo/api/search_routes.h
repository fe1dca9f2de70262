// POST /api/search: retrieval over one collection (RAG Modulo's SearchInput/SearchOutput shape),
// with a generated answer when `answers` has a language model, and Server-Sent Events for
// "stream": true.
#pragma once

#include "modulo/api/app_context.h"
#include "modulo/generate/answer_service.h"
#include "modulo/http/router.h"
#include "modulo/search/search_service.h"
#include "modulo/store/identity_store.h"

namespace modulo::api {

// Every search reads through a store scoped to the caller (collections it cannot read are 404).
// `answers` null: extractive answers only (streaming still works). Both services must outlive the
// server.
void AddSearchRoutes(http::Router& router, AppContext& app, search::SearchService& service,
                     store::MetadataStore& store, store::IdentityStore& identity,
                     generate::AnswerService* answers = nullptr);

}  // namespace modulo::api
