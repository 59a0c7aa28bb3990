#include "model/fp4_weights.h"

#include "absl/strings/str_cat.h"

namespace engine::model {

const char* Fp4FormatName(Fp4Format format) {
  switch (format) {
    case Fp4Format::kE2M1:
      return "e2m1";
    case Fp4Format::kE3M0:
      return "e3m0";
    case Fp4Format::kE1M2:
      return "e1m2";
  }
  return "unknown";
}

namespace {

bool KnownFormat(Fp4Format f) {
  return f == Fp4Format::kE2M1 || f == Fp4Format::kE3M0 || f == Fp4Format::kE1M2;
}

absl::Status CheckLinear(const Fp4Linear& w, int64_t out, int64_t in, bool bias_expected,
                         const std::string& name, const std::string& source) {
  if (w.empty() || w.row_scale == nullptr) {
    return absl::NotFoundError(absl::StrCat(source, ": missing FP4 tensor '", name, "'"));
  }
  if (!KnownFormat(w.format)) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": FP4 tensor '", name,
                                                   "': unknown format ",
                                                   static_cast<int>(w.format)));
  }
  if (in % 2 != 0 || w.in_features % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": FP4 tensor '", name,
                                                   "': in_features ", w.in_features,
                                                   " is odd (two codes per byte need it even)"));
  }
  if (w.out_features != out || w.in_features != in) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": FP4 tensor '", name, "': expected shape [", out, ", ", in, "], found [",
        w.out_features, ", ", w.in_features, "]"));
  }
  if (bias_expected != (w.bias != nullptr)) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": FP4 tensor '", name, "': ",
                                                   bias_expected ? "missing" : "unexpected",
                                                   " bias"));
  }
  return absl::OkStatus();
}

absl::Status CheckAct(const ActQuant& a, const std::string& name, const std::string& source) {
  if (!KnownFormat(a.format) || !(a.scale > 0.0f) || !(a.scale < 3.0e38f)) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": activation quantizer '", name,
                                                   "': format ", static_cast<int>(a.format),
                                                   ", scale ", a.scale,
                                                   " (expected a known format and a finite "
                                                   "positive scale)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Fp4ModelWeights::Validate(const ModelConfig& c, const std::string& source) const {
  if (layers.size() != static_cast<size_t>(c.n_layers)) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": expected ", c.n_layers,
                                                   " FP4 layers, found ", layers.size()));
  }
  const int64_t d = c.model_dim, f = c.ffn_dim, q = c.q_dim(), kv = c.kv_dim();
  for (size_t i = 0; i < layers.size(); ++i) {
    const Fp4LayerWeights& l = layers[i];
    const std::string p = absl::StrCat("layers.", i, ".");
    for (const absl::Status& s :
         {CheckAct(l.attn_input, p + "attn_input", source),
          CheckAct(l.attn_output, p + "attn_output", source),
          CheckAct(l.ffn_input, p + "ffn_input", source),
          CheckAct(l.down_input, p + "down_input", source),
          CheckLinear(l.wq, q, d, c.qkv_bias, p + "wq", source),
          CheckLinear(l.wk, kv, d, c.qkv_bias, p + "wk", source),
          CheckLinear(l.wv, kv, d, c.qkv_bias, p + "wv", source),
          CheckLinear(l.wo, d, q, false, p + "wo", source),
          CheckLinear(l.w_gate, f, d, false, p + "w_gate", source),
          CheckLinear(l.w_up, f, d, false, p + "w_up", source),
          CheckLinear(l.w_down, d, f, false, p + "w_down", source)}) {
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace engine::model
