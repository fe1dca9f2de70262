// Providers as data: the fields of each kind of per-user answer configuration (LLM providers and
// their models, LLM parameter sets, prompt templates, pipelines), their validation, their JSON as
// the API returns it, and ProfileResolver, which turns a user's records into the AnswerProfile
// one request is answered with.
//
// Records are kept by store::UserConfigStore as documents (a validated JSON body). A provider's
// API key is never part of a body: it is sealed with the server key (auth::SecretBox, by the
// caller's SealFn/OpenFn, bound to "llm_provider:<user id>:<record id>") into the record's secret,
// and no output contains it — only "has_api_key".
//
// Resolution, for (user, collection, optional pipeline id):
//   pipeline   the named one (NotFound if it is not the user's), else the user's default pipeline
//              for this collection, else the user's default pipeline without a collection, else none;
//   provider   the pipeline's, else the user's default provider; an inactive one is refused
//              (FailedPrecondition-like InvalidArgument naming it); none: the server's profile;
//   model      the pipeline's model_id, else the provider's default generation model, else its
//              first active generation model; none: InvalidArgument saying how to add one;
//   parameters the pipeline's, else the user's default set, else the server's;
//   template   the pipeline's template_id, else the user's default RAG_QUERY template, else the
//              server's prompt;
//   context    the model's context_tokens, capped by the pipeline's or template's max_context_length.
// Provider clients come from the ProviderRegistry: one per (type, url, model, key, …).
//
// Thread-safety: the functions are pure; ProfileResolver may be used from any thread (it blocks on
// the store: call it on the blocking pool).
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "modulo/core/error.h"
#include "modulo/generate/answer_service.h"
#include "modulo/generate/provider_registry.h"
#include "modulo/net/egress.h"
#include "modulo/store/user_config_store.h"

namespace modulo::generate {

// Seals/opens a provider's API key for a context (see the header comment).
using SealFn = std::function<Result<std::string>(std::string_view plaintext, std::string_view context)>;
using OpenFn = std::function<Result<std::string>(std::string_view sealed, std::string_view context)>;

// "llm_provider:<user id>:<record id>".
[[nodiscard]] std::string SecretContext(const store::ConfigRecord& r);

// A validated write of one record: the record (body, name, scope, is_default set; id, user_id,
// kind and parent_id as given by the caller) and, for providers, the API key when the input had one.
struct ConfigWrite {
  store::ConfigRecord record;
  std::optional<std::string> api_key;  // "" removes the key
};

// Validates an API input for `kind` (unknown fields and bad values are InvalidArgument naming the
// field). With `existing` (an update), fields absent from `input` keep their stored values.
[[nodiscard]] Result<ConfigWrite> ParseConfigInput(store::ConfigKind kind, const nlohmann::json& input,
                                                   const store::ConfigRecord* existing);

// The API's JSON for a stored record: its body's fields plus id, user_id, name, is_default,
// created_at, updated_at; providers add has_api_key and models provider_id. Never a secret.
[[nodiscard]] nlohmann::json ConfigOutput(const store::ConfigRecord& r);

// The client configuration of a provider record with one of its model records (opens the API key).
// A user's provider is user-aimed: its URLs must pass `egress` (never null in a server).
[[nodiscard]] Result<ProviderConfig> ProviderConfigFor(const store::ConfigRecord& provider,
                                                       const store::ConfigRecord& model, const OpenFn& open_secret,
                                                       std::shared_ptr<const net::EgressPolicy> egress);

// The prompt template types ("RAG_QUERY", "QUESTION_GENERATION", …).
[[nodiscard]] bool IsTemplateType(std::string_view type) noexcept;

struct ProfileResolverDeps {
  store::UserConfigStore& configs;
  ProviderRegistry& providers;
  OpenFn open_secret;
  std::shared_ptr<const net::EgressPolicy> egress;  // where users' provider URLs may go
};

class ProfileResolver {
 public:
  // `server` is the profile of requests whose user has configured nothing (the server's settings).
  ProfileResolver(ProfileResolverDeps deps, AnswerProfile server);

  // Blocking. pipeline_id empty: the defaults. Returns the server's profile when the user has no
  // pipeline and no default provider.
  [[nodiscard]] Result<std::shared_ptr<const AnswerProfile>> Resolve(const std::string& user_id,
                                                                     const std::string& collection_id,
                                                                     const std::string& pipeline_id);
  [[nodiscard]] const std::shared_ptr<const AnswerProfile>& server_profile() const noexcept { return server_; }

 private:
  ProfileResolverDeps deps_;
  std::shared_ptr<const AnswerProfile> server_;
};

}  // namespace modulo::generate
