// llama-architecture GGUF -> LoadedModel. The container is parsed and validated first
// (model/gguf_file.h); here the llama.* keys become a ModelConfig, each tensor's shape is checked
// against it before its data is touched, F32 tensors are used in place from the mapping and the
// rest are dequantized. GGUF llama files store Q/K rows permuted for interleaved RoPE. fp4lm
// W4A4 files (model/gguf_fp4.h) keep only the norms and embeddings FP32 and the linears FP4.
#include "model/gguf_reader.h"

#include <limits>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/core/status_macros.h"
#include "model/gguf_dequant.h"
#include "model/gguf_file.h"
#include "model/gguf_fp4.h"
#include "model/mapped_file.h"
#include "model/memory_limit.h"

namespace engine::model {
namespace {

using gguf::GgufFile;
using gguf::GgufTensorInfo;
namespace keys = gguf::keys;

constexpr const char* kLlama = "llama";

// An integer key that must fit an int32, or `fallback` when absent (nullopt: required).
absl::StatusOr<int32_t> GetInt32(const GgufFile& f, const std::string& key,
                                 std::optional<int32_t> fallback = std::nullopt) {
  if (fallback.has_value() && !f.Has(key)) return *fallback;
  ENGINE_ASSIGN_OR_RETURN(const int64_t v, f.GetInt(key));
  if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.path, ": key '", key, "': value ", v, " does not fit in int32"));
  }
  return static_cast<int32_t>(v);
}

absl::StatusOr<float> GetFloat32(const GgufFile& f, const std::string& key,
                                 std::optional<float> fallback = std::nullopt) {
  if (fallback.has_value() && !f.Has(key)) return *fallback;
  ENGINE_ASSIGN_OR_RETURN(const double v, f.GetFloat(key));
  return static_cast<float>(v);
}

// A token id key: -1 when absent, else in [0, n_tokens).
absl::StatusOr<int32_t> GetTokenId(const GgufFile& f, const std::string& key, size_t n_tokens) {
  if (!f.Has(key)) return -1;
  ENGINE_ASSIGN_OR_RETURN(const int64_t id, f.GetInt(key));
  if (id < 0 || static_cast<uint64_t>(id) >= n_tokens) {
    return absl::InvalidArgumentError(absl::StrCat(
        f.path, ": key '", key, "': expected a token id in [0, ", n_tokens, "), found ", id));
  }
  return static_cast<int32_t>(id);
}

absl::Status CheckCount(const GgufFile& f, const std::string& key, size_t found, size_t want) {
  if (found == want) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(f.path, ": key '", key, "': expected ", want,
                                                 " entries (one per token), found ", found));
}

