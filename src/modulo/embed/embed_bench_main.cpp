// modulo_embed_bench: measures the built-in embedding engine on texts from a file.
//
//   modulo_embed_bench --model DIR --texts FILE [--precision fp32|bf16|int8|auto] [--threads N]
//                      [--batch N] [--rounds N] [--mode throughput|latency|gemm|peak] [--pause-us N]
//
// FILE holds one text per line. `throughput` embeds all texts in batches of --batch (default 32)
// for --rounds rounds after one warm-up round; `latency` embeds each text alone (batch of one)
// and reports percentiles, back to back or, with --pause-us, each after an untimed pause (a lone
// request reaching an idle engine, which is when int8 on two threads uses split mode); `gemm`
// times oneDNN's matmul on the encoder's largest shape; `peak` measures the machine's fp32, bf16
// and int8 instruction peaks on --threads threads (instruction_peak.h). Prints one JSON object.
// Used by bench/embed/compare.py.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>
#include <omp.h>

#include "modulo/embed/encoder.h"
#include "modulo/embed/instruction_peak.h"
#include "modulo/embed/model.h"
#include "modulo/embed/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;

// The oneDNN matmul rate on the encoder's largest GEMM shape (rows x 384 x 1536), for reporting
// the encoder's efficiency against the GEMM rate measured in the same run.
int GemmRate(int threads, const std::string& precision, int rows) {
  using namespace dnnl;
  omp_set_num_threads(threads);
  const auto t = precision == "bf16" ? memory::data_type::bf16 : memory::data_type::f32;
  engine eng(engine::kind::cpu, 0);
  stream s(eng);
  const memory::dim m = rows, k = 384, n = 1536;
  memory::desc a({m, k}, t, memory::format_tag::ab), b({k, n}, t, memory::format_tag::any),
      c({m, n}, memory::data_type::f32, memory::format_tag::ab);
  matmul::primitive_desc pd(matmul::desc(a, b, c), eng);
  memory A(a, eng), B(pd.weights_desc(), eng), C(c, eng);
  std::memset(A.get_data_handle(), 0, a.get_size());
  std::memset(B.get_data_handle(), 0, pd.weights_desc().get_size());
  matmul mm(pd);
  auto run = [&] { mm.execute(s, {{DNNL_ARG_SRC, A}, {DNNL_ARG_WEIGHTS, B}, {DNNL_ARG_DST, C}}); };
  for (int i = 0; i < 5; ++i) run();
  int iters = 0;
  const auto t0 = Clock::now();
  while (std::chrono::duration<double>(Clock::now() - t0).count() < 1.0) {
    run();
    ++iters;
  }
  const double sec = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("{\"engine\":\"onednn-matmul\",\"mode\":\"gemm\",\"precision\":\"%s\",\"threads\":%d,\"shape\":\"%dx384x1536\","
              "\"gflops\":%.1f}\n",
              precision.c_str(), threads, rows, 2.0 * m * k * n * iters / sec / 1e9);
  return 0;
}

// The instruction peaks as JSON (null where the CPU lacks the instructions).
int PeakRates(int threads) {
  const auto peaks = modulo::embed::MeasureInstructionPeaks(threads);
  auto field = [](const std::optional<double>& v) { return v ? std::to_string(*v) : std::string("null"); };
  std::printf("{\"mode\":\"peak\",\"threads\":%d,\"fp32_gflops\":%s,\"bf16_gflops\":%s,\"int8_gops\":%s}\n",
              threads, field(peaks.fp32_gflops).c_str(), field(peaks.bf16_gflops).c_str(),
              field(peaks.int8_gops).c_str());
  return 0;
}

