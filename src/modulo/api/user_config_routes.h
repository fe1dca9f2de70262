// Per-user answer configuration (providers as data), RAG Modulo's paths:
//   GET|POST        /api/users/{user_id}/llm-providers
//   GET|PUT|DELETE  /api/users/{user_id}/llm-providers/{id}         PUT …/{id}/default
//   GET|POST        /api/users/{user_id}/llm-providers/{id}/models
//   GET|PUT|DELETE  /api/users/{user_id}/llm-providers/{id}/models/{model_id}   PUT …/default
//   GET|POST        /api/users/{user_id}/llm-parameters              GET|PUT|DELETE …/{id}, PUT …/{id}/default
//   GET|POST        /api/users/{user_id}/prompt-templates            GET|PUT|DELETE …/{id}, PUT …/{id}/default
//   GET             /api/users/{user_id}/prompt-templates/type/{template_type}
//   GET|POST        /api/users/{user_id}/pipelines                   GET|PUT|DELETE …/{id}, PUT …/{id}/default
// Policy self:user_id ("me" names the caller; system admins may manage anyone's). Fields and
// validation: generate/llm_config.h. PUT changes only the fields it names. A provider's api_key
// is write-only: sealed with the server key before it is stored, never returned (has_api_key
// says whether one is set; "api_key": null removes it). A pipeline's references (provider, model
// of that provider, parameters, RAG_QUERY template, a collection the user can read) are checked
// when it is written; a provider still named by a pipeline cannot be deleted (409).
#pragma once

#include "modulo/api/app_context.h"
#include "modulo/auth/secret_box.h"
#include "modulo/generate/provider_registry.h"
#include "modulo/http/router.h"
#include "modulo/net/egress.h"
#include "modulo/store/identity_store.h"
#include "modulo/store/user_config_store.h"

namespace modulo::api {

struct UserConfigServices {
  store::UserConfigStore& configs;
  store::IdentityStore& identity;
  const auth::SecretBox& secrets;
  generate::ProviderRegistry& providers;  // clients of a changed provider are dropped
  std::shared_ptr<const net::EgressPolicy> egress;  // where users' provider URLs may go
};

void AddUserConfigRoutes(http::Router& router, AppContext& app, UserConfigServices& services);

}  // namespace modulo::api