absl::StatusOr<GgufVocab> ReadVocab(const GgufFile& f) {
  GgufVocab v;
  ENGINE_ASSIGN_OR_RETURN(v.model, f.GetString(keys::kTokModel));
  if (f.Has(keys::kTokPre)) {
    ENGINE_ASSIGN_OR_RETURN(v.pre, f.GetString(keys::kTokPre));
  }
  ENGINE_ASSIGN_OR_RETURN(v.tokens, f.GetStringArray(keys::kTokTokens));
  const size_t n = v.tokens.size();
  if (n == 0 || n > static_cast<size_t>(kMaxVocab)) {
    return absl::InvalidArgumentError(absl::StrCat(
        f.path, ": key '", keys::kTokTokens, "': expected 1..", kMaxVocab, " tokens, found ", n));
  }
  if (f.Has(keys::kTokScores)) {
    ENGINE_ASSIGN_OR_RETURN(const std::vector<double> scores, f.GetFloatArray(keys::kTokScores));
    ENGINE_RETURN_IF_ERROR(CheckCount(f, keys::kTokScores, scores.size(), n));
    v.scores.assign(scores.begin(), scores.end());
  }
  if (f.Has(keys::kTokTypes)) {
    ENGINE_ASSIGN_OR_RETURN(const std::vector<int64_t> types, f.GetIntArray(keys::kTokTypes));
    ENGINE_RETURN_IF_ERROR(CheckCount(f, keys::kTokTypes, types.size(), n));
    v.token_types.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      if (types[i] < 0 || types[i] > 255) {
        return absl::InvalidArgumentError(absl::StrCat(f.path, ": key '", keys::kTokTypes,
                                                       "': token ", i, " has type ", types[i],
                                                       " (expected 0..255)"));
      }
      v.token_types.push_back(static_cast<int32_t>(types[i]));
    }
  }
  if (f.Has(keys::kTokMerges)) {
    ENGINE_ASSIGN_OR_RETURN(v.merges, f.GetStringArray(keys::kTokMerges));
  }
  ENGINE_ASSIGN_OR_RETURN(v.bos_id, GetTokenId(f, keys::kTokBos, n));
  ENGINE_ASSIGN_OR_RETURN(v.eos_id, GetTokenId(f, keys::kTokEos, n));
  ENGINE_ASSIGN_OR_RETURN(v.unk_id, GetTokenId(f, keys::kTokUnk, n));
  ENGINE_ASSIGN_OR_RETURN(v.pad_id, GetTokenId(f, keys::kTokPad, n));
  if (f.Has(keys::kTokAddBos)) {
    ENGINE_ASSIGN_OR_RETURN(v.add_bos, f.GetBool(keys::kTokAddBos));
  }
  if (f.Has(keys::kTokAddSpacePrefix)) {
    ENGINE_ASSIGN_OR_RETURN(v.add_space_prefix, f.GetBool(keys::kTokAddSpacePrefix));
  }
  return v;
}

// fp4lm.tokenizer.*: a whole tokenizer file our writer embedded.
absl::StatusOr<TokenizerSource> ReadEmbeddedTokenizer(const GgufFile& f) {
  using Kind = TokenizerSource::Kind;
  TokenizerSource source;
  ENGINE_ASSIGN_OR_RETURN(const std::string kind, f.GetString(keys::kFp4lmTokKind));
  if (kind == "sentencepiece") {
    source.kind = Kind::kSentencePieceFile;
  } else if (kind == "llama2c") {
    source.kind = Kind::kLlama2cFile;
  } else if (kind == "hf-tokenizer-json") {
    source.kind = Kind::kHfTokenizerJson;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        f.path, ": key '", keys::kFp4lmTokKind,
        "': expected \"sentencepiece\", \"llama2c\" or \"hf-tokenizer-json\", found \"", kind,
        "\""));
  }
  ENGINE_ASSIGN_OR_RETURN(source.embedded, f.GetBytes(keys::kFp4lmTokFile));
  if (source.embedded.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.path, ": key '", keys::kFp4lmTokFile, "': the embedded tokenizer is empty"));
  }
  ENGINE_ASSIGN_OR_RETURN(source.bos_id, GetInt32(f, keys::kFp4lmTokBos, -1));
  ENGINE_ASSIGN_OR_RETURN(source.eos_id, GetInt32(f, keys::kFp4lmTokEos, -1));
  return source;
}

absl::StatusOr<TokenizerSource> ReadTokenizer(const GgufFile& f) {
  if (f.Has(keys::kFp4lmTokKind)) return ReadEmbeddedTokenizer(f);
  TokenizerSource source;
  if (!f.Has(keys::kTokModel)) return source;  // kNone: the caller must supply one
  source.kind = TokenizerSource::Kind::kGguf;
  ENGINE_ASSIGN_OR_RETURN(source.gguf, ReadVocab(f));
  source.bos_id = source.gguf.bos_id;
  source.eos_id = source.gguf.eos_id;
  return source;
}

