// Micro-benchmarks of the embedding engine (Google Benchmark; not tests):
//   BM_Query16/<precision>     (fp32, bf16, int8) one 16-token query, batch of one, 2 threads (latency; see the
//                              median aggregate)
//   BM_Chunks128/<precision>   batches of 32 chunks of 128 tokens, 2 threads (items_per_second =
//                              chunks/s; GFLOPs counter = achieved forward-pass FLOP rate)
//   BM_QueryBatch/<precision>/<n>  micro-batches of n questions of mixed lengths (10 to 40 tokens,
//                              as SciFact's claims), what the query batcher sends under load
//                              (items_per_second = questions/s; a batch pads nothing, so larger
//                              batches should be no slower per question)
//   BM_Tokenize1MB             tokenizing 1 MB of text to the model's 256-token limit, and counting
//                              all of its tokens
// The model comes from $MODULO_MODEL_DIR or <project>/models/all-MiniLM-L6-v2.
#include <benchmark/benchmark.h>

#include <memory>
#include <random>

#include "modulo/embed/encoder.h"
#include "modulo/embed/test_util.h"
#include "modulo/embed/tokenizer.h"

namespace modulo::embed {
namespace {

struct Fixture {
  std::unique_ptr<BertEncoder> encoder;
  BertConfig config;
};

Fixture* Load(Precision p) {
  static std::unique_ptr<Fixture> fixtures[4];
  auto& f = fixtures[static_cast<int>(p)];
  if (!f) {
    auto model = LoadBertModel(testing::ModelDir(), {});
    if (!model) return nullptr;
    f = std::make_unique<Fixture>();
    f->config = model->config;
    EncoderOptions o;
    o.precision = p;
    o.threads = 2;
    auto enc = BertEncoder::Create(std::move(*model), o);
    if (!enc) return nullptr;
    f->encoder = std::move(*enc);
  }
  return f.get();
}

// The encoder for `p`, with its effective precision as the benchmark's label; null, with the
// benchmark skipped and told how to fetch the model, when the model is missing.
Fixture* Get(benchmark::State& state, Precision p) {
  Fixture* f = Load(p);
  if (f == nullptr) {
    state.SkipWithError(testing::MissingModelMessage().c_str());
    return nullptr;
  }
  state.SetLabel(std::string(PrecisionName(f->encoder->effective_precision())));
  return f;
}

// Random in-vocabulary ids framed by [CLS] (101) and [SEP] (102).
std::vector<std::int32_t> Sequence(int length, std::mt19937& rng) {
  std::uniform_int_distribution<std::int32_t> id(2000, 29000);
  std::vector<std::int32_t> ids(static_cast<std::size_t>(length));
  for (auto& v : ids) v = id(rng);
  ids.front() = 101;
  ids.back() = 102;
  return ids;
}

void BM_Query16(benchmark::State& state, Precision p) {
  Fixture* f = Get(state, p);
  if (f == nullptr) return;
  std::mt19937 rng(1);
  std::vector<std::vector<std::int32_t>> queries;
  for (int i = 0; i < 64; ++i) queries.push_back(Sequence(16, rng));
  std::vector<float> out(384);
  std::size_t i = 0;
  for (auto _ : state) {
    if (!f->encoder->Encode(std::span(&queries[i++ % queries.size()], 1), out)) state.SkipWithError("encode failed");
  }
  state.counters["GFLOPs"] = benchmark::Counter(BertEncoder::ForwardFlops(f->config, 16) * 1e-9,
                                                benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Chunks128(benchmark::State& state, Precision p) {
  Fixture* f = Get(state, p);
  if (f == nullptr) return;
  std::mt19937 rng(2);
  const int batch = 32;
  std::vector<std::vector<std::int32_t>> chunks;
  for (int i = 0; i < batch; ++i) chunks.push_back(Sequence(128, rng));
  std::vector<float> out(static_cast<std::size_t>(batch) * 384);
  for (auto _ : state) {
    if (!f->encoder->Encode(chunks, out)) state.SkipWithError("encode failed");
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["GFLOPs"] = benchmark::Counter(batch * BertEncoder::ForwardFlops(f->config, 128) * 1e-9,
                                                benchmark::Counter::kIsIterationInvariantRate);
}

void BM_QueryBatch(benchmark::State& state, Precision p) {
  Fixture* f = Get(state, p);
  if (f == nullptr) return;
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> length(10, 40);
  std::vector<std::vector<std::int32_t>> questions;
  double flops = 0;
  for (int i = 0; i < 256; ++i) {
    questions.push_back(Sequence(length(rng), rng));
    flops += BertEncoder::ForwardFlops(f->config, static_cast<int>(questions.back().size()));
  }
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<float> out(n * 384);
  std::size_t at = 0;
  for (auto _ : state) {
    if (at + n > questions.size()) at = 0;
    if (!f->encoder->Encode(std::span(questions).subspan(at, n), out)) state.SkipWithError("encode failed");
    at += n;
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
  state.counters["GFLOPs"] = benchmark::Counter(static_cast<double>(n) * flops / 256 * 1e-9,
                                                benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Tokenize1MB(benchmark::State& state) {
  auto model = LoadBertModel(testing::ModelDir(), {});
  if (!model) {
    state.SkipWithError(testing::MissingModelMessage().c_str());
    return;
  }
  auto tok = WordPieceTokenizer::FromVocabFile(testing::ModelDir() + "/vocab.txt", model->tokenizer);
  std::string text;
  while (text.size() < (1u << 20)) text += "Naïve café owners in Zürich said: \"it's 42% cheaper\" — 東京 too. ";
  const bool count_all = state.range(0) != 0;
  for (auto _ : state) {
    if (count_all) {
      benchmark::DoNotOptimize(tok->CountTokens(text));
    } else {
      benchmark::DoNotOptimize(tok->Encode(text, 256));
    }
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(text.size()));
}

BENCHMARK_CAPTURE(BM_Query16, fp32, Precision::kFp32)->Unit(benchmark::kMillisecond)->MinTime(1.0)->Repetitions(3)->UseRealTime();
BENCHMARK_CAPTURE(BM_Query16, bf16, Precision::kBf16)->Unit(benchmark::kMillisecond)->MinTime(1.0)->Repetitions(3)->UseRealTime();
BENCHMARK_CAPTURE(BM_Query16, int8, Precision::kInt8)->Unit(benchmark::kMillisecond)->MinTime(1.0)->Repetitions(3)->UseRealTime();
BENCHMARK_CAPTURE(BM_Chunks128, fp32, Precision::kFp32)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_Chunks128, bf16, Precision::kBf16)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_Chunks128, int8, Precision::kInt8)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_QueryBatch, fp32, Precision::kFp32)->Arg(1)->Arg(4)->Arg(16)->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_QueryBatch, int8, Precision::kInt8)->Arg(1)->Arg(4)->Arg(16)->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseRealTime();
BENCHMARK(BM_Tokenize1MB)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace modulo::embed
