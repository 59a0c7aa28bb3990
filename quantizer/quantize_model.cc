#include "quantizer/quantize_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/internal.h"
#include "kernels/core/fp4_format.h"
#include "kernels/core/status_macros.h"
#include "kernels/cpu/ops_cpu.h"
#include "model/gguf_writer.h"
#include "quantizer/format_search.h"
#include "quantizer/fp4_quant.h"
#include "quantizer/gptq.h"
#include "quantizer/scale_folding.h"

namespace engine::quantizer {

const char* MethodName(Method method) {
  switch (method) {
    case Method::kRtn:
      return "rtn";
    case Method::kLlmFp4:
      return "llm-fp4";
    case Method::kMergeQuant:
      return "mergequant";
  }
  return "unknown";
}

namespace {

using kernels::MatMulF32;
using model::F32Tensor;
using Matrix = std::vector<float>;

// LLM-FP4's exponent-bias range for E2M1 activations: k_j in [0, 2^E - 1] with E = 2.
constexpr int kMaxExponentShift = 3;

Matrix Copy(const F32Tensor& t) { return Matrix(t.data, t.data + t.num_elements()); }

std::vector<float> ColumnAbsMax(std::initializer_list<const Matrix*> weights, int64_t k) {
  std::vector<float> m(static_cast<size_t>(k), 0.0f);
  for (const Matrix* w : weights) {
    for (size_t i = 0; i < w->size(); ++i) m[i % k] = std::max(m[i % k], std::abs((*w)[i]));
  }
  return m;
}

void AddInPlace(Matrix& x, const Matrix& y) {
  for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];
}

// State shared by the steps of one quantization run.
struct Run {
  const model::ModelConfig& c;
  const QuantizeOptions& o;
  kernels::ThreadPool& pool;
  std::vector<Fp4Kind> formats;       // candidates for weights and activations
  int64_t rows = 0;                   // calibration tokens, all sequences
  int64_t seq_len = 0;
  std::vector<int32_t> positions;     // [rows]
  std::vector<uint8_t> is_sink;       // [rows]: position 0 rows when the sink is kept in FP
  std::vector<int64_t> search_rows;   // row indices the activation search evaluates
  model::ModelWeights* out = nullptr; // storage of the result
  QuantizeReport* report = nullptr;

  bool search() const { return o.method != Method::kRtn; }
  bool gptq() const { return o.gptq && o.method != Method::kRtn; }

  // The GPTQ Hessian of an input x [rows, k], over the rows that are not the FP sink.
  GptqHessian Hessian(const Matrix& x, int64_t k) const {
    if (!gptq()) return {};
    Matrix kept;
    kept.reserve(x.size());
    for (int64_t r = 0; r < rows; ++r) {
      if (!is_sink[r]) kept.insert(kept.end(), &x[r * k], &x[r * k] + k);
    }
    return ComputeGptqHessian(pool, kept.data(), static_cast<int64_t>(kept.size()) / k, k);
  }

  // Per-channel factors for an input with statistics `stats`, consumed by `consumers`.
  std::vector<float> Factors(const ChannelStats& stats,
                             std::initializer_list<const Matrix*> consumers, int64_t k) const {
    switch (o.method) {
      case Method::kRtn:
        return std::vector<float>(static_cast<size_t>(k), 1.0f);
      case Method::kLlmFp4:
        return PowerOfTwoFactors(stats, kMaxExponentShift);
      case Method::kMergeQuant:
        return MigrationFactors(stats, ColumnAbsMax(consumers, k), o.migration_alpha);
    }
    return {};
  }