absl::StatusOr<ModelConfig> ReadConfig(const GgufFile& f, const TokenizerSource& tokenizer) {
  ENGINE_ASSIGN_OR_RETURN(const std::string arch, f.GetString(keys::kArchitecture));
  if (arch != kLlama) {
    return absl::UnimplementedError(
        absl::StrCat(f.path, ": architecture '", arch, "' is not supported (expected 'llama')"));
  }
  auto key = [&arch](const char* suffix) { return absl::StrCat(arch, ".", suffix); };
  ModelConfig c;
  c.architecture = kLlama;
  c.rope_style = RopeStyle::kInterleaved;  // llama.cpp's converter permuted Q/K for it
  ENGINE_ASSIGN_OR_RETURN(c.model_dim, GetInt32(f, key(keys::kEmbeddingLength)));
  ENGINE_ASSIGN_OR_RETURN(c.ffn_dim, GetInt32(f, key(keys::kFeedForwardLength)));
  ENGINE_ASSIGN_OR_RETURN(c.n_layers, GetInt32(f, key(keys::kBlockCount)));
  ENGINE_ASSIGN_OR_RETURN(c.n_heads, GetInt32(f, key(keys::kHeadCount)));
  ENGINE_ASSIGN_OR_RETURN(c.n_kv_heads, GetInt32(f, key(keys::kHeadCountKv), c.n_heads));
  ENGINE_ASSIGN_OR_RETURN(c.rope_theta, GetFloat32(f, key(keys::kRopeFreqBase), 10000.0f));
  ENGINE_ASSIGN_OR_RETURN(c.norm_eps, GetFloat32(f, key(keys::kRmsEps)));
  ENGINE_ASSIGN_OR_RETURN(c.max_seq_len, GetInt32(f, key(keys::kContextLength)));
  if (c.n_heads <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(f.path, ": key '", key(keys::kHeadCount),
                                                   "' must be positive, found ", c.n_heads));
  }
  const int32_t default_head_dim = c.model_dim / c.n_heads;
  ENGINE_ASSIGN_OR_RETURN(const int32_t rope_dims,
                          GetInt32(f, key(keys::kRopeDimensionCount), default_head_dim));
  ENGINE_ASSIGN_OR_RETURN(c.head_dim, GetInt32(f, key(keys::kKeyLength), rope_dims));
  ENGINE_ASSIGN_OR_RETURN(const int32_t value_length,
                          GetInt32(f, key(keys::kValueLength), c.head_dim));
  if (rope_dims != c.head_dim || value_length != c.head_dim) {
    return absl::UnimplementedError(absl::StrCat(
        f.path, ": head_dim ", c.head_dim, " with ", rope_dims, " rotary dims and value length ",
        value_length, " is not supported (expected all equal)"));
  }

  const bool has_vocab_key = f.Has(key(keys::kVocabSize));
  int32_t vocab_key = 0;
  if (has_vocab_key) {
    ENGINE_ASSIGN_OR_RETURN(vocab_key, GetInt32(f, key(keys::kVocabSize)));
  }
  if (tokenizer.kind == TokenizerSource::Kind::kGguf) {
    c.vocab_size = static_cast<int32_t>(tokenizer.gguf.tokens.size());
    if (has_vocab_key && vocab_key != c.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat(f.path, ": key '", key(keys::kVocabSize), "' says ", vocab_key, " but '",
                       keys::kTokTokens, "' holds ", c.vocab_size, " tokens"));
    }
  } else if (has_vocab_key) {
    c.vocab_size = vocab_key;
  } else {
    return absl::NotFoundError(absl::StrCat(f.path, ": no vocabulary size: neither '",
                                            keys::kTokTokens, "' nor '", key(keys::kVocabSize),
                                            "' is present"));
  }
  ENGINE_RETURN_IF_ERROR(c.Validate(f.path));
  return c;
}

// Loads tensors by llama.cpp name, checking each shape before touching its data.
class TensorLoader {
 public:
  TensorLoader(const GgufFile& file, std::shared_ptr<const MappedFile> mapping,
               ModelWeights* weights)
      : file_(file), mapping_(std::move(mapping)), weights_(weights) {}

