#include "engine/backend_weights.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "kernels/core/half.h"
#include "kernels/core/status_macros.h"
#include "kernels/cpu/f16_matmul.h"
#include "kernels/cpu/ops_cpu.h"
#include "kernels/cpu/w4a16_gemm.h"

namespace engine {
namespace {

absl::StatusOr<kernels::PreparedFp4Weight> Prepare(const model::Fp4Linear& w,
                                                   const std::string& name) {
  absl::StatusOr<kernels::PreparedFp4Weight> prepared =
      // Same enum values (static_assert in transformer_w4a4.cc).
      kernels::PrepareFp4Weight(w.codes, w.row_scale, w.bias, static_cast<Fp4Kind>(w.format),
                                w.out_features, w.in_features);
  if (!prepared.ok()) {
    return absl::Status(prepared.status().code(),
                        absl::StrCat(name, ": ", prepared.status().message()));
  }
  return prepared;
}

absl::StatusOr<std::vector<Fp4PreparedLayer>> PrepareFp4Layers(const model::Fp4ModelWeights& w) {
  std::vector<Fp4PreparedLayer> layers(w.layers.size());
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const model::Fp4LayerWeights& in = w.layers[l];
    Fp4PreparedLayer& out = layers[l];
    const std::string p = absl::StrCat("layer ", l, " ");
    ENGINE_ASSIGN_OR_RETURN(out.wq, Prepare(in.wq, p + "wq"));
    ENGINE_ASSIGN_OR_RETURN(out.wk, Prepare(in.wk, p + "wk"));
    ENGINE_ASSIGN_OR_RETURN(out.wv, Prepare(in.wv, p + "wv"));
    ENGINE_ASSIGN_OR_RETURN(out.wo, Prepare(in.wo, p + "wo"));
    ENGINE_ASSIGN_OR_RETURN(out.w_gate, Prepare(in.w_gate, p + "w_gate"));
    ENGINE_ASSIGN_OR_RETURN(out.w_up, Prepare(in.w_up, p + "w_up"));
    ENGINE_ASSIGN_OR_RETURN(out.w_down, Prepare(in.w_down, p + "w_down"));
  }
  return layers;
}

}  // namespace

int64_t DenseLinear::bytes() const {
  switch (type) {
    case Type::kF32:
      return n * k * 4;
    case Type::kF16:
      return n * k * 2;
    case Type::kI8:
      return n * k + n * 4;
    case Type::kW4A16:
      return fp4 != nullptr ? fp4->memory_bytes() : 0;
  }
  return 0;
}

const char* DenseLinearTypeName(DenseLinear::Type type) {
  switch (type) {
    case DenseLinear::Type::kF32:
      return "f32";
    case DenseLinear::Type::kF16:
      return "f16";
    case DenseLinear::Type::kI8:
      return "i8";
    case DenseLinear::Type::kW4A16:
      return "w4a16";
  }
  return "unknown";
}

void DenseLinearForward(kernels::ThreadPool& pool, const float* x, const DenseLinear& w,
                        const float* bias, float* y, int64_t m) {
  switch (w.type) {
    case DenseLinear::Type::kF32:
      kernels::MatMulF32(pool, x, w.f32, bias, y, m, w.n, w.k);
      return;
    case DenseLinear::Type::kF16:
      kernels::MatMulF16(pool, x, w.f16, bias, y, m, w.n, w.k);
      return;
    case DenseLinear::Type::kI8:
      kernels::MatMulI8(pool, x, w.i8, w.i8_scale, bias, y, m, w.n, w.k);
      return;
    case DenseLinear::Type::kW4A16:
      // The prepared weight carries its own bias: only bias-free layers use this type.
      ENGINE_CHECK(bias == nullptr && w.fp4 != nullptr);
      kernels::W4A16Gemm(pool, {.x = x, .w = w.fp4, .y = y, .m = m});
      return;
  }
}

DenseLinear BackendWeights::AddF16(std::unique_ptr<uint16_t[]> values, int64_t n, int64_t k) {
  f16_storage.push_back(std::move(values));
  return DenseLinear{.type = DenseLinear::Type::kF16, .n = n, .k = k,
                     .f16 = f16_storage.back().get()};
}

DenseLinear BackendWeights::AddI8(I8Rows rows, int64_t n, int64_t k) {
  i8_storage.push_back(std::move(rows.q));
  scale_storage.push_back(std::move(rows.scale));
  return DenseLinear{.type = DenseLinear::Type::kI8, .n = n, .k = k,
                     .i8 = i8_storage.back().get(), .i8_scale = scale_storage.back().get()};
}

DenseLinear BackendWeights::AddW4A16(kernels::PreparedFp4Weight weight) {
  fp4_storage.push_back(std::make_unique<kernels::PreparedFp4Weight>(std::move(weight)));
  const kernels::PreparedFp4Weight* w = fp4_storage.back().get();
  return DenseLinear{.type = DenseLinear::Type::kW4A16, .n = w->n(), .k = w->k(), .fp4 = w};
}

std::unique_ptr<uint16_t[]> ConvertToF16(const float* values, int64_t n) {
  auto out = std::make_unique<uint16_t[]>(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[i] = F32ToF16(values[i]);
  return out;
}

absl::StatusOr<I8Rows> ConvertToI8Rows(const float* w, int64_t n, int64_t k,
                                       const std::string& name) {
  I8Rows out{.q = std::make_unique<int8_t[]>(static_cast<size_t>(n * k)),
             .scale = std::make_unique<float[]>(static_cast<size_t>(n))};
  for (int64_t j = 0; j < n; ++j) {
    const float* row = w + j * k;
    float max_abs = 0.0f;
    for (int64_t t = 0; t < k; ++t) {
      if (!std::isfinite(row[t])) {
        return absl::InvalidArgumentError(absl::StrCat(name, ": row ", j, " column ", t,
                                                       " holds ", row[t],
                                                       ", expected a finite weight"));
      }
      max_abs = std::max(max_abs, std::fabs(row[t]));
    }
    const float scale = max_abs / 127.0f;
    out.scale[j] = scale;
    for (int64_t t = 0; t < k; ++t) {
      // |row[t] / scale| <= 127 up to one rounding; the clamp keeps that rounding in range.
      const float v = scale > 0.0f ? std::nearbyint(row[t] / scale) : 0.0f;
      out.q[j * k + t] = static_cast<int8_t>(std::clamp(v, -127.0f, 127.0f));
    }
  }
  return out;
}

absl::StatusOr<BackendWeights> PrepareBackendWeights(const model::ModelConfig& config,
                                                     const model::ModelWeights& weights) {
  BackendWeights out;
  out.head = DenseLinear{.type = DenseLinear::Type::kF32, .n = config.vocab_size,
                         .k = config.model_dim, .f32 = weights.output.data};
  if (!weights.fp4.empty()) {
    ENGINE_ASSIGN_OR_RETURN(out.fp4, PrepareFp4Layers(weights.fp4));
    const int64_t n = out.head.n, k = out.head.k;
    ENGINE_ASSIGN_OR_RETURN(I8Rows head,
                            ConvertToI8Rows(weights.output.data, n, k, "output head"));
    out.head = out.AddI8(std::move(head), n, k);
  }
  return out;
}

}  // namespace engine
