#include "modulo/embed/encoder.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <oneapi/dnnl/dnnl.hpp>
#include <thread>
#include <unordered_map>
#include <utility>

#include "modulo/embed/attention.h"

namespace modulo::embed {
namespace {

using dnnl::memory;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

constexpr std::size_t kMaxCachedShapes = 512;
// A call with one sub-batch of at most this many rows (tokens) is "small": see the lane
// scheduling in Impl.
constexpr dnnl::memory::dim kSmallRows = 512;
// Up to this many rows a forward pass is faster on one thread than split across threads (the
// per-primitive barriers cost more than the GEMMs gain): a lone query runs single-threaded.
constexpr dnnl::memory::dim kOneThreadRows = 64;
// Split mode takes both lanes for a small call only after the encoder has been idle this long.
constexpr std::chrono::microseconds kIdleBeforeAll{300};
// int8 dense layers run in tiles of this many rows (see DenseInt8).
constexpr dnnl::memory::dim kInt8TileRows = 128;

// Dense layers run on the packed tokens of a sub-batch (no padding between sequences). Their
// row count is rounded up to a bucket, so a few dozen GEMM shapes serve every batch: exact up to
// 64 rows (lone queries), then multiples of 16 up to 512, then of 64. The extra rows are zeros
// that no sequence reads.
dnnl::memory::dim BucketRows(dnnl::memory::dim m) {
  if (m <= 64) return m;
  if (m <= 512) return (m + 15) / 16 * 16;
  return (m + 63) / 64 * 64;
}

bool CpuHasBf16() {
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto want = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);
  return (isa & want) == want;
}

// A dense layer: weights reordered once into the layout oneDNN prefers, fp32 bias.
struct DenseWeights {
  memory weights;
  memory bias;
  memory::desc wdesc;
  memory::dim in = 0, out = 0;
  std::vector<float> scales;  // int8: per-output-channel weight scales
  std::vector<float> bias_values;  // int8: the bias, added in the epilogue
};

// Primitives for all dense layers of a sub-batch with M rows.
struct RowShape {
  dnnl::matmul qkv, out, ffn1, ffn2;
  dnnl::matmul qkv_h, out_h, ffn1_h, ffn2_h;  // split mode: half of the output columns
  dnnl::layer_normalization_forward ln;
  dnnl::reorder to_low;  // [M, H] fp32 -> bf16 (bf16 mode only)
  std::size_t scratch = 0;  // bytes of user scratchpad the primitives need
};

// Every primitive uses a caller-provided scratchpad: oneDNN's shared library scratchpad is not
// safe when primitives run concurrently on several threads.
dnnl::primitive_attr UserScratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

// The int8 path's element-wise loops, compiled for AVX-512 and AVX2 as well as the baseline and
// chosen at load time for the CPU at hand (GCC function multi-versioning).
#define MODULO_EMBED_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

// Quantizes one row symmetrically to int8; returns its scale.
MODULO_EMBED_CLONES float QuantizeRow(const float* row, std::size_t n, std::int8_t* q) {
  float amax = 0.f;
#pragma omp simd reduction(max : amax)
  for (std::size_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(row[i]));
  const float scale = amax > 0.f ? amax / 127.f : 1.f;
  const float inv = 1.f / scale;
#pragma omp simd
  for (std::size_t i = 0; i < n; ++i) {
    const float v = row[i] * inv;
    q[i] = static_cast<std::int8_t>(static_cast<int>(v + (v >= 0.f ? 0.5f : -0.5f)));
  }
  return scale;
}

// y (+)= acc * (row_scale * col_scale[n]) + bias[n].
MODULO_EMBED_CLONES void DequantizeRow(const std::int32_t* acc, std::size_t n, float row_scale, const float* col_scale,
                                       const float* bias, float* y, bool accumulate) {
  if (accumulate) {
#pragma omp simd
    for (std::size_t i = 0; i < n; ++i) y[i] += static_cast<float>(acc[i]) * (row_scale * col_scale[i]) + bias[i];
  } else {
#pragma omp simd
    for (std::size_t i = 0; i < n; ++i) y[i] = static_cast<float>(acc[i]) * (row_scale * col_scale[i]) + bias[i];
  }
}

// GELU, erf form, written so that it vectorises (no calls, no branches): erf(x) as the odd
// rational approximation x * P(x^2) / Q(x^2) on [-4, 4] (outside, erf is +-1 in single
// precision), whose error is a few units in the last place.
[[gnu::always_inline]] inline float GeluErf(float y) {
  float x = y * 0.70710678f;
  x = x > 4.f ? 4.f : x;
  x = x < -4.f ? -4.f : x;
  const float x2 = x * x;
  float p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
  p = x2 * p + -2.10102402082508e-06f;
  p = x2 * p + -5.69250639462346e-05f;
  p = x2 * p + -7.34990630326855e-04f;
  p = x2 * p + -2.95459980854025e-03f;
  p = x2 * p + -1.60960333262415e-02f;
  p = x * p;
  float q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
  q = x2 * q + -1.68282697438203e-03f;
  q = x2 * q + -7.37332916720468e-03f;
  q = x2 * q + -1.42647390514189e-02f;
  return 0.5f * y * (1.f + p / q);
}

// y = gelu(acc * (row_scale * col_scale[n]) + bias[n]).
MODULO_EMBED_CLONES void DequantizeGeluRow(const std::int32_t* acc, std::size_t n, float row_scale,
                                           const float* col_scale, const float* bias, float* y) {
#pragma omp simd
  for (std::size_t i = 0; i < n; ++i) y[i] = GeluErf(static_cast<float>(acc[i]) * (row_scale * col_scale[i]) + bias[i]);
}

// A spin-wait's pause (lets the sibling hyperthread run, saves power).
inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// A barrier for the two threads of a split forward pass. Both are running when it is used (the
// helper is woken once per pass), so waiting spins, pausing, and yields only after ~100 us.
class SpinBarrier {
 public:
  void Wait() {
    const unsigned phase = phase_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) == 1) {
      arrived_.store(0, std::memory_order_relaxed);
      phase_.fetch_add(1, std::memory_order_release);
      return;
    }
    for (int spins = 0; phase_.load(std::memory_order_acquire) == phase; ++spins) {
      if (spins < 20000) {
        CpuRelax();
      } else {
        std::this_thread::yield();
      }
    }
  }

 private:
  std::atomic<int> arrived_{0};
  std::atomic<unsigned> phase_{0};
};

}  // namespace

