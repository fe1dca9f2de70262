#include "modulo/embed/model.h"

#include <openssl/evp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "modulo/core/json.h"

namespace modulo::embed {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

Result<json> ReadJson(const fs::path& path, bool required) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    if (!required) return json::object();
    return Fail(Error::NotFound("model file missing: " + path.string()));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail(Error::Unavailable("cannot read " + path.string()));
  std::stringstream ss;
  ss << in.rdbuf();
  json j = modulo::ParseJsonOrDiscarded(ss.str());
  if (j.is_discarded() || !j.is_object()) return Fail(Error::InvalidArgument("malformed JSON in " + path.string()));
  return j;
}

Result<int> PositiveInt(const json& j, const char* key, const fs::path& file) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer() || it->get<std::int64_t>() <= 0 || it->get<std::int64_t>() > (1 << 20)) {
    return Fail(Error::InvalidArgument(file.string() + ": '" + key + "' must be a positive integer"));
  }
  return static_cast<int>(it->get<std::int64_t>());
}

struct EvpCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

// Finds the prefix ("", "bert.", "model.") under which the BERT tensors are stored.
std::string TensorPrefix(const SafetensorsFile& st) {
  for (const char* p : {"", "bert.", "model.", "0.auto_model."}) {
    if (st.Find(std::string(p) + "embeddings.word_embeddings.weight") != nullptr) return p;
  }
  return "";
}

}  // namespace

std::string MissingModelHint(const std::string& dir) {
  return "embedding model not found in " + dir +
         ": run scripts/fetch-model.sh to install all-MiniLM-L6-v2 there (or point the embedding model directory, "
         "e.g. MODULO_MODEL_DIR, at a sentence-transformers model directory)";
}

