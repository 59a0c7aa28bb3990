#include "model/config.h"

#include "absl/strings/str_cat.h"

namespace engine::model {

const char* RopeStyleName(RopeStyle style) {
  return style == RopeStyle::kInterleaved ? "interleaved pairs" : "halves";
}

absl::Status ModelConfig::Validate(const std::string& source) const {
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": invalid model config: ", what));
  };
  auto in_range = [](int64_t v, int64_t hi) { return v > 0 && v <= hi; };
  if (!in_range(model_dim, kMaxModelDim)) return bad(absl::StrCat("model_dim = ", model_dim));
  if (!in_range(ffn_dim, 8 * kMaxModelDim)) return bad(absl::StrCat("ffn_dim = ", ffn_dim));
  if (!in_range(n_layers, kMaxLayers)) return bad(absl::StrCat("n_layers = ", n_layers));
  if (!in_range(n_heads, kMaxHeads)) return bad(absl::StrCat("n_heads = ", n_heads));
  if (!in_range(n_kv_heads, n_heads)) {
    return bad(absl::StrCat("n_kv_heads = ", n_kv_heads, " (n_heads = ", n_heads, ")"));
  }
  if (n_heads % n_kv_heads != 0) {
    return bad(absl::StrCat("n_heads (", n_heads, ") is not a multiple of n_kv_heads (",
                            n_kv_heads, ")"));
  }
  if (!in_range(head_dim, kMaxModelDim) || head_dim % 2 != 0) {
    return bad(absl::StrCat("head_dim = ", head_dim, " (must be positive and even)"));
  }
  if (!in_range(vocab_size, kMaxVocab)) return bad(absl::StrCat("vocab_size = ", vocab_size));
  if (!in_range(max_seq_len, kMaxSeqLen)) {
    return bad(absl::StrCat("max_seq_len = ", max_seq_len));
  }
  if (!(norm_eps > 0.0f && norm_eps < 1.0f)) return bad(absl::StrCat("norm_eps = ", norm_eps));
  if (!(rope_theta > 0.0f)) return bad(absl::StrCat("rope_theta = ", rope_theta));
  return absl::OkStatus();
}

int64_t ModelConfig::LinearWeightsPerLayer() const {
  const int64_t d = model_dim, f = ffn_dim, q = q_dim(), kv = kv_dim();
  return d * q + 2 * d * kv + q * d  // wq, wk, wv, wo
         + 3 * d * f;                // gate, up, down
}

int64_t ModelConfig::ParameterCount() const {
  const int64_t d = model_dim, q = q_dim(), kv = kv_dim();
  const int64_t per_layer = 2 * d  // attn and ffn norms
                            + LinearWeightsPerLayer() + (qkv_bias ? q + 2 * kv : 0);
  const int64_t embedding = static_cast<int64_t>(vocab_size) * d;
  return embedding + (tied_embeddings ? 0 : embedding) + n_layers * per_layer + d;
}

}  // namespace engine::model