std::string_view PrecisionName(Precision p) noexcept {
  switch (p) {
    case Precision::kFp32: return "fp32";
    case Precision::kBf16: return "bf16";
    case Precision::kInt8: return "int8";
    case Precision::kAuto: return "auto";
  }
  return "?";
}

Result<Precision> ParsePrecision(std::string_view name) {
  if (name == "fp32") return Precision::kFp32;
  if (name == "bf16") return Precision::kBf16;
  if (name == "int8") return Precision::kInt8;
  if (name == "auto") return Precision::kAuto;
  return Fail(Error::InvalidArgument("unknown embedding precision '" + std::string(name) + "' (fp32, bf16, int8 or auto)"));
}

double BertEncoder::ForwardFlops(const BertConfig& c, int length) {
  const double h = c.hidden_size, f = c.intermediate_size, l = length;
  const double dense = 2.0 * l * (4 * h * h + 2 * h * f);
  const double attention = 4.0 * l * l * h;
  return c.num_layers * (dense + attention);
}

struct BertEncoder::Impl {
  BertModel model;
  EncoderOptions options;
  Precision precision = Precision::kFp32;
  bool low = false;   // bf16 dense layers
  bool int8 = false;  // int8 dense layers (s8 x s8 -> s32, per-row activation scales)
  bool split = false;  // int8 on two threads: a call holding both lanes runs in split mode
  int threads = 1;
  int H = 0, F = 0, NH = 0, D = 0;
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};

  struct Layer {
    DenseWeights qkv, out, ffn1, ffn2;
    // Split mode (int8, two threads): the same layers as two halves of their output columns.
    std::array<DenseWeights, 2> qkv_h, out_h, ffn1_h, ffn2_h;
    memory ln1_g, ln1_b, ln2_g, ln2_b;
  };
  std::vector<Layer> layers;
  memory emb_ln_g, emb_ln_b;

  // Activation buffers of one worker thread. Sub-batches run one per lane in parallel (each
  // with single-threaded oneDNN calls, no barriers), or, when there is only one sub-batch, on
  // lane 0 with all threads inside each oneDNN call.
  struct Lane {
    std::vector<float> x, qkv, ctx, ffn;
    std::vector<std::uint16_t> x_low, ctx_low, ffn_low;
    std::vector<std::int8_t> xq;        // int8: one tile's quantized dense-layer input
    std::vector<std::int32_t> acc;      // int8: one tile's GEMM accumulators
    std::vector<float> row_scales;      // int8: one tile's activation scale per row
    std::vector<std::byte> scratch;
    memory scratch_mem;
  };
  std::vector<Lane> lanes;
  // Lane scheduling. A large call takes every lane (its sub-batches run one per lane, or one
  // sub-batch with all threads inside each oneDNN call). A small call (one sub-batch of at most
  // kSmallRows rows: a micro-batch of queries) takes one free lane and runs single-threaded, so
  // concurrent query batches run side by side, one per core, without OpenMP team barriers
  // between them. A small call of more than kOneThreadRows rows that finds the encoder idle
  // takes every lane and all threads, for the lowest latency.
  std::mutex lane_mu;
  std::condition_variable lane_cv;
  std::vector<char> lane_busy;
  int lanes_busy = 0;
  int small_pending = 0;   // small calls waiting for or holding a lane decision
  int large_waiting = 0;   // large calls waiting: small calls queue behind them (no starvation)
  std::chrono::steady_clock::time_point idle_since{};  // when the last lane was released

  // Returns the lane to run on; `all` tells whether every lane was taken.
  // With `after_idle`, every lane is taken only if the encoder has also been idle for
  // kIdleBeforeAll: under load calls follow each other within microseconds, and running them
  // side by side, one per lane, serves more of them than taking both lanes for one.
  std::size_t AcquireSmall(bool may_take_all, bool after_idle, bool& all) {
    std::unique_lock lk(lane_mu);
    ++small_pending;
    lane_cv.wait(lk, [&] { return large_waiting == 0 && lanes_busy < static_cast<int>(lanes.size()); });
    --small_pending;
    if (may_take_all && lanes_busy == 0 && small_pending == 0 &&
        (!after_idle || std::chrono::steady_clock::now() - idle_since >= kIdleBeforeAll)) {
      std::fill(lane_busy.begin(), lane_busy.end(), 1);
      lanes_busy = static_cast<int>(lanes.size());
      all = true;
      return 0;
    }
    all = false;
    const auto it = std::find(lane_busy.begin(), lane_busy.end(), 0);
    *it = 1;
    ++lanes_busy;
    return static_cast<std::size_t>(it - lane_busy.begin());
  }
  void AcquireAll() {
    std::unique_lock lk(lane_mu);
    ++large_waiting;
    lane_cv.wait(lk, [&] { return lanes_busy == 0; });
    --large_waiting;
    std::fill(lane_busy.begin(), lane_busy.end(), 1);
    lanes_busy = static_cast<int>(lanes.size());
  }
  void Release(std::size_t lane, bool all) {
    {
      std::lock_guard lk(lane_mu);
      if (all) {
        std::fill(lane_busy.begin(), lane_busy.end(), 0);
        lanes_busy = 0;
      } else {
        lane_busy[lane] = 0;
        --lanes_busy;
      }
      if (lanes_busy == 0) idle_since = std::chrono::steady_clock::now();
    }
    lane_cv.notify_all();
  }
  // Split mode (int8, two threads): a call holding both lanes runs each layer's dense GEMMs as
  // two halves of their output columns and attention as two halves of the heads, one half on the
  // calling thread and one on `helper`, meeting at a SpinBarrier between steps. This replaces
  // OpenMP for such calls: libgomp's idle workers sleep between parallel regions when more
  // threads than cores use OpenMP, which made a two-thread lone query slower in the server than
  // a one-thread one. The helper sleeps between passes and is woken once per pass.
  std::thread helper;
  std::mutex helper_mu;
  std::condition_variable helper_cv;
  const std::function<void()>* helper_task = nullptr;
  bool helper_stop = false;
  std::atomic<bool> helper_busy{false};
  SpinBarrier barrier;
  std::atomic<std::uint64_t> split_calls{0};

  void StartHelper() {
    helper = std::thread([this] {
      omp_set_num_threads(1);
      for (;;) {
        const std::function<void()>* task = nullptr;
        {
          std::unique_lock lk(helper_mu);
          helper_cv.wait(lk, [&] { return helper_stop || helper_task != nullptr; });
          if (helper_stop) return;
          task = std::exchange(helper_task, nullptr);
        }
        (*task)();  // never throws: ForwardSplit catches inside every step
        helper_busy.store(false, std::memory_order_release);
      }
    });
  }
  ~Impl() {
    if (!helper.joinable()) return;
    {
      std::lock_guard lk(helper_mu);
      helper_stop = true;
    }
    helper_cv.notify_all();
    helper.join();
  }

  std::mutex cache_mu;  // guards the primitive caches (primitives themselves run concurrently)
  std::unordered_map<memory::dim, std::shared_ptr<RowShape>> rows;

  dt act_type() const { return int8 ? dt::s8 : low ? dt::bf16 : dt::f32; }

  memory Vec(const std::vector<float>& v) {
    memory m(memory::desc({static_cast<memory::dim>(v.size())}, dt::f32, tag::a), engine);
    std::memcpy(m.get_data_handle(), v.data(), v.size() * sizeof(float));
    return m;
  }

  dnnl::matmul::primitive_desc DensePd(memory::dim m, const DenseWeights& w, const memory::desc& wdesc, bool sum,
                                       bool gelu, dt dst_type) {
    memory::desc src({m, w.in}, act_type(), tag::ab);
    memory::desc bias({1, w.out}, dt::f32, tag::ab);
    memory::desc dst({m, w.out}, dst_type, tag::ab);
    if (int8) {
      // Plain s8 x s8 -> s32: oneDNN 2.6's VNNI kernels accept neither runtime scales nor a
      // per-row scale post-op, so scaling, bias and residual happen in DenseInt8's epilogue.
      return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, wdesc, memory::desc({m, w.out}, dt::s32, tag::ab)),
                                          UserScratchpad(), engine);
    }
    dnnl::post_ops po;
    if (sum) po.append_sum(1.f);
    if (gelu) po.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f);
    dnnl::primitive_attr attr = UserScratchpad();
    attr.set_post_ops(po);
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, wdesc, bias, dst), attr, engine);
  }

  // Reorders a PyTorch [out, in] weight into the layout the matmul primitive picks.
  DenseWeights PrepareDense(std::span<const float> w, std::span<const float> b, memory::dim out, memory::dim in,
                            bool sum, bool gelu, dt dst_type) {
    DenseWeights d;
    d.in = in;
    d.out = out;
    memory::desc any({in, out}, act_type(), tag::any);
    auto pd = DensePd(256, d, any, sum, gelu, dst_type);
    d.wdesc = pd.weights_desc();
    d.weights = memory(d.wdesc, engine);
    if (int8) {
      // Symmetric per-output-channel quantization of the [out, in] weights.
      std::vector<std::int8_t> q(w.size());
      d.scales.resize(static_cast<std::size_t>(out));
      for (memory::dim n = 0; n < out; ++n) {
        const float* row = w.data() + n * in;
        float amax = 0.f;
        for (memory::dim k = 0; k < in; ++k) amax = std::max(amax, std::fabs(row[k]));
        const float s = amax > 0.f ? amax / 127.f : 1.f;
        d.scales[static_cast<std::size_t>(n)] = s;
        for (memory::dim k = 0; k < in; ++k) {
          q[static_cast<std::size_t>(n * in + k)] = static_cast<std::int8_t>(std::lrint(row[k] / s));
        }
      }
      d.bias_values.assign(b.begin(), b.end());
      memory user(memory::desc({in, out}, dt::s8, tag::ba), engine, q.data());
      dnnl::reorder(user, d.weights).execute(stream, user, d.weights);
    } else {
      memory user(memory::desc({in, out}, dt::f32, tag::ba), engine, const_cast<float*>(w.data()));
      dnnl::reorder(user, d.weights).execute(stream, user, d.weights);
    }
    stream.wait();
    d.bias = memory(memory::desc({1, out}, dt::f32, tag::ab), engine);
    std::memcpy(d.bias.get_data_handle(), b.data(), b.size() * sizeof(float));
    return d;
  }

  Status Prepare() {
    const BertConfig& c = model.config;
    H = c.hidden_size;
    F = c.intermediate_size;
    NH = c.num_heads;
    D = c.head_dim();
    emb_ln_g = Vec(model.weights.embeddings_ln_g);
    emb_ln_b = Vec(model.weights.embeddings_ln_b);
    split = int8 && threads == 2 && NH % 2 == 0 && H % 2 == 0 && F % 2 == 0;
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    const dt ffn_dst = low && !int8 ? dt::bf16 : dt::f32;
    for (LayerWeights& L : model.weights.layers) {
      // Fold the attention scale 1/sqrt(d) into the query projection.
      for (int i = 0; i < H * H; ++i) L.qkv_w[i] *= scale;
      for (int i = 0; i < H; ++i) L.qkv_b[i] *= scale;
      Layer layer;
      layer.qkv = PrepareDense(L.qkv_w, L.qkv_b, 3 * H, H, false, false, dt::f32);
      layer.out = PrepareDense(L.out_w, L.out_b, H, H, true, false, dt::f32);
      layer.ffn1 = PrepareDense(L.ffn1_w, L.ffn1_b, F, H, false, true, ffn_dst);
      layer.ffn2 = PrepareDense(L.ffn2_w, L.ffn2_b, H, F, true, false, dt::f32);
      if (split) {
        auto halves = [&](const std::vector<float>& wv, const std::vector<float>& bv, memory::dim out, memory::dim in) {
          std::array<DenseWeights, 2> h;
          const auto half = static_cast<std::size_t>(out / 2);
          for (std::size_t t = 0; t < 2; ++t) {
            h[t] = PrepareDense(std::span(wv).subspan(t * half * static_cast<std::size_t>(in), half * static_cast<std::size_t>(in)),
                                std::span(bv).subspan(t * half, half), out / 2, in, false, false, dt::f32);
          }
          return h;
        };
        layer.qkv_h = halves(L.qkv_w, L.qkv_b, 3 * H, H);
        layer.out_h = halves(L.out_w, L.out_b, H, H);
        layer.ffn1_h = halves(L.ffn1_w, L.ffn1_b, F, H);
        layer.ffn2_h = halves(L.ffn2_w, L.ffn2_b, H, F);
      }
      layer.ln1_g = Vec(L.ln1_g);
      layer.ln1_b = Vec(L.ln1_b);
      layer.ln2_g = Vec(L.ln2_g);
      layer.ln2_b = Vec(L.ln2_b);
      layers.push_back(std::move(layer));
      L = LayerWeights{};  // the reordered copies are all that is needed now
    }
    lanes.resize(static_cast<std::size_t>(threads));
    lane_busy.assign(lanes.size(), 0);
    return {};
  }

  // Activation buffers are allocated on first use (and stay: their size is bounded).
  void Reserve(Lane& l) {
    if (!l.x.empty()) return;
    const auto cap = static_cast<std::size_t>(BucketRows(static_cast<memory::dim>(options.max_batch_tokens)));
    l.x.resize(cap * H);
    l.qkv.resize(cap * 3 * H);
    l.ctx.resize(cap * H);
    if (int8) {
      const auto tile = static_cast<std::size_t>(kInt8TileRows);
      l.xq.resize(tile * F);
      l.acc.resize(tile * std::max(3 * H, F));
      l.row_scales.resize(tile);
      l.ffn.resize(cap * F);
    } else if (low) {
      l.x_low.resize(cap * H);
      l.ctx_low.resize(cap * H);
      l.ffn_low.resize(cap * F);
    } else {
      l.ffn.resize(cap * F);
    }
  }

  memory& Scratch(Lane& l, std::size_t bytes) {
    if (l.scratch.size() < bytes || !l.scratch_mem) {
      l.scratch.resize(std::max<std::size_t>(bytes, 4096));
      l.scratch_mem = memory(memory::desc({static_cast<memory::dim>(l.scratch.size())}, dt::u8, tag::a), engine,
                             l.scratch.data());
    }
    return l.scratch_mem;
  }

  std::shared_ptr<RowShape> Rows(memory::dim m) {
    std::lock_guard lock(cache_mu);
    if (auto it = rows.find(m); it != rows.end()) return it->second;
    if (rows.size() >= kMaxCachedShapes) rows.clear();
    const Layer& l0 = layers.front();
    RowShape s;
    auto track = [&](const auto& pd) {
      s.scratch = std::max(s.scratch, pd.scratchpad_desc().get_size());
      return pd;
    };
    if (!int8 || m <= kInt8TileRows) {  // int8 GEMMs run in tiles (see DenseInt8)
      s.qkv = dnnl::matmul(track(DensePd(m, l0.qkv, l0.qkv.wdesc, false, false, dt::f32)));
      s.out = dnnl::matmul(track(DensePd(m, l0.out, l0.out.wdesc, true, false, dt::f32)));
      s.ffn1 = dnnl::matmul(track(DensePd(m, l0.ffn1, l0.ffn1.wdesc, false, true, low && !int8 ? dt::bf16 : dt::f32)));
      s.ffn2 = dnnl::matmul(track(DensePd(m, l0.ffn2, l0.ffn2.wdesc, true, false, dt::f32)));
    }
    if (split && m <= kInt8TileRows) {
      s.qkv_h = dnnl::matmul(track(DensePd(m, l0.qkv_h[0], l0.qkv_h[0].wdesc, false, false, dt::f32)));
      s.out_h = dnnl::matmul(track(DensePd(m, l0.out_h[0], l0.out_h[0].wdesc, false, false, dt::f32)));
      s.ffn1_h = dnnl::matmul(track(DensePd(m, l0.ffn1_h[0], l0.ffn1_h[0].wdesc, false, false, dt::f32)));
      s.ffn2_h = dnnl::matmul(track(DensePd(m, l0.ffn2_h[0], l0.ffn2_h[0].wdesc, false, false, dt::f32)));
    }
    memory::desc data({m, H}, dt::f32, tag::ab);
    s.ln = dnnl::layer_normalization_forward(track(dnnl::layer_normalization_forward::primitive_desc(
        dnnl::layer_normalization_forward::desc(dnnl::prop_kind::forward_inference, data, model.config.layer_norm_eps,
                                                dnnl::normalization_flags::use_scale |
                                                    dnnl::normalization_flags::use_shift),
        UserScratchpad(), engine)));
    if (low && !int8) {
      memory::desc lowd({m, H}, dt::bf16, tag::ab);
      s.to_low = dnnl::reorder(track(dnnl::reorder::primitive_desc(engine, data, engine, lowd, UserScratchpad())));
    }
    return rows.emplace(m, std::make_shared<RowShape>(std::move(s))).first->second;
  }

  void Dense(dnnl::stream& stream, const memory& scratch, dnnl::matmul& prim, const DenseWeights& w, memory::dim m,
             void* src, dt src_type, void* dst, dt dst_type) {
    memory s(memory::desc({m, w.in}, src_type, tag::ab), engine, src);
    memory d(memory::desc({m, w.out}, dst_type, tag::ab), engine, dst);
    prim.execute(stream, {{DNNL_ARG_SRC, s}, {DNNL_ARG_WEIGHTS, w.weights}, {DNNL_ARG_BIAS, w.bias}, {DNNL_ARG_DST, d},
                          {DNNL_ARG_SCRATCHPAD, scratch}});
  }

  void LayerNorm(dnnl::stream& stream, const memory& scratch, RowShape& s, memory::dim m, float* x, const memory& g,
                 const memory& b) {
    memory data(memory::desc({m, H}, dt::f32, tag::ab), engine, x);
    s.ln.execute(stream, {{DNNL_ARG_SRC, data}, {DNNL_ARG_DST, data}, {DNNL_ARG_SCALE, g}, {DNNL_ARG_SHIFT, b},
                          {DNNL_ARG_SCRATCHPAD, scratch}});
  }

  void ToLow(dnnl::stream& stream, const memory& scratch, RowShape& s, memory::dim m, float* src, std::uint16_t* dst) {
    memory a(memory::desc({m, H}, dt::f32, tag::ab), engine, src);
    memory b(memory::desc({m, H}, dt::bf16, tag::ab), engine, dst);
    s.to_low.execute(stream, {{DNNL_ARG_FROM, a}, {DNNL_ARG_TO, b}, {DNNL_ARG_SCRATCHPAD, scratch}});
  }

  // int8 dense layer: dst (+)= dequant(quant(src) . w_q) + bias, or dst = GELU of that. Each row
  // (token) gets its own activation scale, so an outlier in one token costs no other token its
  // precision and a text's vector does not depend on its batch. Rows go through in tiles of
  // kInt8TileRows, so a tile's int32 accumulators are still in cache when the epilogue reads them.
  // `dst` rows are `ld` floats apart (w.out, or the full width when writing half of the columns).
  void DenseInt8(dnnl::stream& stream, Lane& lane, dnnl::matmul RowShape::*prim, const DenseWeights& w,
                 memory::dim m, const float* src, float* dst, bool accumulate, bool gelu, memory::dim ld = 0) {
    if (ld == 0) ld = w.out;
    const auto cols = static_cast<std::size_t>(w.in);
    const auto outs = static_cast<std::size_t>(w.out);
    std::int8_t* q = lane.xq.data();
    for (memory::dim r0 = 0; r0 < m; r0 += kInt8TileRows) {
      const memory::dim rows = std::min(kInt8TileRows, m - r0);
      const std::shared_ptr<RowShape> tile = Rows(rows);
      for (memory::dim r = 0; r < rows; ++r) {
        const auto off = static_cast<std::size_t>(r) * cols;
        lane.row_scales[static_cast<std::size_t>(r)] = QuantizeRow(src + (r0 * w.in) + off, cols, q + off);
      }
      memory s(memory::desc({rows, w.in}, dt::s8, tag::ab), engine, q);
      memory d(memory::desc({rows, w.out}, dt::s32, tag::ab), engine, lane.acc.data());
      ((*tile).*prim).execute(stream, {{DNNL_ARG_SRC, s}, {DNNL_ARG_WEIGHTS, w.weights}, {DNNL_ARG_DST, d},
                                       {DNNL_ARG_SCRATCHPAD, Scratch(lane, tile->scratch)}});
      float* out = dst + r0 * ld;
      for (memory::dim r = 0; r < rows; ++r) {
        const auto off = static_cast<std::size_t>(r) * outs;
        float* y = out + r * ld;
        const float rs = lane.row_scales[static_cast<std::size_t>(r)];
        if (gelu) {
          DequantizeGeluRow(lane.acc.data() + off, outs, rs, w.scales.data(), w.bias_values.data(), y);
        } else {
          DequantizeRow(lane.acc.data() + off, outs, rs, w.scales.data(), w.bias_values.data(), y, accumulate);
        }
      }
    }
  }

  // offsets[b] is the first row of sequence b; offsets.back() the number of real rows.
  static std::vector<memory::dim> Offsets(std::span<const std::vector<std::int32_t>* const> seqs) {
    std::vector<memory::dim> offsets(seqs.size() + 1, 0);
    for (std::size_t b = 0; b < seqs.size(); ++b) offsets[b + 1] = offsets[b] + static_cast<memory::dim>(seqs[b]->size());
    return offsets;
  }

  // Embeddings: word + position + token type 0; bucket rows past the sequences are zeros.
  void EmbedTokens(std::span<const std::vector<std::int32_t>* const> seqs, const std::vector<memory::dim>& offsets,
                   memory::dim m, float* x) const {
    const BertWeights& w = model.weights;
    const float* te = w.token_type_embeddings.data();
    for (std::size_t b = 0; b < seqs.size(); ++b) {
      const auto& ids = *seqs[b];
      for (std::size_t t = 0; t < ids.size(); ++t) {
        float* dst = x + (offsets[b] + static_cast<memory::dim>(t)) * H;
        const float* we = w.word_embeddings.data() + static_cast<std::size_t>(ids[t]) * H;
        const float* pe = w.position_embeddings.data() + t * H;
        for (int i = 0; i < H; ++i) dst[i] = we[i] + pe[i] + te[i];
      }
    }
    std::fill(x + offsets.back() * H, x + m * H, 0.f);
  }

  // Pooling (mean over each sequence's tokens, or CLS) and L2 normalisation.
  void Pool(const float* x, const std::vector<memory::dim>& offsets, float* const* outs) const {
    const std::size_t count = offsets.size() - 1;
    for (std::size_t b = 0; b < count; ++b) {
      const memory::dim L = offsets[b + 1] - offsets[b];
      float* out = outs[b];
      const float* rows0 = x + offsets[b] * H;
      if (model.pooling == Pooling::kCls) {
        std::copy(rows0, rows0 + H, out);
      } else {
        std::fill(out, out + H, 0.f);
        for (memory::dim t = 0; t < L; ++t) {
          const float* r = rows0 + t * H;
          for (int i = 0; i < H; ++i) out[i] += r[i];
        }
        const float inv = 1.0f / static_cast<float>(L);
        for (int i = 0; i < H; ++i) out[i] *= inv;
      }
      if (model.normalize) {
        double ss = 0;
        for (int i = 0; i < H; ++i) ss += static_cast<double>(out[i]) * out[i];
        const float inv = static_cast<float>(1.0 / std::max(std::sqrt(ss), 1e-12));
        for (int i = 0; i < H; ++i) out[i] *= inv;
      }
    }
  }

  // Self-attention of each sequence over its own tokens, for heads [h0, h0 + nh): the fused
  // kernel of attention.h per (sequence, head), reading the packed [rows, 3H] qkv buffer and
  // writing context columns of [rows, H]. Outside a parallel region and with more than one
  // OpenMP thread allowed, the (sequence, head) pairs are shared among the threads.
  void Attention(const std::vector<memory::dim>& offsets, memory::dim h0, memory::dim nh, const float* qkv,
                 float* ctx) const {
    const auto count = static_cast<std::int64_t>(offsets.size() - 1);
    const std::int64_t units = count * nh;
    const auto ld_in = static_cast<std::size_t>(3 * H);
    auto one = [&](std::int64_t u) {
      const std::int64_t b = u / nh;
      const memory::dim h = h0 + u % nh;
      const auto len = static_cast<int>(offsets[b + 1] - offsets[b]);
      thread_local std::vector<float> scratch;
      const std::size_t need = AttendScratchFloats(len, static_cast<int>(D));
      if (scratch.size() < need) scratch.resize(need);
      const float* base = qkv + offsets[b] * 3 * H + h * D;
      AttendHead(base, base + H, base + 2 * H, ld_in, ctx + offsets[b] * H + h * D, static_cast<std::size_t>(H), len,
                 static_cast<int>(D), scratch.data());
    };
    if (omp_get_max_threads() > 1 && !omp_in_parallel() && units > 1) {
#pragma omp parallel for schedule(dynamic)
      for (std::int64_t u = 0; u < units; ++u) one(u);
    } else {
      for (std::int64_t u = 0; u < units; ++u) one(u);
    }
  }

  // One sub-batch in split mode (see `helper`): lanes[0] holds the activations, each thread uses
  // its own lane's quantization and accumulator buffers.
  void ForwardSplit(std::span<const std::vector<std::int32_t>* const> seqs, float* const* outs) {
    Lane& shared = lanes[0];
    Reserve(lanes[0]);
    Reserve(lanes[1]);
    const std::vector<memory::dim> offsets = Offsets(seqs);
    const memory::dim real = offsets.back();
    const memory::dim m = BucketRows(real);
    const memory::dim rows0 = m / 2;  // LayerNorm: thread 0 takes rows [0, rows0), thread 1 the rest
    float* x = shared.x.data();
    float* qkv = shared.qkv.data();
    float* ctx = shared.ctx.data();
    float* ffn = shared.ffn.data();
    std::atomic<bool> failed{false};
    std::string failure;
    std::mutex failure_mu;
    auto half = [&](int t) {
      Lane& lane = lanes[static_cast<std::size_t>(t)];
      dnnl::stream stream(engine);
      // Each step runs whatever happens; a failure is recorded and the barriers are still met.
      auto step = [&](auto&& work) {
        if (!failed.load(std::memory_order_relaxed)) {
          try {
            work();
            stream.wait();
          } catch (const std::exception& e) {
            std::lock_guard lk(failure_mu);
            failure = e.what();
            failed.store(true);
          }
        }
        barrier.Wait();
      };
      const memory::dim r0 = t == 0 ? 0 : rows0, rn = t == 0 ? rows0 : m - rows0;
      auto layer_norm = [&](const memory& g, const memory& b) {
        if (rn == 0) return;
        const std::shared_ptr<RowShape> rs = Rows(rn);
        LayerNorm(stream, Scratch(lane, rs->scratch), *rs, rn, x + r0 * H, g, b);
      };
      step([&] {
        if (t == 0) EmbedTokens(seqs, offsets, m, x);
      });
      step([&] { layer_norm(emb_ln_g, emb_ln_b); });
      const memory::dim hh = H / 2, ff = F / 2, heads = NH / 2;
      for (Layer& layer : layers) {
        const auto u = static_cast<std::size_t>(t);
        step([&] {
          // Q, K and V each in two column halves: thread t writes columns [t * 3H/2, (t+1) * 3H/2).
          DenseInt8(stream, lane, &RowShape::qkv_h, layer.qkv_h[u], m, x, qkv + t * 3 * hh, false, false, 3 * H);
        });
        step([&] {
          Attention(offsets, t * heads, heads, qkv, ctx);
          if (t == 0 && m > real) std::fill(ctx + real * H, ctx + m * H, 0.f);
        });
        step([&] { DenseInt8(stream, lane, &RowShape::out_h, layer.out_h[u], m, ctx, x + t * hh, true, false, H); });
        step([&] { layer_norm(layer.ln1_g, layer.ln1_b); });
        step([&] { DenseInt8(stream, lane, &RowShape::ffn1_h, layer.ffn1_h[u], m, x, ffn + t * ff, false, true, F); });
        step([&] { DenseInt8(stream, lane, &RowShape::ffn2_h, layer.ffn2_h[u], m, ffn, x + t * hh, true, false, H); });
        step([&] { layer_norm(layer.ln2_g, layer.ln2_b); });
      }
    };
    const std::function<void()> helper_half = [&] { half(1); };
    helper_busy.store(true, std::memory_order_release);
    {
      std::lock_guard lk(helper_mu);
      helper_task = &helper_half;
    }
    helper_cv.notify_one();
    half(0);
    // The helper has passed the last barrier; wait until it has left `helper_half` too.
    while (helper_busy.load(std::memory_order_acquire)) CpuRelax();
    if (failed.load()) throw std::runtime_error(failure);
    Pool(x, offsets, outs);
  }

  // One sub-batch: the sequences' tokens packed one after another, no padding between them.
  void Forward(Lane& lane, std::span<const std::vector<std::int32_t>* const> seqs, float* const* outs) {
    Reserve(lane);
    dnnl::stream stream(engine);
    auto& x = lane.x;
    auto& qkv = lane.qkv;
    auto& ctx = lane.ctx;
    auto& ffn = lane.ffn;
    auto& x_low = lane.x_low;
    auto& ctx_low = lane.ctx_low;
    auto& ffn_low = lane.ffn_low;
    const std::vector<memory::dim> offsets = Offsets(seqs);
    const memory::dim real = offsets.back();
    const memory::dim m = BucketRows(real);
    EmbedTokens(seqs, offsets, m, x.data());
    const std::shared_ptr<RowShape> rs_ptr = Rows(m);
    RowShape& rs = *rs_ptr;
    LayerNorm(stream, Scratch(lane, rs.scratch), rs, m, x.data(), emb_ln_g, emb_ln_b);
    for (Layer& layer : layers) {
      if (int8) {
        DenseInt8(stream, lane, &RowShape::qkv, layer.qkv, m, x.data(), qkv.data(), false, false);
      } else if (low) {
        ToLow(stream, Scratch(lane, rs.scratch), rs, m, x.data(), x_low.data());
        Dense(stream, Scratch(lane, rs.scratch), rs.qkv, layer.qkv, m, x_low.data(), dt::bf16, qkv.data(), dt::f32);
      } else {
        Dense(stream, Scratch(lane, rs.scratch), rs.qkv, layer.qkv, m, x.data(), dt::f32, qkv.data(), dt::f32);
      }
      Attention(offsets, 0, NH, qkv.data(), ctx.data());
      if (m > real) std::fill(ctx.data() + real * H, ctx.data() + m * H, 0.f);
      if (int8) {
        DenseInt8(stream, lane, &RowShape::out, layer.out, m, ctx.data(), x.data(), true, false);
      } else if (low) {
        ToLow(stream, Scratch(lane, rs.scratch), rs, m, ctx.data(), ctx_low.data());
        Dense(stream, Scratch(lane, rs.scratch), rs.out, layer.out, m, ctx_low.data(), dt::bf16, x.data(), dt::f32);
      } else {
        Dense(stream, Scratch(lane, rs.scratch), rs.out, layer.out, m, ctx.data(), dt::f32, x.data(), dt::f32);
      }
      LayerNorm(stream, Scratch(lane, rs.scratch), rs, m, x.data(), layer.ln1_g, layer.ln1_b);
      if (int8) {
        DenseInt8(stream, lane, &RowShape::ffn1, layer.ffn1, m, x.data(), ffn.data(), false, true);
        DenseInt8(stream, lane, &RowShape::ffn2, layer.ffn2, m, ffn.data(), x.data(), true, false);
      } else if (low) {
        ToLow(stream, Scratch(lane, rs.scratch), rs, m, x.data(), x_low.data());
        Dense(stream, Scratch(lane, rs.scratch), rs.ffn1, layer.ffn1, m, x_low.data(), dt::bf16, ffn_low.data(), dt::bf16);
        Dense(stream, Scratch(lane, rs.scratch), rs.ffn2, layer.ffn2, m, ffn_low.data(), dt::bf16, x.data(), dt::f32);
      } else {
        Dense(stream, Scratch(lane, rs.scratch), rs.ffn1, layer.ffn1, m, x.data(), dt::f32, ffn.data(), dt::f32);
        Dense(stream, Scratch(lane, rs.scratch), rs.ffn2, layer.ffn2, m, ffn.data(), dt::f32, x.data(), dt::f32);
      }
      LayerNorm(stream, Scratch(lane, rs.scratch), rs, m, x.data(), layer.ln2_g, layer.ln2_b);
    }
    stream.wait();
    Pool(x.data(), offsets, outs);
  }
};

