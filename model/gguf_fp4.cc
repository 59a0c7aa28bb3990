// Fp4ModelWeights <-> the fp4lm.* keys and FP4 tensors of a W4A4 GGUF file (layout table in
// gguf_fp4.h). Every key and tensor is checked against the config before its data is used, so a
// damaged file is an error naming the key or tensor, never a bad view.
#include "model/gguf_fp4.h"

#include <array>
#include <cmath>
#include <cstring>
#include <span>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/core/status_macros.h"
#include "model/gguf_format.h"
#include "model/gguf_writer.h"

namespace engine::model {
namespace {

using gguf::GgmlType;
using gguf::GgufBuilder;
using gguf::GgufFile;
using gguf::GgufTensorInfo;
using gguf::GgufValue;
using gguf::ValueType;
namespace keys = gguf::keys;

static_assert(static_cast<uint32_t>(Fp4Format::kE2M1) == 0 &&
                  static_cast<uint32_t>(Fp4Format::kE3M0) == 1 &&
                  static_cast<uint32_t>(Fp4Format::kE1M2) == 2,
              "the tensor type numbers 1000 + format are part of the file format");

// One activation quantizer of a layer: its key name and where it lives.
struct ActSlot {
  const char* name;
  ActQuant Fp4LayerWeights::*member;
};
constexpr std::array<ActSlot, 4> kActs = {{
    {"attn_input", &Fp4LayerWeights::attn_input},
    {"attn_output", &Fp4LayerWeights::attn_output},
    {"ffn_input", &Fp4LayerWeights::ffn_input},
    {"down_input", &Fp4LayerWeights::down_input},
}};

// One linear of a layer: llama.cpp's tensor name, its shape under the config, whether it has a
// bias, and its head count when its rows are RoPE'd (Q/K), else 0.
struct LinearSlot {
  const char* name;
  Fp4Linear Fp4LayerWeights::*member;
  int64_t out;
  int64_t in;
  bool bias;
  int32_t rope_heads;
};

std::array<LinearSlot, 7> Linears(const ModelConfig& c) {
  const int64_t d = c.model_dim, f = c.ffn_dim, q = c.q_dim(), kv = c.kv_dim();
  const bool b = c.qkv_bias;
  return {{
      {"attn_q", &Fp4LayerWeights::wq, q, d, b, c.n_heads},
      {"attn_k", &Fp4LayerWeights::wk, kv, d, b, c.n_kv_heads},
      {"attn_v", &Fp4LayerWeights::wv, kv, d, b, 0},
      {"attn_output", &Fp4LayerWeights::wo, d, q, false, 0},
      {"ffn_gate", &Fp4LayerWeights::w_gate, f, d, false, 0},
      {"ffn_up", &Fp4LayerWeights::w_up, f, d, false, 0},
      {"ffn_down", &Fp4LayerWeights::w_down, d, f, false, 0},
  }};
}

std::string TensorName(int layer, const char* linear, const char* suffix) {
  return absl::StrCat("blk.", layer, ".", linear, ".", suffix);
}

std::span<const uint8_t> FloatBytes(const float* data, int64_t n) {
  return {reinterpret_cast<const uint8_t*>(data), static_cast<size_t>(n) * sizeof(float)};
}

// A row scale multiplies a whole output row: the sign belongs in the codes, and NaN/inf means a
// broken quantizer or a damaged file. Zero is legal (an all-zero row).
absl::Status CheckRowScales(const float* scales, int64_t n, const std::string& what) {
  for (int64_t i = 0; i < n; ++i) {
    float s;
    std::memcpy(&s, scales + i, sizeof(float));  // may be an unaligned view of the file
    if (!std::isfinite(s) || s < 0.0f) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": row ", i, " has scale ", s, " (expected finite and >= 0)"));
    }
  }
  return absl::OkStatus();
}

// ---- Reading helpers ----

absl::Status Invalid(const GgufFile& f, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(f.path, ": ", what));
}

