#include "model/weights.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/core/status_macros.h"

namespace engine::model {

F32Tensor ModelWeights::Own(std::vector<float> values, std::vector<int64_t> shape) {
  owned_.push_back(std::move(values));
  return F32Tensor{.data = owned_.back().data(), .shape = std::move(shape)};
}

const float* ModelWeights::OwnFloats(std::vector<float> values) {
  owned_.push_back(std::move(values));
  return owned_.back().data();
}

const uint8_t* ModelWeights::OwnBytes(std::vector<uint8_t> bytes) {
  owned_bytes_.push_back(std::move(bytes));
  return owned_bytes_.back().data();
}

namespace {

absl::Status CheckShape(const F32Tensor& t, const std::vector<int64_t>& want,
                        const std::string& name, const std::string& source, bool optional) {
  if (t.empty()) {
    if (optional) return absl::OkStatus();
    return absl::NotFoundError(absl::StrCat(source, ": missing tensor '", name, "'"));
  }
  if (t.shape != want) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": tensor '", name, "': expected shape [", absl::StrJoin(want, ", "),
        "], found [", absl::StrJoin(t.shape, ", "), "]"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ModelWeights::Validate(const ModelConfig& c, const std::string& source) const {
  const int64_t d = c.model_dim, f = c.ffn_dim, q = c.q_dim(), kv = c.kv_dim(), v = c.vocab_size;
  auto check = [&](const F32Tensor& t, std::vector<int64_t> want, const std::string& name,
                   bool optional = false) { return CheckShape(t, want, name, source, optional); };
  if (auto s = check(token_embedding, {v, d}, "token_embedding"); !s.ok()) return s;
  if (auto s = check(final_norm, {d}, "final_norm"); !s.ok()) return s;
  if (auto s = check(output, {v, d}, "output"); !s.ok()) return s;
  if (layers.size() != static_cast<size_t>(c.n_layers)) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": expected ", c.n_layers,
                                                   " layers, found ", layers.size()));
  }
  const bool w4a4 = !fp4.empty();
  if (w4a4) ENGINE_RETURN_IF_ERROR(fp4.Validate(c, source));
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerWeights& l = layers[i];
    const std::string p = absl::StrCat("layers.", i, ".");
    if (w4a4) {  // only the norms are FP32; the linears live in fp4
      for (auto s : {check(l.attn_norm, {d}, p + "attn_norm"),
                     check(l.ffn_norm, {d}, p + "ffn_norm")}) {
        if (!s.ok()) return s;
      }
      continue;
    }
    const bool bias_optional = !c.qkv_bias;
    for (auto s : {check(l.attn_norm, {d}, p + "attn_norm"), check(l.wq, {q, d}, p + "wq"),
                   check(l.wk, {kv, d}, p + "wk"), check(l.wv, {kv, d}, p + "wv"),
                   check(l.bq, {q}, p + "bq", bias_optional),
                   check(l.bk, {kv}, p + "bk", bias_optional),
                   check(l.bv, {kv}, p + "bv", bias_optional), check(l.wo, {d, q}, p + "wo"),
                   check(l.ffn_norm, {d}, p + "ffn_norm"), check(l.w_gate, {f, d}, p + "w_gate"),
                   check(l.w_up, {f, d}, p + "w_up"), check(l.w_down, {d, f}, p + "w_down")}) {
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace engine::model