  Matrix Gather(const Matrix& x, int64_t k) const {
    Matrix g(search_rows.size() * static_cast<size_t>(k));
    for (size_t i = 0; i < search_rows.size(); ++i) {
      std::memcpy(&g[i * k], &x[search_rows[i] * k], sizeof(float) * k);
    }
    return g;
  }
};

// A weight quantized by the search, with its dequantized form for computing outputs.
struct QuantizedLinear {
  QuantizedMatrix q;
  Matrix dequantized;
  std::string summary;
};

QuantizedLinear QuantizeWeight(const Run& run, const std::string& name, const Matrix& w,
                               int64_t n, int64_t k, std::span<const float> importance,
                               const GptqHessian& hessian) {
  WeightSearchResult r =
      SearchWeightQuantization(run.pool, w.data(), n, k, run.formats, importance, run.search());
  if (run.gptq()) GptqRequantize(run.pool, w.data(), hessian, r.quantized);
  QuantizedLinear out;
  out.dequantized = Dequantize(r.quantized);
  out.summary = absl::StrFormat("%s %s clip %.2f err %.2e", name,
                                model::Fp4FormatName(static_cast<model::Fp4Format>(r.quantized.kind)),
                                r.mean_clip_ratio, r.relative_error);
  out.q = std::move(r.quantized);
  return out;
}

// Chooses the static quantizer of input `x` ([rows, k], already divided by its factors) for
// the given consumers, and returns fake-quantized x.
model::ActQuant QuantizeInput(const Run& run, const std::string& name, int32_t layer,
                              const Matrix& x, int64_t k, float absmax,
                              std::initializer_list<std::pair<const Matrix*, const QuantizedLinear*>>
                                  consumers,
                              std::initializer_list<int64_t> consumer_rows,
                              const std::vector<std::string>& weight_summaries, Matrix* xq) {
  std::vector<Consumer> cs;
  auto n_it = consumer_rows.begin();
  for (const auto& [full, quantized] : consumers) {
    cs.push_back({.w_full = full->data(), .w_quantized = quantized->dequantized.data(), .n = *n_it++});
  }
  ActSearchResult act;
  if (run.search()) {
    const Matrix sample = run.Gather(x, k);
    act = SearchActivationQuantization(run.pool, sample.data(),
                                       static_cast<int64_t>(run.search_rows.size()), k, absmax,
                                       cs, run.formats, /*search_clip=*/true);
  } else {
    act = {.kind = Fp4Kind::kE2M1, .scale = absmax > 0.0f ? absmax / Fp4MaxMagnitude(Fp4Kind::kE2M1) : 1.0f};
  }
  xq->resize(x.size());
  FakeQuantize(x.data(), static_cast<int64_t>(x.size()), act.kind, act.scale, xq->data());
  if (run.report != nullptr) {
    run.report->groups.push_back(
        GroupReport{.layer = layer,
                    .input = name,
                    .act_format = model::Fp4FormatName(static_cast<model::Fp4Format>(act.kind)),
                    .act_clip_ratio = act.clip_ratio,
                    .act_relative_error = act.relative_error,
                    .weights = weight_summaries});
  }
  return model::ActQuant{.format = static_cast<model::Fp4Format>(act.kind), .scale = act.scale};
}

// y [rows, n] = x [rows, k] . w^T + bias
Matrix Linear(kernels::ThreadPool& pool, const Matrix& x, const Matrix& w, const float* bias,
              int64_t rows, int64_t n, int64_t k) {
  Matrix y(static_cast<size_t>(rows * n));
  MatMulF32(pool, x.data(), w.data(), bias, y.data(), rows, n, k);
  return y;
}

model::Fp4Linear Store(model::ModelWeights& out, QuantizedMatrix q, const float* bias, int64_t n) {
  model::Fp4Linear l;
  l.format = static_cast<model::Fp4Format>(q.kind);
  l.out_features = q.n;
  l.in_features = q.k;
  l.codes = out.OwnBytes(std::move(q.codes));
  l.row_scale = out.OwnFloats(std::move(q.row_scale));
  if (bias != nullptr) l.bias = out.OwnFloats(std::vector<float>(bias, bias + n));
  return l;
}

// The orthonormal Sylvester-Hadamard matrix of order n (a power of two), [n, n], symmetric.
Matrix Hadamard(int64_t n) {
  Matrix h(static_cast<size_t>(n * n));
  const float norm = 1.0f / std::sqrt(static_cast<float>(n));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) h[i * n + j] = (__builtin_popcountll(i & j) % 2 ? -norm : norm);
  }
  return h;
}