std::string Shape(const std::vector<int64_t>& s) {
  return absl::StrCat("[", absl::StrJoin(s, ", "), "]");
}

absl::StatusOr<ActQuant> ReadAct(const GgufFile& f, int layer, const char* input) {
  const std::string prefix = Fp4ActKey(layer, input);
  const std::string format_key = prefix + ".format";
  const std::string scale_key = prefix + ".scale";
  ActQuant a;
  ENGINE_ASSIGN_OR_RETURN(const std::string name, f.GetString(format_key));
  const std::optional<Fp4Format> format = ParseFp4FormatName(name);
  if (!format.has_value()) {
    return Invalid(
        f, absl::StrCat("key '", format_key, "': expected \"e2m1\", \"e3m0\" or \"e1m2\", found \"",
                        name, "\""));
  }
  a.format = *format;
  ENGINE_ASSIGN_OR_RETURN(const double scale, f.GetFloat(scale_key));
  a.scale = static_cast<float>(scale);
  if (!std::isfinite(a.scale) || !(a.scale > 0.0f)) {
    return Invalid(
        f, absl::StrCat("key '", scale_key, "': expected a finite positive scale, found ", scale));
  }
  return a;
}

// An F32 tensor of shape [n]: a view into the mapping when aligned, else an owned copy.
absl::StatusOr<const float*> ReadF32Vector(const GgufFile& f, std::span<const uint8_t> bytes,
                                           const std::string& name, int64_t n, bool optional,
                                           ModelWeights* w) {
  const GgufTensorInfo* t = f.FindTensor(name);
  if (t == nullptr) {
    if (optional) return nullptr;
    return absl::NotFoundError(
        absl::StrCat(f.path, ": missing tensor '", name, "' (expected F32 [", n, "])"));
  }
  if (t->type != static_cast<uint32_t>(GgmlType::kF32)) {
    return Invalid(f,
                   absl::StrCat("tensor '", name, "': expected type F32, found ", t->type_name()));
  }
  if (t->shape() != std::vector<int64_t>{n}) {
    return Invalid(f, absl::StrCat("tensor '", name, "': expected shape [", n, "], found ",
                                   Shape(t->shape())));
  }
  const std::span<const uint8_t> data = gguf::TensorBytes(f, *t, bytes);
  if (reinterpret_cast<uintptr_t>(data.data()) % alignof(float) == 0) {
    return reinterpret_cast<const float*>(data.data());
  }
  std::vector<float> copy(static_cast<size_t>(n));
  std::memcpy(copy.data(), data.data(), data.size());
  return w->OwnFloats(std::move(copy));
}

absl::StatusOr<Fp4Linear> ReadLinear(const GgufFile& f, std::span<const uint8_t> bytes, int layer,
                                     const LinearSlot& slot, ModelWeights* w) {
  const std::string name = TensorName(layer, slot.name, "weight");
  const std::vector<int64_t> want = {slot.out, slot.in};
  const GgufTensorInfo* t = f.FindTensor(name);
  if (t == nullptr) {
    return absl::NotFoundError(absl::StrCat(f.path, ": missing FP4 tensor '", name,
                                            "' (expected shape ", Shape(want), ")"));
  }
  const std::optional<Fp4Format> format = Fp4FormatFromGgufType(t->type);
  if (!format.has_value()) {
    return Invalid(f, absl::StrCat("tensor '", name,
                                   "': expected an fp4lm FP4 type (FP4LM_E2M1, FP4LM_E3M0 or "
                                   "FP4LM_E1M2) in a W4A4 file, found ",
                                   t->type_name()));
  }
  if (t->shape() != want) {
    return Invalid(f, absl::StrCat("tensor '", name, "': expected shape ", Shape(want),
                                   " (outermost-first), found ", Shape(t->shape())));
  }
  Fp4Linear l;
  l.format = *format;
  l.out_features = slot.out;
  l.in_features = slot.in;
  l.codes = gguf::TensorBytes(f, *t, bytes).data();
  const std::string scale_name = TensorName(layer, slot.name, "row_scale");
  ENGINE_ASSIGN_OR_RETURN(l.row_scale, ReadF32Vector(f, bytes, scale_name, slot.out,
                                                     /*optional=*/false, w));
  ENGINE_RETURN_IF_ERROR(
      CheckRowScales(l.row_scale, slot.out, absl::StrCat(f.path, ": tensor '", scale_name, "'")));
  const std::string bias_name = TensorName(layer, slot.name, "bias");
  if (slot.bias) {
    ENGINE_ASSIGN_OR_RETURN(l.bias,
                            ReadF32Vector(f, bytes, bias_name, slot.out, /*optional=*/false, w));
  } else if (f.FindTensor(bias_name) != nullptr) {
    return Invalid(f, absl::StrCat("unexpected tensor '", bias_name, "' (",
                                   slot.rope_heads > 0 || slot.member == &Fp4LayerWeights::wv
                                       ? "blk.0.attn_q.bias is absent, so the model has no "
                                         "q/k/v biases"
                                       : "this linear has no bias",
                                   ")"));
  }
  return l;
}