BertEncoder::BertEncoder(Key, std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BertEncoder::~BertEncoder() = default;

Result<std::unique_ptr<BertEncoder>> BertEncoder::Create(BertModel model, const EncoderOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->options.max_batch_tokens = std::max<std::size_t>(options.max_batch_tokens, model.max_seq_length);
  impl->threads = options.threads > 0 ? options.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  switch (options.precision) {
    case Precision::kFp32:
      break;
    case Precision::kBf16:
    case Precision::kAuto:
      impl->low = CpuHasBf16();
      break;
    case Precision::kInt8:
      impl->int8 = true;  // oneDNN runs s8 GEMMs on any x86-64; VNNI makes them fast
      break;
  }
  impl->precision = impl->int8 ? Precision::kInt8 : impl->low ? Precision::kBf16 : Precision::kFp32;
  impl->model = std::move(model);
  try {
    omp_set_num_threads(impl->threads);
    if (auto s = impl->Prepare(); !s) return Fail(std::move(s.error()));
    if (impl->split) impl->StartHelper();
  } catch (const dnnl::error& e) {
    return Fail(Error::Internal(std::string("oneDNN could not set up the encoder: ") + e.what()));
  }
  return std::make_unique<BertEncoder>(Key{}, std::move(impl));
}

Status BertEncoder::Encode(std::span<const std::vector<std::int32_t>> sequences, std::span<float> out) {
  Impl& im = *impl_;
  const int H = im.H;
  if (out.size() < sequences.size() * static_cast<std::size_t>(H)) {
    return Fail(Error::InvalidArgument("output buffer too small"));
  }
  const auto max_len = static_cast<std::size_t>(im.model.max_seq_length);
  const auto vocab = static_cast<std::int32_t>(im.model.config.vocab_size);
  for (const auto& s : sequences) {
    if (s.empty() || s.size() > max_len) return Fail(Error::InvalidArgument("sequence length out of range"));
    for (auto id : s) {
      if (id < 0 || id >= vocab) return Fail(Error::InvalidArgument("token id out of range"));
    }
  }
  // Longest first, then greedy sub-batches under the token budget.
  std::vector<std::size_t> order(sequences.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return sequences[a].size() > sequences[b].size(); });
  struct Group {
    std::vector<const std::vector<std::int32_t>*> seqs;
    std::vector<float*> outs;
    memory::dim rows = 0;
  };
  std::vector<Group> groups;
  const auto budget = static_cast<memory::dim>(im.options.max_batch_tokens);
  for (std::size_t i : order) {
    const auto len = static_cast<memory::dim>(sequences[i].size());
    if (groups.empty() || groups.back().rows + len > budget) groups.emplace_back();
    Group& g = groups.back();
    g.seqs.push_back(&sequences[i]);
    g.outs.push_back(out.data() + i * static_cast<std::size_t>(H));
    g.rows += len;
  }
  std::string failure;
  const bool small = groups.size() == 1 && groups[0].rows <= kSmallRows;
  if (small && im.threads > 1) {
    bool all = false;
    // In split mode a small call that finds the encoder idle (and idle for a while: not under
    // load) takes both lanes: the split has no OpenMP regions, so even a lone query gains from
    // the second core.
    const std::size_t lane = im.AcquireSmall(im.split || groups[0].rows > kOneThreadRows, im.split, all);
    try {
      if (all && im.split) {
        omp_set_num_threads(1);
        im.split_calls.fetch_add(1, std::memory_order_relaxed);
        im.ForwardSplit(groups[0].seqs, groups[0].outs.data());
      } else {
        omp_set_num_threads(all ? im.threads : 1);
        im.Forward(im.lanes[lane], groups[0].seqs, groups[0].outs.data());
      }
    } catch (const std::exception& e) {
      failure = e.what();
    }
    im.Release(lane, all);
    if (!failure.empty()) return Fail(Error::Internal("oneDNN failed in the encoder: " + failure));
    return {};
  }
  im.AcquireAll();
  struct ReleaseAll {
    Impl& im;
    ~ReleaseAll() { im.Release(0, true); }
  } release_all{im};
  if (groups.size() == 1 || im.threads == 1) {
    try {
      omp_set_num_threads(im.threads);
      for (auto& g : groups) im.Forward(im.lanes[0], g.seqs, g.outs.data());
    } catch (const std::exception& e) {
      failure = e.what();
    }
  } else {
    std::atomic<std::size_t> next{0};
    std::mutex failure_mu;
#pragma omp parallel num_threads(im.threads)
    {
      Impl::Lane& lane = im.lanes[static_cast<std::size_t>(omp_get_thread_num())];
      for (std::size_t k = next++; k < groups.size(); k = next++) {
        try {
          im.Forward(lane, groups[k].seqs, groups[k].outs.data());
        } catch (const std::exception& e) {
          std::lock_guard fl(failure_mu);
          failure = e.what();
        }
      }
    }
  }
  if (!failure.empty()) return Fail(Error::Internal("oneDNN failed in the encoder: " + failure));
  return {};
}

int BertEncoder::dimension() const noexcept { return impl_->H; }
std::uint64_t BertEncoder::split_calls() const noexcept { return impl_->split_calls.load(std::memory_order_relaxed); }
int BertEncoder::max_seq_length() const noexcept { return impl_->model.max_seq_length; }
Precision BertEncoder::effective_precision() const noexcept { return impl_->precision; }
const BertModel& BertEncoder::model() const noexcept { return impl_->model; }

}  // namespace modulo::embed