  absl::StatusOr<F32Tensor> Load(const std::string& name, std::vector<int64_t> shape,
                                 bool optional = false) {
    const GgufTensorInfo* t = file_.FindTensor(name);
    if (t == nullptr) {
      if (optional) return F32Tensor{};
      return absl::NotFoundError(absl::StrCat(file_.path, ": missing tensor '", name,
                                              "' (expected shape [", absl::StrJoin(shape, ", "),
                                              "])"));
    }
    if (t->shape() != shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          file_.path, ": tensor '", name, "': expected shape [", absl::StrJoin(shape, ", "),
          "] (outermost-first), found [", absl::StrJoin(t->shape(), ", "), "]"));
    }
    const std::span<const uint8_t> bytes = gguf::TensorBytes(file_, *t, mapping_->bytes());
    if (t->type == static_cast<uint32_t>(gguf::GgmlType::kF32) &&
        reinterpret_cast<uintptr_t>(bytes.data()) % alignof(float) == 0) {
      used_mapping_ = true;
      return F32Tensor{.data = reinterpret_cast<const float*>(bytes.data()),
                       .shape = std::move(shape)};
    }
    std::vector<float> values(static_cast<size_t>(t->n_elements));
    if (absl::Status s = gguf::Dequantize(t->type, bytes, values); !s.ok()) {
      return absl::Status(s.code(),
                          absl::StrCat(file_.path, ": tensor '", name, "': ", s.message()));
    }
    return weights_->Own(std::move(values), std::move(shape));
  }

  bool used_mapping() const { return used_mapping_; }

 private:
  const GgufFile& file_;
  std::shared_ptr<const MappedFile> mapping_;
  ModelWeights* weights_;
  bool used_mapping_ = false;
};

absl::Status LoadWeights(const GgufFile& f, const std::shared_ptr<const MappedFile>& mapping,
                         bool w4a4, ModelConfig& c, ModelWeights* w) {
  TensorLoader loader(f, mapping, w);
  const int64_t d = c.model_dim, ff = c.ffn_dim, q = c.q_dim(), kv = c.kv_dim(), v = c.vocab_size;
  ENGINE_ASSIGN_OR_RETURN(w->token_embedding, loader.Load("token_embd.weight", {v, d}));
  ENGINE_ASSIGN_OR_RETURN(w->final_norm, loader.Load("output_norm.weight", {d}));
  ENGINE_ASSIGN_OR_RETURN(w->output, loader.Load("output.weight", {v, d}, /*optional=*/true));
  c.tied_embeddings = w->output.empty();
  if (c.tied_embeddings) w->output = w->token_embedding;
  c.qkv_bias = f.FindTensor("blk.0.attn_q.bias") != nullptr;
  w->layers.resize(static_cast<size_t>(c.n_layers));
  for (int32_t i = 0; i < c.n_layers; ++i) {
    LayerWeights& l = w->layers[static_cast<size_t>(i)];
    auto name = [i](const char* suffix) { return absl::StrCat("blk.", i, ".", suffix); };
    ENGINE_ASSIGN_OR_RETURN(l.attn_norm, loader.Load(name("attn_norm.weight"), {d}));
    if (w4a4) {  // the linears are FP4: ReadFp4Weights
      ENGINE_ASSIGN_OR_RETURN(l.ffn_norm, loader.Load(name("ffn_norm.weight"), {d}));
      continue;
    }
    ENGINE_ASSIGN_OR_RETURN(l.wq, loader.Load(name("attn_q.weight"), {q, d}));
    ENGINE_ASSIGN_OR_RETURN(l.wk, loader.Load(name("attn_k.weight"), {kv, d}));
    ENGINE_ASSIGN_OR_RETURN(l.wv, loader.Load(name("attn_v.weight"), {kv, d}));
    if (c.qkv_bias) {
      ENGINE_ASSIGN_OR_RETURN(l.bq, loader.Load(name("attn_q.bias"), {q}));
      ENGINE_ASSIGN_OR_RETURN(l.bk, loader.Load(name("attn_k.bias"), {kv}));
      ENGINE_ASSIGN_OR_RETURN(l.bv, loader.Load(name("attn_v.bias"), {kv}));
    }
    ENGINE_ASSIGN_OR_RETURN(l.wo, loader.Load(name("attn_output.weight"), {d, q}));
    ENGINE_ASSIGN_OR_RETURN(l.ffn_norm, loader.Load(name("ffn_norm.weight"), {d}));
    ENGINE_ASSIGN_OR_RETURN(l.w_gate, loader.Load(name("ffn_gate.weight"), {ff, d}));
    ENGINE_ASSIGN_OR_RETURN(l.w_up, loader.Load(name("ffn_up.weight"), {ff, d}));
    ENGINE_ASSIGN_OR_RETURN(l.w_down, loader.Load(name("ffn_down.weight"), {d, ff}));
  }
  if (loader.used_mapping()) w->KeepAlive(mapping);
  if (w4a4) ENGINE_RETURN_IF_ERROR(ReadFp4Weights(f, mapping, c, w));
  return absl::OkStatus();
}