int Run(int argc, char** argv) {
  std::string model_dir, texts_path, precision = "fp32", mode = "throughput";
  int threads = 2, batch = 32, rounds = 3, pause_us = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--model") model_dir = v;
    else if (k == "--texts") texts_path = v;
    else if (k == "--precision") precision = v;
    else if (k == "--threads") threads = std::atoi(v.c_str());
    else if (k == "--batch") batch = std::atoi(v.c_str());
    else if (k == "--rounds") rounds = std::atoi(v.c_str());
    else if (k == "--mode") mode = v;
    else if (k == "--pause-us") pause_us = std::atoi(v.c_str());
  }
  if (mode == "gemm") return GemmRate(threads, precision, batch);
  if (mode == "peak") return PeakRates(threads);
  if (model_dir.empty() || texts_path.empty() || batch < 1 || rounds < 1) {
    std::fprintf(stderr, "usage: modulo_embed_bench --model DIR --texts FILE [--precision P] [--threads N] "
                         "[--batch N] [--rounds N] [--mode throughput|latency]\n");
    return 2;
  }
  std::vector<std::string> texts;
  {
    std::ifstream in(texts_path);
    for (std::string line; std::getline(in, line);) texts.push_back(line);
  }
  if (texts.empty()) {
    std::fprintf(stderr, "no texts in %s\n", texts_path.c_str());
    return 2;
  }
  auto p = modulo::embed::ParsePrecision(precision);
  if (!p) {
    std::fprintf(stderr, "%s\n", p.error().ToString().c_str());
    return 2;
  }
  auto model = modulo::embed::LoadBertModel(model_dir, {});
  if (!model) {
    std::fprintf(stderr, "%s\n", model.error().ToString().c_str());
    return 1;
  }
  const modulo::embed::BertConfig config = model->config;
  auto tok = modulo::embed::WordPieceTokenizer::FromVocabFile(model_dir + "/vocab.txt", model->tokenizer);
  if (!tok) {
    std::fprintf(stderr, "%s\n", tok.error().ToString().c_str());
    return 1;
  }
  const auto max_len = static_cast<std::size_t>(model->max_seq_length);
  modulo::embed::EncoderOptions opt;
  opt.precision = *p;
  opt.threads = threads;
  auto enc = modulo::embed::BertEncoder::Create(std::move(*model), opt);
  if (!enc) {
    std::fprintf(stderr, "%s\n", enc.error().ToString().c_str());
    return 1;
  }
  std::vector<std::vector<std::int32_t>> ids;
  double flops = 0, tokens = 0;
  for (const auto& t : texts) {
    ids.push_back(tok->Encode(t, max_len));
    flops += modulo::embed::BertEncoder::ForwardFlops(config, static_cast<int>(ids.back().size()));
    tokens += static_cast<double>(ids.back().size());
  }
  const int dim = (*enc)->dimension();
  std::vector<float> out(static_cast<std::size_t>(batch) * dim);
  const std::string eff(modulo::embed::PrecisionName((*enc)->effective_precision()));
  if (mode == "latency") {
    std::vector<double> ms;
    for (int r = 0; r < rounds + 1; ++r) {
      for (const auto& one : ids) {
        if (pause_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(pause_us));
        const auto t0 = Clock::now();
        if (!(*enc)->Encode(std::span(&one, 1), out)) return 1;
        if (r > 0) ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
    }
    std::sort(ms.begin(), ms.end());
    auto pct = [&](double q) { return ms[static_cast<std::size_t>(q * static_cast<double>(ms.size() - 1))]; };
    std::printf("{\"engine\":\"modulo\",\"mode\":\"latency\",\"precision\":\"%s\",\"threads\":%d,\"queries\":%zu,"
                "\"pause_us\":%d,\"avg_tokens\":%.1f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f}\n",
                eff.c_str(), threads, ms.size(), pause_us, tokens / static_cast<double>(ids.size()), pct(0.5), pct(0.9),
                pct(0.99));
    return 0;
  }
  auto round = [&]() -> bool {
    for (std::size_t i = 0; i < ids.size(); i += static_cast<std::size_t>(batch)) {
      const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(batch), ids.size() - i);
      if (!(*enc)->Encode(std::span(ids.data() + i, n), out)) return false;
    }
    return true;
  };
  if (!round()) return 1;  // warm-up: primitive creation, page-in
  const auto t0 = Clock::now();
  for (int r = 0; r < rounds; ++r) {
    if (!round()) return 1;
  }
  const double sec = std::chrono::duration<double>(Clock::now() - t0).count();
  const double n = static_cast<double>(ids.size()) * rounds;
  std::printf("{\"engine\":\"modulo\",\"mode\":\"throughput\",\"precision\":\"%s\",\"threads\":%d,\"texts\":%zu,"
              "\"batch\":%d,\"avg_tokens\":%.1f,\"seconds\":%.3f,\"texts_per_s\":%.1f,\"gflops\":%.1f}\n",
              eff.c_str(), threads, ids.size(), batch, tokens / static_cast<double>(ids.size()), sec, n / sec,
              flops * rounds / sec / 1e9);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