namespace {

// Lets the kernel take back the pages of a range of a read-only file mapping: they leave the
// process's resident set (staying in the page cache) and fault back in if read again.
void ReleasePages(std::span<const std::byte> bytes) {
  if (bytes.empty()) return;
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<std::uintptr_t>(bytes.data()) & ~(page - 1);
  const auto end = reinterpret_cast<std::uintptr_t>(bytes.data() + bytes.size());
  ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

// sha256 in windows of 8 MiB, calling after_window(window) once each is hashed.
template <typename F>
std::string Sha256HexWindowed(std::span<const std::byte> bytes, F&& after_window) {
  constexpr std::size_t kWindow = std::size_t{8} << 20;
  std::unique_ptr<EVP_MD_CTX, EvpCtxDeleter> ctx(EVP_MD_CTX_new());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) return {};
  for (std::size_t at = 0; at < bytes.size(); at += kWindow) {
    const auto window = bytes.subspan(at, std::min(kWindow, bytes.size() - at));
    if (EVP_DigestUpdate(ctx.get(), window.data(), window.size()) != 1) return {};
    after_window(window);
  }
  if (EVP_DigestFinal_ex(ctx.get(), digest, &len) != 1) return {};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

}  // namespace

std::string Sha256Hex(std::span<const std::byte> bytes) {
  return Sha256HexWindowed(bytes, [](std::span<const std::byte>) {});
}

Result<BertModel> LoadBertModel(const std::string& dir_str, const ModelLoadOptions& options) {
  const fs::path dir(dir_str);
  std::error_code ec;
  if (!fs::is_directory(dir, ec) || !fs::exists(dir / "model.safetensors", ec)) {
    return Fail(Error::NotFound(MissingModelHint(dir_str)));
  }
  BertModel model;
  model.dir = dir_str;

  // config.json: the BERT hyper-parameters.
  auto cfg = ReadJson(dir / "config.json", true);
  if (!cfg) return Fail(std::move(cfg.error()));
  const fs::path cfg_path = dir / "config.json";
  if (auto mt = cfg->find("model_type"); mt != cfg->end() && mt->is_string()) {
    const auto t = mt->get<std::string>();
    if (t != "bert") return Fail(Error::Unimplemented(cfg_path.string() + ": model_type '" + t + "' is not supported"));
  }
  if (auto act = cfg->find("hidden_act"); act != cfg->end() && act->is_string() && act->get<std::string>() != "gelu") {
    return Fail(Error::Unimplemented(cfg_path.string() + ": hidden_act '" + act->get<std::string>() +
                                     "' is not supported (only gelu)"));
  }
  BertConfig& c = model.config;
  for (auto [key, field] : {std::pair{"vocab_size", &c.vocab_size}, {"hidden_size", &c.hidden_size},
                            {"num_hidden_layers", &c.num_layers}, {"num_attention_heads", &c.num_heads},
                            {"intermediate_size", &c.intermediate_size},
                            {"max_position_embeddings", &c.max_position_embeddings},
                            {"type_vocab_size", &c.type_vocab_size}}) {
    auto v = PositiveInt(*cfg, key, cfg_path);
    if (!v) return Fail(std::move(v.error()));
    *field = *v;
  }
  if (c.hidden_size % c.num_heads != 0) {
    return Fail(Error::InvalidArgument(cfg_path.string() + ": hidden_size is not a multiple of num_attention_heads"));
  }
  if (auto eps = cfg->find("layer_norm_eps"); eps != cfg->end() && eps->is_number()) c.layer_norm_eps = eps->get<float>();

  // Tokenizer, sentence-transformers and pooling configuration (all optional).
  auto tok = ReadJson(dir / "tokenizer_config.json", false);
  if (!tok) return Fail(std::move(tok.error()));
  if (auto v = tok->find("do_lower_case"); v != tok->end() && v->is_boolean()) model.tokenizer.lowercase = v->get<bool>();
  model.tokenizer.strip_accents = model.tokenizer.lowercase;
  if (auto v = tok->find("strip_accents"); v != tok->end() && v->is_boolean()) model.tokenizer.strip_accents = v->get<bool>();
  if (auto v = tok->find("tokenize_chinese_chars"); v != tok->end() && v->is_boolean()) {
    model.tokenizer.tokenize_chinese_chars = v->get<bool>();
  }
  auto sbert = ReadJson(dir / "sentence_bert_config.json", false);
  if (!sbert) return Fail(std::move(sbert.error()));
  model.max_seq_length = std::min(c.max_position_embeddings, 512);
  if (auto v = sbert->find("max_seq_length"); v != sbert->end() && v->is_number_integer() && v->get<int>() > 2) {
    model.max_seq_length = std::min(v->get<int>(), c.max_position_embeddings);
  }
  if (options.max_seq_length > 2) model.max_seq_length = std::min(options.max_seq_length, c.max_position_embeddings);
  auto pool = ReadJson(dir / "1_Pooling" / "config.json", false);
  if (!pool) return Fail(std::move(pool.error()));
  if (auto v = pool->find("pooling_mode_cls_token"); v != pool->end() && v->is_boolean() && v->get<bool>()) {
    model.pooling = Pooling::kCls;
  }
  if (auto v = pool->find("pooling_mode_max_tokens"); v != pool->end() && v->is_boolean() && v->get<bool>()) {
    return Fail(Error::Unimplemented((dir / "1_Pooling" / "config.json").string() + ": max pooling is not supported"));
  }
  std::error_code ec2;
  if (fs::exists(dir / "modules.json", ec2)) {
    std::ifstream in(dir / "modules.json");
    std::stringstream ss;
    ss << in.rdbuf();
    json mods = modulo::ParseJsonOrDiscarded(ss.str());
    if (mods.is_array()) {
      model.normalize = false;
      for (const auto& m : mods) {
        if (m.is_object() && m.value("type", "").find("Normalize") != std::string::npos) model.normalize = true;
      }
    }
  }
  // The engine always returns unit vectors: cosine and inner product then agree, which the
  // vector index relies on. A model without a Normalize module is normalised all the same.
  model.normalize = true;

  // Weights.
  auto st = SafetensorsFile::Open((dir / "model.safetensors").string());
  if (!st) return Fail(std::move(st.error()));
  if (!options.expected_sha256.empty()) {
    // Hashing reads the whole file: release each window's pages once hashed, or all of them
    // would stay resident while the layers are copied (the load-time peak of the server).
    const std::string got = Sha256HexWindowed(st->mapping()->bytes(), ReleasePages);
    if (got != options.expected_sha256) {
      return Fail(Error::InvalidArgument((dir / "model.safetensors").string() + " has sha256 " + got + ", expected " +
                                         options.expected_sha256 +
                                         " (corrupt or different model; re-run scripts/fetch-model.sh)"));
    }
  }
  const std::string p = TensorPrefix(*st);
  const std::int64_t h = c.hidden_size, f = c.intermediate_size;
  auto read = [&](const std::string& name, std::vector<std::int64_t> shape, std::vector<float>& out) -> Status {
    auto v = st->ReadF32(p + name, shape);
    if (!v) return Fail(std::move(v.error()));
    out = std::move(*v);
    if (const TensorInfo* info = st->Find(p + name)) ReleasePages(st->Data(*info));  // copied: the pages can go
    return {};
  };
  BertWeights& w = model.weights;
  {
    const std::string name = p + "embeddings.word_embeddings.weight";
    const TensorInfo* info = st->Find(name);
    if (info != nullptr && info->dtype == TensorDtype::kF32 && info->shape == std::vector<std::int64_t>{c.vocab_size, h} &&
        reinterpret_cast<std::uintptr_t>(st->Data(*info).data()) % alignof(float) == 0) {
      // Zero copy: rows are paged in from the file as tokens use them.
      w.word_embeddings.view = {reinterpret_cast<const float*>(st->Data(*info).data()),
                                static_cast<std::size_t>(c.vocab_size * h)};
      w.word_embeddings.mapping = st->mapping();
    } else {
      if (auto s = read("embeddings.word_embeddings.weight", {c.vocab_size, h}, w.word_embeddings.owned); !s) {
        return Fail(std::move(s.error()));
      }
      w.word_embeddings.view = w.word_embeddings.owned;
    }
  }
  for (auto s : {read("embeddings.position_embeddings.weight", {c.max_position_embeddings, h}, w.position_embeddings),
                 read("embeddings.token_type_embeddings.weight", {c.type_vocab_size, h}, w.token_type_embeddings),
                 read("embeddings.LayerNorm.weight", {h}, w.embeddings_ln_g),
                 read("embeddings.LayerNorm.bias", {h}, w.embeddings_ln_b)}) {
    if (!s) return Fail(std::move(s.error()));
  }
  w.layers.resize(c.num_layers);
  for (int l = 0; l < c.num_layers; ++l) {
    LayerWeights& L = w.layers[l];
    const std::string e = "encoder.layer." + std::to_string(l) + ".";
    std::vector<float> q, k, v, qb, kb, vb;
    for (auto s : {read(e + "attention.self.query.weight", {h, h}, q), read(e + "attention.self.key.weight", {h, h}, k),
                   read(e + "attention.self.value.weight", {h, h}, v), read(e + "attention.self.query.bias", {h}, qb),
                   read(e + "attention.self.key.bias", {h}, kb), read(e + "attention.self.value.bias", {h}, vb),
                   read(e + "attention.output.dense.weight", {h, h}, L.out_w),
                   read(e + "attention.output.dense.bias", {h}, L.out_b),
                   read(e + "attention.output.LayerNorm.weight", {h}, L.ln1_g),
                   read(e + "attention.output.LayerNorm.bias", {h}, L.ln1_b),
                   read(e + "intermediate.dense.weight", {f, h}, L.ffn1_w), read(e + "intermediate.dense.bias", {f}, L.ffn1_b),
                   read(e + "output.dense.weight", {h, f}, L.ffn2_w), read(e + "output.dense.bias", {h}, L.ffn2_b),
                   read(e + "output.LayerNorm.weight", {h}, L.ln2_g), read(e + "output.LayerNorm.bias", {h}, L.ln2_b)}) {
      if (!s) return Fail(std::move(s.error()));
    }
    L.qkv_w.reserve(3 * h * h);
    for (auto* m : {&q, &k, &v}) L.qkv_w.insert(L.qkv_w.end(), m->begin(), m->end());
    L.qkv_b.reserve(3 * h);
    for (auto* m : {&qb, &kb, &vb}) L.qkv_b.insert(L.qkv_b.end(), m->begin(), m->end());
  }
  // The copies are made: let the kernel reclaim the file pages we read (the word embedding
  // rows fault back in on demand).
  ReleasePages(st->mapping()->bytes());
  return model;
}

}  // namespace modulo::embed