// Bytes of FP32 the loader allocates for tensors it cannot use in place (everything but F32 and
// fp4lm's FP4 codes), saturating instead of overflowing for absurd element counts.
uint64_t ConvertedBytes(const GgufFile& f) {
  uint64_t total = 0;
  for (const GgufTensorInfo& t : f.tensors) {
    if (t.type == static_cast<uint32_t>(gguf::GgmlType::kF32) || gguf::IsFp4lmType(t.type)) {
      continue;
    }
    const uint64_t n = static_cast<uint64_t>(t.n_elements);
    const uint64_t bytes = n > UINT64_MAX / sizeof(float) ? UINT64_MAX : n * sizeof(float);
    total = bytes > UINT64_MAX - total ? UINT64_MAX : total + bytes;
  }
  return total;
}

absl::StatusOr<std::shared_ptr<const MappedFile>> OpenMapped(const std::string& path) {
  ENGINE_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> mapped, MappedFile::Open(path));
  return std::shared_ptr<const MappedFile>(std::move(mapped));
}

}  // namespace

absl::StatusOr<LoadedModel> ReadGgufModel(const std::string& path) {
  ENGINE_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> mapping, OpenMapped(path));
  ENGINE_ASSIGN_OR_RETURN(const GgufFile file, gguf::ParseGguf(mapping->bytes(), path));

  const bool w4a4 = IsFp4lmQuantized(file);
  if (w4a4) ENGINE_RETURN_IF_ERROR(CheckFp4Header(file));

  LoadedModel model;
  model.format = ModelFormat::kGguf;
  model.path = path;
  ENGINE_ASSIGN_OR_RETURN(model.tokenizer, ReadTokenizer(file));
  ENGINE_ASSIGN_OR_RETURN(model.config, ReadConfig(file, model.tokenizer));
  if (file.Has(keys::kChatTemplate)) {
    ENGINE_ASSIGN_OR_RETURN(model.chat_template, file.GetString(keys::kChatTemplate));
  }
  model.tensors.reserve(file.tensors.size());
  for (const GgufTensorInfo& t : file.tensors) {
    model.tensors.push_back({.name = t.name, .dtype = t.type_name(), .shape = t.shape()});
  }
  ENGINE_RETURN_IF_ERROR(
      CheckMemory(ConvertedBytes(file), "dequantizing the weights to FP32", path));
  ENGINE_RETURN_IF_ERROR(LoadWeights(file, mapping, w4a4, model.config, &model.weights));
  ENGINE_RETURN_IF_ERROR(model.config.Validate(path));
  ENGINE_RETURN_IF_ERROR(model.weights.Validate(model.config, path));
  return model;
}

absl::StatusOr<GgufVocab> ReadGgufVocab(const std::string& path) {
  ENGINE_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> mapping, OpenMapped(path));
  ENGINE_ASSIGN_OR_RETURN(const GgufFile file, gguf::ParseGguf(mapping->bytes(), path));
  return ReadVocab(file);
}

}  // namespace engine::model
