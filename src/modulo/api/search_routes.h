// POST /api/search: retrieval over one collection (RAG Modulo's SearchInput/SearchOutput shape).
#pragma once

#include "modulo/api/app_context.h"
#include "modulo/http/router.h"
#include "modulo/search/search_service.h"
#include "modulo/store/identity_store.h"

namespace modulo::api {

// Every search reads through a store scoped to the caller (collections it cannot read are 404).
void AddSearchRoutes(http::Router& router, AppContext& app, search::SearchService& service,
                     store::MetadataStore& store, store::IdentityStore& identity);

}  // namespace modulo::api