// v_proj rows of every kv head: rows <- H rows (and the bias); o_proj columns of every query
// head: columns <- columns H. att_h = sum_t p_t v_t becomes H att_h, and o_proj undoes H.
void RotateValues(Matrix& wv, std::vector<float>* bv, Matrix& wo, const model::ModelConfig& c) {
  const int64_t hd = c.head_dim, d = c.model_dim, qd = c.q_dim();
  const Matrix h = Hadamard(hd);
  Matrix block(static_cast<size_t>(hd * d));
  for (int64_t kv = 0; kv < c.n_kv_heads; ++kv) {
    float* rows = &wv[kv * hd * d];
    std::fill(block.begin(), block.end(), 0.0f);
    for (int64_t i = 0; i < hd; ++i) {
      for (int64_t p = 0; p < hd; ++p) {
        for (int64_t col = 0; col < d; ++col) block[i * d + col] += h[i * hd + p] * rows[p * d + col];
      }
    }
    std::copy(block.begin(), block.end(), rows);
    if (bv != nullptr && !bv->empty()) {
      std::vector<float> b(static_cast<size_t>(hd), 0.0f);
      for (int64_t i = 0; i < hd; ++i) {
        for (int64_t p = 0; p < hd; ++p) b[i] += h[i * hd + p] * (*bv)[kv * hd + p];
      }
      std::copy(b.begin(), b.end(), bv->begin() + kv * hd);
    }
  }
  std::vector<float> row(static_cast<size_t>(hd));
  for (int64_t r = 0; r < d; ++r) {
    for (int64_t head = 0; head < c.n_heads; ++head) {
      float* cols = &wo[r * qd + head * hd];
      std::fill(row.begin(), row.end(), 0.0f);
      for (int64_t j = 0; j < hd; ++j) {
        for (int64_t p = 0; p < hd; ++p) row[j] += cols[p] * h[p * hd + j];
      }
      std::copy(row.begin(), row.end(), cols);
    }
  }
}

// The full-precision trajectory of the sink token (position 0 attends only to itself, so its
// keys, values and residual stream do not depend on any other token).
struct SinkState {
  Matrix x;  // [d] residual stream
  std::vector<float> keys, values;  // [n_layers * kv_dim]
};

}  // namespace

