// Helpers shared by the embedding engine's tests and benchmarks: where the model and the golden
// data live. Not part of the module's public API.
#pragma once

#include <string>
#include <vector>

namespace modulo::embed::testing {

// $MODULO_MODEL_DIR, else <project>/models/all-MiniLM-L6-v2.
std::string ModelDir();
// The message for a missing model: says to run scripts/fetch-model.sh.
std::string MissingModelMessage();
bool ModelPresent();

struct GoldenItem {
  std::string text;
  std::vector<int> ids;
  std::vector<float> embedding;
};
// Reads tests/data/embed/golden_minilm.json (empty on failure).
std::vector<GoldenItem> LoadGolden();

double Cosine(const float* a, const float* b, int n);

}  // namespace modulo::embed::testing