absl::Status ReadMetadata(const GgufFile& f, Fp4ModelWeights* fp4) {
  for (const gguf::GgufKv& kv : f.kvs) {
    if (!absl::StartsWith(kv.key, keys::kFp4lmMetaPrefix)) continue;
    const std::string name = kv.key.substr(std::strlen(keys::kFp4lmMetaPrefix));
    if (name.empty()) return Invalid(f, absl::StrCat("key '", kv.key, "': empty metadata name"));
    ENGINE_ASSIGN_OR_RETURN(std::string value, f.GetString(kv.key));
    fp4->metadata.emplace_back(name, std::move(value));
  }
  return absl::OkStatus();
}

}  // namespace

uint32_t Fp4GgufType(Fp4Format format) {
  return gguf::kFp4lmTypeBase + static_cast<uint32_t>(format);
}

std::optional<Fp4Format> Fp4FormatFromGgufType(uint32_t type) {
  if (!gguf::IsFp4lmType(type)) return std::nullopt;
  return static_cast<Fp4Format>(type - gguf::kFp4lmTypeBase);
}

std::optional<Fp4Format> ParseFp4FormatName(const std::string& name) {
  for (Fp4Format f : {Fp4Format::kE2M1, Fp4Format::kE3M0, Fp4Format::kE1M2}) {
    if (name == Fp4FormatName(f)) return f;
  }
  return std::nullopt;
}

std::string Fp4ActKey(int layer, const char* input) {
  return absl::StrCat("fp4lm.blk.", layer, ".", input);
}

// ---- Writing ----

absl::Status AddFp4ModelKeys(const Fp4ModelWeights& fp4, const std::string& source,
                             GgufBuilder& b) {
  b.Add(keys::kFp4lmFormatVersion, GgufValue::Uint32(gguf::kFp4lmFormatVersionCurrent));
  b.Add(keys::kFp4lmQuantization, GgufValue::String(keys::kFp4lmW4A4));
  absl::flat_hash_set<std::string> seen;
  for (const auto& [key, value] : fp4.metadata) {
    if (key.empty() || !seen.insert(key).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": FP4 metadata key '", key, "' is ", key.empty() ? "empty" : "duplicated",
          " (each becomes a GGUF key ", keys::kFp4lmMetaPrefix, "<key>)"));
    }
    b.Add(absl::StrCat(keys::kFp4lmMetaPrefix, key), GgufValue::String(value));
  }
  return absl::OkStatus();
}