absl::StatusOr<model::LoadedModel> QuantizeModel(const Model& fp_model,
                                                 const QuantizeOptions& options,
                                                 QuantizeReport* report) {
  using Clock = std::chrono::steady_clock;
  const model::LoadedModel& fp = LoadedModelOf(fp_model);
  if (!fp.weights.fp4.empty()) {
    return absl::InvalidArgumentError("the model is already quantized to W4A4");
  }
  const model::ModelConfig& c = fp.config;
  if (c.model_dim % 2 != 0 || c.ffn_dim % 2 != 0 || c.q_dim() % 2 != 0) {
    return absl::UnimplementedError("W4A4 needs even model_dim, ffn_dim and q_dim");
  }
  const bool sink = options.sink && options.method != Method::kRtn;
  const bool rotate = options.rotate_values && options.method != Method::kRtn &&
                      c.head_dim > 0 && (c.head_dim & (c.head_dim - 1)) == 0;
  QuantizeReport local_report;
  QuantizeReport& rep = report != nullptr ? *report : local_report;

  // --- calibration data ------------------------------------------------------------------
  const Clock::time_point start = Clock::now();
  CalibrationOptions calib = options.calibration;
  if (!calib.progress && options.progress) {
    calib.progress = [&](int32_t done, int32_t total) { options.progress("calibration text", done, total); };
  }
  ENGINE_ASSIGN_OR_RETURN(CalibrationData data, MakeCalibrationData(fp_model, calib));
  rep.calibration = data.description;
  const Clock::time_point calibrated = Clock::now();
  rep.calibration_seconds = std::chrono::duration<double>(calibrated - start).count();

  kernels::ThreadPool pool(options.num_threads);
  model::LoadedModel result;
  result.format = model::ModelFormat::kGguf;
  result.path = fp.path;
  result.config = c;
  result.tokenizer = fp.tokenizer;
  result.chat_template = fp.chat_template;
  model::ModelWeights& out = result.weights;
  out.token_embedding = fp.weights.token_embedding;
  out.output = fp.weights.output;
  out.final_norm = fp.weights.final_norm;
  out.layers.resize(static_cast<size_t>(c.n_layers));
  out.fp4.layers.resize(static_cast<size_t>(c.n_layers));

  Run run{.c = c, .o = options, .pool = pool, .out = &out, .report = &rep};
  run.formats = options.e2m1_only || options.method == Method::kRtn
                    ? std::vector<Fp4Kind>{Fp4Kind::kE2M1}
                    : std::vector<Fp4Kind>{Fp4Kind::kE2M1, Fp4Kind::kE3M0, Fp4Kind::kE1M2};
  const int64_t S = static_cast<int64_t>(data.sequences.size());
  const int64_t L = static_cast<int64_t>(data.sequences[0].size());
  run.rows = S * L;
  run.seq_len = L;
  run.positions.resize(static_cast<size_t>(run.rows));
  run.is_sink.assign(static_cast<size_t>(run.rows), 0);
  for (int64_t r = 0; r < run.rows; ++r) {
    run.positions[r] = static_cast<int32_t>(r % L);
    run.is_sink[r] = sink && r % L == 0;
  }
  // Evenly spaced non-sink rows for the activation search.
  const int64_t wanted = std::min<int64_t>(options.search_rows, run.rows - (sink ? S : 0));
  for (int64_t i = 0; i < wanted; ++i) {
    int64_t r = i * run.rows / wanted;
    if (run.is_sink[r]) ++r;
    run.search_rows.push_back(r);
  }

  const int64_t T = run.rows, d = c.model_dim, f = c.ffn_dim, qd = c.q_dim(), kvd = c.kv_dim();
  const int64_t hd = c.head_dim;
  const auto pairing = c.rope_style == model::RopeStyle::kInterleaved
                           ? kernels::RopePairing::kInterleaved
                           : kernels::RopePairing::kHalves;
  kernels::RopeTable rope;
  rope.Compute(run.positions.data(), T, hd, c.rope_theta);

  // x [T, d]: the residual stream of the model quantized so far.
  Matrix x(static_cast<size_t>(T * d));
  for (int64_t s = 0; s < S; ++s) {
    for (int64_t p = 0; p < L; ++p) {
      std::memcpy(&x[(s * L + p) * d], fp.weights.token_embedding.data + int64_t{data.sequences[s][p]} * d,
                  sizeof(float) * d);
    }
  }
  SinkState sink_state;
  const TokenId sink_token = data.sequences[0][0];
  if (sink) {
    sink_state.x.assign(fp.weights.token_embedding.data + int64_t{sink_token} * d,
                        fp.weights.token_embedding.data + int64_t{sink_token} * d + d);
  }

  for (int32_t l = 0; l < c.n_layers; ++l) {
    const model::LayerWeights& lw = fp.weights.layers[l];
    model::Fp4LayerWeights& ql = out.fp4.layers[l];
    const std::string p = absl::StrCat("blk.", l, ".");

    // ===== attention ======================================================================
    Matrix wq = Copy(lw.wq), wk = Copy(lw.wk), wv = Copy(lw.wv), wo = Copy(lw.wo);
    std::vector<float> bv;
    if (!lw.bv.empty()) bv.assign(lw.bv.data, lw.bv.data + kvd);
    if (rotate) RotateValues(wv, &bv, wo, c);
    const Matrix wv_rotated_fp = rotate ? wv : Matrix();  // before the input factors are folded
    Matrix xn(static_cast<size_t>(T * d));
    kernels::RmsNorm(x.data(), lw.attn_norm.data, xn.data(), T, d, c.norm_eps);
    ChannelStats stats = ComputeChannelStats(xn.data(), T, d, run.is_sink);
    std::vector<float> s = run.Factors(stats, {&wq, &wk, &wv}, d);
    // Fold: gamma / s, weight columns * s. The normalized input becomes xn / s.
    std::vector<float> gamma(lw.attn_norm.data, lw.attn_norm.data + d);
    DivideVector(gamma.data(), s);
    MultiplyColumns(wq.data(), qd, d, s);
    MultiplyColumns(wk.data(), kvd, d, s);
    MultiplyColumns(wv.data(), kvd, d, s);
    out.layers[l].attn_norm = out.Own(gamma, {d});
    kernels::RmsNorm(x.data(), gamma.data(), xn.data(), T, d, c.norm_eps);
    std::vector<float> importance(static_cast<size_t>(d));
    for (int64_t j = 0; j < d; ++j) importance[j] = stats.mean_square[j] / (s[j] * s[j]);
    GptqHessian hessian = run.Hessian(xn, d);
    QuantizedLinear q_q = QuantizeWeight(run, "wq", wq, qd, d, importance, hessian);
    QuantizedLinear q_k = QuantizeWeight(run, "wk", wk, kvd, d, importance, hessian);
    QuantizedLinear q_v = QuantizeWeight(run, "wv", wv, kvd, d, importance, hessian);
    float absmax = 0.0f;
    for (int64_t j = 0; j < d; ++j) absmax = std::max(absmax, stats.absmax[j] / s[j]);
    Matrix xq;
    ql.attn_input = QuantizeInput(run, "attn_input", l, xn, d, absmax,
                                  {{&wq, &q_q}, {&wk, &q_k}, {&wv, &q_v}}, {qd, kvd, kvd},
                                  {q_q.summary, q_k.summary, q_v.summary}, &xq);
    Matrix q = Linear(pool, xq, q_q.dequantized, lw.bq.data, T, qd, d);
    Matrix k = Linear(pool, xq, q_k.dequantized, lw.bk.data, T, kvd, d);
    Matrix v = Linear(pool, xq, q_v.dequantized, bv.empty() ? nullptr : bv.data(), T, kvd, d);
    kernels::Rope(q.data(), rope, c.n_heads, hd, pairing);
    kernels::Rope(k.data(), rope, c.n_kv_heads, hd, pairing);

    // The sink token in full precision (RoPE at position 0 is the identity).
    std::vector<float> k0, v0, v0_fp;
    if (sink) {
      Matrix x0n(static_cast<size_t>(d));
      kernels::RmsNorm(sink_state.x.data(), lw.attn_norm.data, x0n.data(), 1, d, c.norm_eps);
      k0.resize(static_cast<size_t>(kvd));
      v0.resize(static_cast<size_t>(kvd));
      MatMulF32(pool, x0n.data(), lw.wk.data, lw.bk.data, k0.data(), 1, kvd, d);
      MatMulF32(pool, x0n.data(), lw.wv.data, lw.bv.data, v0.data(), 1, kvd, d);
      v0_fp = v0;
      if (rotate) {  // the cached sink values live in the rotated basis, like every other value
        MatMulF32(pool, x0n.data(), wv_rotated_fp.data(), bv.empty() ? nullptr : bv.data(),
                  v0.data(), 1, kvd, d);
      }
    }
    // Causal attention within each calibration sequence.
    Matrix att(static_cast<size_t>(T * qd));
    {
      Matrix kc(static_cast<size_t>(kvd * L)), vc(static_cast<size_t>(kvd * L));
      const kernels::AttentionShape shape{.m = L, .n_heads = c.n_heads,
                                          .n_kv_heads = c.n_kv_heads, .head_dim = hd,
                                          .capacity = L};
      for (int64_t sq = 0; sq < S; ++sq) {
        for (int64_t pos = 0; pos < L; ++pos) {
          const float* kr = (sink && pos == 0) ? k0.data() : &k[(sq * L + pos) * kvd];
          const float* vr = (sink && pos == 0) ? v0.data() : &v[(sq * L + pos) * kvd];
          for (int64_t h = 0; h < c.n_kv_heads; ++h) {
            std::memcpy(&kc[(h * L + pos) * hd], kr + h * hd, sizeof(float) * hd);
            std::memcpy(&vc[(h * L + pos) * hd], vr + h * hd, sizeof(float) * hd);
          }
        }
        kernels::Attention(pool, &q[sq * L * qd], kc.data(), vc.data(), run.positions.data(),
                           &att[sq * L * qd], shape);
      }
    }

    // ----- o_proj input: factors shared by the heads of a kv group, folded into v's rows ----
    ChannelStats att_stats = ComputeChannelStats(att.data(), T, qd, run.is_sink);
    std::vector<float> s_kv = ShareAcrossGroups(run.Factors(att_stats, {&wo}, qd), c.n_heads,
                                                c.n_kv_heads, static_cast<int>(hd));
    std::vector<float> s_o = ExpandToQueryHeads(s_kv, c.n_heads, c.n_kv_heads, static_cast<int>(hd));
    // v rows / s: exact on the quantized weight (its row scales), on the bias and the sink.
    for (int64_t j = 0; j < kvd; ++j) q_v.q.row_scale[j] /= s_kv[j];
    if (!bv.empty()) DivideVector(bv.data(), s_kv);
    if (sink) DivideVector(v0.data(), s_kv);
    DivideColumns(att.data(), T, qd, s_o);
    MultiplyColumns(wo.data(), d, qd, s_o);
    for (int64_t j = 0; j < qd; ++j) importance.resize(static_cast<size_t>(qd));
    for (int64_t j = 0; j < qd; ++j) importance[j] = att_stats.mean_square[j] / (s_o[j] * s_o[j]);
    QuantizedLinear q_o = QuantizeWeight(run, "wo", wo, d, qd, importance, run.Hessian(att, qd));
    absmax = 0.0f;
    for (int64_t j = 0; j < qd; ++j) absmax = std::max(absmax, att_stats.absmax[j] / s_o[j]);
    ql.attn_output = QuantizeInput(run, "attn_output", l, att, qd, absmax, {{&wo, &q_o}}, {d},
                                   {q_o.summary}, &xq);
    AddInPlace(x, Linear(pool, xq, q_o.dequantized, nullptr, T, d, qd));
    ql.wq = Store(out, std::move(q_q.q), lw.bq.data, qd);
    ql.wk = Store(out, std::move(q_k.q), lw.bk.data, kvd);
    ql.wv = Store(out, std::move(q_v.q), bv.empty() ? nullptr : bv.data(), kvd);
    ql.wo = Store(out, std::move(q_o.q), nullptr, d);
    if (sink) {
      // att0: each query head sees only the sink's value (softmax over one key is 1).
      Matrix att0(static_cast<size_t>(qd)), o0(static_cast<size_t>(d));
      const int group = c.n_heads / c.n_kv_heads;
      for (int64_t h = 0; h < c.n_heads; ++h) {
        std::memcpy(&att0[h * hd], &v0_fp[(h / group) * hd], sizeof(float) * hd);
      }
      MatMulF32(pool, att0.data(), lw.wo.data, nullptr, o0.data(), 1, d, qd);
      AddInPlace(sink_state.x, o0);
      sink_state.keys.insert(sink_state.keys.end(), k0.begin(), k0.end());
      sink_state.values.insert(sink_state.values.end(), v0.begin(), v0.end());
    }

    // ===== MLP ============================================================================
    Matrix wg = Copy(lw.w_gate), wu = Copy(lw.w_up), wd = Copy(lw.w_down);
    kernels::RmsNorm(x.data(), lw.ffn_norm.data, xn.data(), T, d, c.norm_eps);
    stats = ComputeChannelStats(xn.data(), T, d, run.is_sink);
    s = run.Factors(stats, {&wg, &wu}, d);
    gamma.assign(lw.ffn_norm.data, lw.ffn_norm.data + d);
    DivideVector(gamma.data(), s);
    MultiplyColumns(wg.data(), f, d, s);
    MultiplyColumns(wu.data(), f, d, s);
    out.layers[l].ffn_norm = out.Own(gamma, {d});
    kernels::RmsNorm(x.data(), gamma.data(), xn.data(), T, d, c.norm_eps);
    importance.resize(static_cast<size_t>(d));
    for (int64_t j = 0; j < d; ++j) importance[j] = stats.mean_square[j] / (s[j] * s[j]);
    hessian = run.Hessian(xn, d);
    QuantizedLinear q_g = QuantizeWeight(run, "w_gate", wg, f, d, importance, hessian);
    QuantizedLinear q_u = QuantizeWeight(run, "w_up", wu, f, d, importance, hessian);
    absmax = 0.0f;
    for (int64_t j = 0; j < d; ++j) absmax = std::max(absmax, stats.absmax[j] / s[j]);
    ql.ffn_input = QuantizeInput(run, "ffn_input", l, xn, d, absmax, {{&wg, &q_g}, {&wu, &q_u}},
                                 {f, f}, {q_g.summary, q_u.summary}, &xq);
    Matrix hidden = Linear(pool, xq, q_g.dequantized, nullptr, T, f, d);
    {
      const Matrix up = Linear(pool, xq, q_u.dequantized, nullptr, T, f, d);
      kernels::SiluMul(hidden.data(), up.data(), hidden.data(), T * f);
    }
    // ----- down_proj input: factors folded into up's rows -----------------------------------
    ChannelStats hidden_stats = ComputeChannelStats(hidden.data(), T, f, run.is_sink);
    std::vector<float> s_d = run.Factors(hidden_stats, {&wd}, f);
    for (int64_t j = 0; j < f; ++j) q_u.q.row_scale[j] /= s_d[j];
    DivideColumns(hidden.data(), T, f, s_d);
    MultiplyColumns(wd.data(), d, f, s_d);
    importance.resize(static_cast<size_t>(f));
    for (int64_t j = 0; j < f; ++j) importance[j] = hidden_stats.mean_square[j] / (s_d[j] * s_d[j]);
    QuantizedLinear q_d =
        QuantizeWeight(run, "w_down", wd, d, f, importance, run.Hessian(hidden, f));
    absmax = 0.0f;
    for (int64_t j = 0; j < f; ++j) absmax = std::max(absmax, hidden_stats.absmax[j] / s_d[j]);
    ql.down_input = QuantizeInput(run, "down_input", l, hidden, f, absmax, {{&wd, &q_d}}, {d},
                                  {q_d.summary}, &xq);
    AddInPlace(x, Linear(pool, xq, q_d.dequantized, nullptr, T, d, f));
    ql.w_gate = Store(out, std::move(q_g.q), nullptr, f);
    ql.w_up = Store(out, std::move(q_u.q), nullptr, f);
    ql.w_down = Store(out, std::move(q_d.q), nullptr, d);
    if (sink) {
      Matrix x0n(static_cast<size_t>(d)), g0(static_cast<size_t>(f)), u0(static_cast<size_t>(f)),
          d0(static_cast<size_t>(d));
      kernels::RmsNorm(sink_state.x.data(), lw.ffn_norm.data, x0n.data(), 1, d, c.norm_eps);
      MatMulF32(pool, x0n.data(), lw.w_gate.data, nullptr, g0.data(), 1, f, d);
      MatMulF32(pool, x0n.data(), lw.w_up.data, nullptr, u0.data(), 1, f, d);
      kernels::SiluMul(g0.data(), u0.data(), g0.data(), f);
      MatMulF32(pool, g0.data(), lw.w_down.data, nullptr, d0.data(), 1, d, f);
      AddInPlace(sink_state.x, d0);
    }
    if (options.progress) options.progress("quantizing layers", l + 1, c.n_layers);
  }

  if (sink) {
    Matrix x0n(static_cast<size_t>(d)), logits(static_cast<size_t>(c.vocab_size));
    kernels::RmsNorm(sink_state.x.data(), fp.weights.final_norm.data, x0n.data(), 1, d, c.norm_eps);
    MatMulF32(pool, x0n.data(), fp.weights.output.data, nullptr, logits.data(), 1, c.vocab_size, d);
    out.fp4.sink = model::Fp4Sink{.token = sink_token,
                                  .keys = out.OwnFloats(std::move(sink_state.keys)),
                                  .values = out.OwnFloats(std::move(sink_state.values)),
                                  .logits = out.OwnFloats(std::move(logits))};
  }
  rep.quantize_seconds = std::chrono::duration<double>(Clock::now() - calibrated).count();
  out.fp4.metadata = {
      {"method", MethodName(options.method)},
      {"formats", options.e2m1_only || options.method == Method::kRtn ? "e2m1" : "e2m1,e3m0,e1m2"},
      {"sink", sink ? absl::StrCat("token ", sink_token, " in full precision") : "none"},
      {"gptq", run.gptq() ? "yes" : "no"},
      {"value_rotation", rotate ? "hadamard per head" : "none"},
      {"calibration", data.description},
      {"fp4lm_version", Version()},
  };
  ENGINE_RETURN_IF_ERROR(out.Validate(c, "quantized model"));
  return result;
}

absl::Status SaveQuantizedModel(const model::LoadedModel& quantized, const std::string& path) {
  return model::WriteGgufModel(quantized, path);
}

}  // namespace engine::quantizer
