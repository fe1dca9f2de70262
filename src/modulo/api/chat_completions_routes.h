// The OpenAI-compatible RAG endpoint, so any OpenAI client can ask a collection questions:
//   POST /v1/chat/completions   "model" names a collection (its id, or its name among the
//                               caller's collections); the last user message is answered with RAG
//                               over it, earlier messages are the conversation (carried into the
//                               prompt and used to make a follow-up standalone), a system message
//                               adds instructions to the server's. Streaming ("stream": true) or
//                               not. The passages behind the answer are in an extra field,
//                               "sources" (the search API's query_results entries with the [n]
//                               citations), on the completion or on the stream's last chunk.
//                               temperature, top_p, max_tokens / max_completion_tokens and stop
//                               override the caller's parameters; "config_metadata" (an extension)
//                               is the search API's.
//   GET  /v1/models             the caller's collections as models (id = collection id).
//   GET  /v1/models/{model}     one.
// Errors are in OpenAI's shape (api/openai_error.h). Without a language model the answer is the
// extractive one, labelled by "system_fingerprint": "modulo-extractive".
#pragma once

#include "modulo/api/app_context.h"
#include "modulo/api/search_routes.h"
#include "modulo/http/router.h"

namespace modulo::api {

void AddChatCompletionsRoutes(http::Router& router, AppContext& app, AnswerRoutesDeps& deps);

}  // namespace modulo::api