absl::Status AddFp4Sink(const ModelConfig& c, const Fp4Sink& sink, const std::string& source,
                        GgufBuilder& b) {
  if (sink.empty()) return absl::OkStatus();
  if (sink.token >= c.vocab_size || sink.keys == nullptr || sink.values == nullptr ||
      sink.logits == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": incomplete attention sink (token ",
                                                   sink.token, ")"));
  }
  const int64_t n = int64_t{c.n_layers} * c.kv_dim();
  const uint32_t f32 = static_cast<uint32_t>(GgmlType::kF32);
  b.Add(keys::kFp4lmSinkToken, GgufValue::Int32(sink.token));
  // Keys are rotated vectors: a Hugging Face model's halves order becomes the interleaved order
  // of every GGUF llama file, like the rows of wk (each float is one "row" of the permutation).
  std::vector<uint8_t> key_bytes(FloatBytes(sink.keys, n).begin(), FloatBytes(sink.keys, n).end());
  if (c.rope_style == RopeStyle::kHalves) {
    const int64_t layer_bytes = int64_t{c.kv_dim()} * 4;
    for (int32_t l = 0; l < c.n_layers; ++l) {
      const std::vector<uint8_t> permuted = PermuteRowsHalvesToInterleaved(
          std::span<const uint8_t>(key_bytes).subspan(l * layer_bytes, layer_bytes), 4,
          c.n_kv_heads);
      std::copy(permuted.begin(), permuted.end(), key_bytes.begin() + l * layer_bytes);
    }
  }
  ENGINE_RETURN_IF_ERROR(b.AddTensorCopy(keys::kFp4lmSinkKeys, {n}, f32, std::move(key_bytes)));
  ENGINE_RETURN_IF_ERROR(b.AddTensor(keys::kFp4lmSinkValues, {n}, f32, FloatBytes(sink.values, n)));
  return b.AddTensor(keys::kFp4lmSinkLogits, {c.vocab_size}, f32,
                     FloatBytes(sink.logits, c.vocab_size));
}

absl::Status AddFp4Layer(const ModelConfig& c, const Fp4LayerWeights& l, int layer,
                         const std::string& source, GgufBuilder& b) {
  for (const ActSlot& act : kActs) {
    const ActQuant& a = l.*act.member;
    const std::string key = Fp4ActKey(layer, act.name);
    b.Add(key + ".format", GgufValue::String(Fp4FormatName(a.format)));
    b.Add(key + ".scale", GgufValue::Float32(a.scale));
  }
  const bool permute = c.rope_style == RopeStyle::kHalves;
  for (const LinearSlot& slot : Linears(c)) {
    const Fp4Linear& w = l.*slot.member;
    const std::string what =
        absl::StrCat(source, ": FP4 tensor '", TensorName(layer, slot.name, "weight"), "'");
    if (w.empty() || w.row_scale == nullptr || w.in_features % 2 != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": missing codes or row scales, or odd in_features ", w.in_features));
    }
    ENGINE_RETURN_IF_ERROR(CheckRowScales(
        w.row_scale, w.out_features,
        absl::StrCat(source, ": FP4 tensor '", TensorName(layer, slot.name, "row_scale"), "'")));
    const std::span<const uint8_t> codes(w.codes, static_cast<size_t>(w.code_bytes()));
    const std::span<const uint8_t> scales = FloatBytes(w.row_scale, w.out_features);
    const std::span<const uint8_t> bias =
        w.bias != nullptr ? FloatBytes(w.bias, w.out_features) : std::span<const uint8_t>();
    const std::vector<int64_t> ne = {w.in_features, w.out_features};  // ggml: innermost first
    const uint32_t f32 = static_cast<uint32_t>(GgmlType::kF32);
    auto add = [&](const char* suffix, std::vector<int64_t> shape, uint32_t type,
                   std::span<const uint8_t> data, int64_t row_bytes) {
      const std::string name = TensorName(layer, slot.name, suffix);
      if (!permute || slot.rope_heads == 0) return b.AddTensor(name, std::move(shape), type, data);
      return b.AddTensorCopy(name, std::move(shape), type,
                             PermuteRowsHalvesToInterleaved(data, row_bytes, slot.rope_heads));
    };
    ENGINE_RETURN_IF_ERROR(add("weight", ne, Fp4GgufType(w.format), codes, w.in_features / 2));
    ENGINE_RETURN_IF_ERROR(add("row_scale", {w.out_features}, f32, scales, sizeof(float)));
    if (w.bias != nullptr) {
      ENGINE_RETURN_IF_ERROR(add("bias", {w.out_features}, f32, bias, sizeof(float)));
    }
  }
  return absl::OkStatus();
}

