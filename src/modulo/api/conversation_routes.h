// Conversations: chat sessions over a collection (RAG Modulo's /api/conversations) and the
// suggested questions of a collection.
//   GET|POST        /api/conversations                       ?collection_id=&include_archived=&limit=&offset=
//   GET|PUT|DELETE  /api/conversations/{session_id}
//   POST            /api/conversations/{session_id}/archive | /restore | /generate-name
//   GET|POST        /api/conversations/{session_id}/messages  POST runs a turn (generate/conversation_service.h);
//                                                             "stream": true answers as Server-Sent Events
//   GET             /api/conversations/{session_id}/export   ?format=json|txt|csv|markdown
//   GET|POST        /api/conversations/{session_id}/summaries
//   GET             /api/conversations/{session_id}/suggestions | /statistics
//   GET|POST|DELETE /api/collections/{collection_id}/questions
// A session is its owner's (system admins see all); others get 404. A turn reads the collection
// through the caller's scoped store, so access revoked since the session began ends it (404).
#pragma once

#include "modulo/api/app_context.h"
#include "modulo/api/search_routes.h"
#include "modulo/generate/conversation_service.h"
#include "modulo/http/router.h"
#include "modulo/store/conversation_store.h"

namespace modulo::api {

struct ConversationServices {
  AnswerRoutesDeps& answers;
  store::ConversationStore& conversations;
  generate::ConversationService& service;
};

void AddConversationRoutes(http::Router& router, AppContext& app, ConversationServices& services);

// The /ws "chat_message" handler (AppContext::ws_chat). The client sends
//   {"type": "chat_message", "request_id": "…", "data": {"content", "session_id"?, "collection_id"?,
//    "config_metadata"?, "answer_mode"?, "pipeline_id"?}}
// (the data fields may also be at the top level; "message" is accepted for "content"). With a
// session_id it is a turn of that conversation (stored, as POST …/messages), otherwise a one-off
// answer over collection_id. The server answers with events carrying the request_id:
//   processing, stage*, token* (the answer as it is generated), sources, ai_response
//   ({answer, sources, citations, usage, answer_type, message?}) — or error {message, code}.
[[nodiscard]] decltype(AppContext::ws_chat) MakeWsChat(ConversationServices& services, AppContext& app);

// Suggested questions for a collection from a sample of its passages (the first chunk of up to
// ten completed files), by `provider` when given, else by rules; stored in place of the old ones.
// `spent` receives the model's token usage (for accounting). Blocking.
[[nodiscard]] Result<std::vector<std::string>> GenerateSuggestedQuestions(
    store::MetadataStore& store, store::ConversationStore& conversations, const std::string& collection_id,
    generate::LlmProvider* provider, const std::function<void(const generate::TokenUsage&)>& spent = {},
    std::size_t n = 5);

}  // namespace modulo::api
