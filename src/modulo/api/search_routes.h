// POST /api/search: retrieval over one collection (RAG Modulo's SearchInput/SearchOutput shape).
#pragma once

#include "modulo/api/app_context.h"
#include "modulo/http/router.h"
#include "modulo/search/search_service.h"

namespace modulo::api {

void AddSearchRoutes(http::Router& router, AppContext& app, search::SearchService& service);

}  // namespace modulo::api