// ---- Reading ----

bool IsFp4lmQuantized(const GgufFile& file) {
  return file.Has(keys::kFp4lmQuantization) || file.Has(keys::kFp4lmFormatVersion);
}

absl::Status CheckFp4Header(const GgufFile& f) {
  ENGINE_ASSIGN_OR_RETURN(const int64_t version, f.GetInt(keys::kFp4lmFormatVersion));
  if (version > static_cast<int64_t>(gguf::kFp4lmFormatVersionCurrent)) {
    return absl::UnimplementedError(
        absl::StrCat(f.path, ": key '", keys::kFp4lmFormatVersion, "': fp4lm format version ",
                     version, " is newer than this reader supports (",
                     gguf::kFp4lmFormatVersionCurrent, "); use a newer fp4lm"));
  }
  if (version < 1) {
    return Invalid(f, absl::StrCat("key '", keys::kFp4lmFormatVersion,
                                   "': expected a version >= 1, found ", version));
  }
  ENGINE_ASSIGN_OR_RETURN(const std::string scheme, f.GetString(keys::kFp4lmQuantization));
  if (scheme != keys::kFp4lmW4A4) {
    return absl::UnimplementedError(
        absl::StrCat(f.path, ": key '", keys::kFp4lmQuantization, "': quantization \"", scheme,
                     "\" is not supported (expected \"", keys::kFp4lmW4A4, "\")"));
  }
  return absl::OkStatus();
}

absl::Status ReadFp4Weights(const GgufFile& f, const std::shared_ptr<const MappedFile>& mapping,
                            const ModelConfig& c, ModelWeights* w) {
  const std::span<const uint8_t> bytes = mapping->bytes();
  Fp4ModelWeights fp4;
  fp4.layers.resize(static_cast<size_t>(c.n_layers));
  const std::array<LinearSlot, 7> linears = Linears(c);
  for (int i = 0; i < c.n_layers; ++i) {
    Fp4LayerWeights& l = fp4.layers[static_cast<size_t>(i)];
    for (const ActSlot& act : kActs) {
      ENGINE_ASSIGN_OR_RETURN(l.*act.member, ReadAct(f, i, act.name));
    }
    for (const LinearSlot& slot : linears) {
      ENGINE_ASSIGN_OR_RETURN(l.*slot.member, ReadLinear(f, bytes, i, slot, w));
    }
  }
  ENGINE_RETURN_IF_ERROR(ReadMetadata(f, &fp4));
  if (f.Has(keys::kFp4lmSinkToken)) {
    ENGINE_ASSIGN_OR_RETURN(const int64_t token, f.GetInt(keys::kFp4lmSinkToken));
    if (token < 0 || token >= c.vocab_size) {
      return Invalid(f, absl::StrCat("key '", keys::kFp4lmSinkToken, "': token ", token,
                                     " outside the vocabulary of ", c.vocab_size));
    }
    const int64_t n = int64_t{c.n_layers} * c.kv_dim();
    fp4.sink.token = static_cast<int32_t>(token);
    ENGINE_ASSIGN_OR_RETURN(fp4.sink.keys, ReadF32Vector(f, bytes, keys::kFp4lmSinkKeys, n,
                                                         /*optional=*/false, w));
    ENGINE_ASSIGN_OR_RETURN(fp4.sink.values, ReadF32Vector(f, bytes, keys::kFp4lmSinkValues, n,
                                                           /*optional=*/false, w));
    ENGINE_ASSIGN_OR_RETURN(fp4.sink.logits, ReadF32Vector(f, bytes, keys::kFp4lmSinkLogits,
                                                           c.vocab_size, /*optional=*/false, w));
  }
  w->fp4 = std::move(fp4);
  w->KeepAlive(mapping);
  return absl::OkStatus();
}

}  // namespace engine::model
