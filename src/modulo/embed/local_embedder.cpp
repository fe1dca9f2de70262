#include "modulo/embed/local_embedder.h"

#include <filesystem>

namespace modulo::embed {
namespace {

// Texts are tokenized and encoded in slices of this many, so a huge batch needs memory for
// one slice of token ids plus the output.
constexpr std::size_t kSliceTexts = 256;

}  // namespace

LocalEmbedder::LocalEmbedder(WordPieceTokenizer tokenizer, std::unique_ptr<BertEncoder> encoder, ModelInfo info,
                             LocalEmbedderOptions options)
    : tokenizer_(std::move(tokenizer)), encoder_(std::move(encoder)), info_(std::move(info)), options_(std::move(options)) {}

Result<std::unique_ptr<LocalEmbedder>> LocalEmbedder::Create(const LocalEmbedderOptions& options) {
  namespace fs = std::filesystem;
  const std::string dir_name = fs::path(options.model_dir).lexically_normal().filename().string().empty()
                                   ? fs::path(options.model_dir).lexically_normal().parent_path().filename().string()
                                   : fs::path(options.model_dir).lexically_normal().filename().string();
  ModelLoadOptions load;
  load.max_seq_length = options.max_seq_length;
  if (options.verify_checksum) {
    load.expected_sha256 = options.expected_sha256;
    if (load.expected_sha256.empty() && dir_name == kDefaultModelName) load.expected_sha256 = kMiniLmSafetensorsSha256;
  }
  auto model = LoadBertModel(options.model_dir, load);
  if (!model) return Fail(std::move(model.error()).Wrap("loading the embedding model"));
  auto tokenizer = WordPieceTokenizer::FromVocabFile((fs::path(options.model_dir) / "vocab.txt").string(), model->tokenizer);
  if (!tokenizer) return Fail(std::move(tokenizer.error()).Wrap("loading the embedding model"));
  if (static_cast<int>(tokenizer->vocab_size()) != model->config.vocab_size) {
    return Fail(Error::InvalidArgument("vocab.txt has " + std::to_string(tokenizer->vocab_size()) +
                                       " entries but config.json says vocab_size " +
                                       std::to_string(model->config.vocab_size)));
  }
  EncoderOptions enc;
  enc.precision = options.precision;
  enc.threads = options.threads;
  enc.max_batch_tokens = options.max_batch_tokens;
  auto encoder = BertEncoder::Create(std::move(*model), enc);
  if (!encoder) return Fail(std::move(encoder.error()));
  ModelInfo info;
  info.name = options.model_name.empty() ? dir_name : options.model_name;
  info.dimension = static_cast<std::size_t>((*encoder)->dimension());
  info.max_tokens = static_cast<std::size_t>((*encoder)->max_seq_length());
  info.precision = std::string(PrecisionName((*encoder)->effective_precision()));
  return std::make_unique<LocalEmbedder>(std::move(*tokenizer), std::move(*encoder), std::move(info), options);
}

Result<Embeddings> LocalEmbedder::Embed(std::span<const std::string> texts, InputKind kind) {
  Embeddings out;
  out.dimension = info_.dimension;
  out.values.resize(texts.size() * info_.dimension);
  out.token_counts.resize(texts.size());
  const std::string& prefix = kind == InputKind::kQuery ? options_.query_prefix : options_.passage_prefix;
  std::vector<std::vector<std::int32_t>> ids;
  std::string buf;
  for (std::size_t start = 0; start < texts.size(); start += kSliceTexts) {
    const std::size_t n = std::min(kSliceTexts, texts.size() - start);
    ids.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      const std::string& text = texts[start + i];
      if (prefix.empty()) {
        ids[i] = tokenizer_.Encode(text, info_.max_tokens);
      } else if (prefix.back() == ' ') {
        // A prefix ending in a space tokenizes on its own: join the token lists rather than
        // copying a possibly huge text.
        const std::size_t budget = info_.max_tokens - 2;
        auto& v = ids[i];
        v.clear();
        v.push_back(tokenizer_.cls_id());
        for (const Token& t : tokenizer_.Tokenize(prefix, budget)) v.push_back(t.id);
        if (v.size() - 1 < budget) {
          for (const Token& t : tokenizer_.Tokenize(text, budget - (v.size() - 1))) v.push_back(t.id);
        }
        v.push_back(tokenizer_.sep_id());
      } else {
        buf.assign(prefix);
        buf.append(text);
        ids[i] = tokenizer_.Encode(buf, info_.max_tokens);
      }
      out.token_counts[start + i] = static_cast<std::uint32_t>(ids[i].size());
    }
    auto status = encoder_->Encode(ids, std::span(out.values).subspan(start * info_.dimension, n * info_.dimension));
    if (!status) return Fail(std::move(status.error()));
  }
  return out;
}

Result<std::size_t> LocalEmbedder::CountTokens(std::string_view text) const { return tokenizer_.CountTokens(text); }

}  // namespace modulo::embed
