#include "modulo/embed/test_util.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace modulo::embed::testing {

std::string ModelDir() {
  if (const char* env = std::getenv("MODULO_MODEL_DIR"); env != nullptr && *env != '\0') return env;
  return MODULO_DEFAULT_MODEL_DIR;
}

std::string MissingModelMessage() {
  return "the embedding model is missing from " + ModelDir() +
         ": run scripts/fetch-model.sh (or set MODULO_MODEL_DIR to a model directory)";
}

bool ModelPresent() { return std::filesystem::exists(std::filesystem::path(ModelDir()) / "model.safetensors"); }

std::vector<GoldenItem> LoadGolden() {
  std::ifstream in(std::string(MODULO_EMBED_TEST_DATA) + "/golden_minilm.json");
  if (!in) return {};
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  std::vector<GoldenItem> out;
  if (j.is_discarded()) return out;
  for (const auto& it : j["items"]) {
    out.push_back({it["text"].get<std::string>(), it["ids"].get<std::vector<int>>(),
                   it["embedding"].get<std::vector<float>>()});
  }
  return out;
}

double Cosine(const float* a, const float* b, int n) {
  double ab = 0, aa = 0, bb = 0;
  for (int i = 0; i < n; ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

}  // namespace modulo::embed::testing
