// LoadedModel -> GGUF v3 llama file with F32 tensors (plus, for W4A4 models, fp4lm's FP4
// linears: model/gguf_fp4.h). Names, ne order and the Q/K row permutation follow llama.cpp's
// convert_hf_to_gguf.py so llama.cpp and our reader both load the FP32 files.
#include "model/gguf_writer.h"

#include <algorithm>
#include <cstring>
#include <span>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/core/status_macros.h"
#include "model/gguf_file.h"
#include "model/gguf_fp4.h"
#include "model/mapped_file.h"

namespace engine::model {
namespace {

using gguf::GgmlType;
using gguf::GgufBuilder;
using gguf::GgufValue;
namespace keys = gguf::keys;

constexpr uint32_t kAlignment = 32;
constexpr uint32_t kFileTypeAllF32 = 0;  // llama_ftype LLAMA_FTYPE_ALL_F32

std::span<const uint8_t> AsBytes(const float* data, int64_t n) {
  return {reinterpret_cast<const uint8_t*>(data), static_cast<size_t>(n) * sizeof(float)};
}

// ggml's ne is innermost-first: our [out, in] is ne = [in, out].
std::vector<int64_t> Ne(const std::vector<int64_t>& shape) {
  return {shape.rbegin(), shape.rend()};
}

// "/a/b/model.safetensors" -> "model".
std::string NameFromPath(const std::string& path) {
  std::string name = path.substr(path.find_last_of('/') + 1);
  if (const size_t dot = name.find_last_of('.'); dot != std::string::npos && dot > 0) {
    name.resize(dot);
  }
  return name.empty() ? "fp4lm" : name;
}

void AddVocab(const GgufVocab& v, GgufBuilder& b) {
  b.Add(keys::kTokModel, GgufValue::String(v.model));
  if (!v.pre.empty()) b.Add(keys::kTokPre, GgufValue::String(v.pre));
  b.Add(keys::kTokTokens, GgufValue::StringArray(v.tokens));
  if (!v.scores.empty()) b.Add(keys::kTokScores, GgufValue::Float32Array(v.scores));
  if (!v.token_types.empty()) b.Add(keys::kTokTypes, GgufValue::Int32Array(v.token_types));
  if (!v.merges.empty()) b.Add(keys::kTokMerges, GgufValue::StringArray(v.merges));
  auto add_id = [&b](const char* key, int32_t id) {
    if (id >= 0) b.Add(key, GgufValue::Uint32(static_cast<uint32_t>(id)));
  };
  add_id(keys::kTokBos, v.bos_id);
  add_id(keys::kTokEos, v.eos_id);
  add_id(keys::kTokUnk, v.unk_id);
  add_id(keys::kTokPad, v.pad_id);
  b.Add(keys::kTokAddBos, GgufValue::Bool(v.add_bos));
  b.Add(keys::kTokAddSpacePrefix, GgufValue::Bool(v.add_space_prefix));
}

absl::Status AddTokenizer(const TokenizerSource& t, int32_t vocab_size, const std::string& path,
                          GgufBuilder& b) {
  using Kind = TokenizerSource::Kind;
  const char* kind = nullptr;
  switch (t.kind) {
    case Kind::kNone:
      return absl::OkStatus();
    case Kind::kGguf:
      // The reader takes the vocabulary size from the token list, so they must agree.
      if (t.gguf.tokens.size() != static_cast<size_t>(vocab_size)) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": cannot write the GGUF vocabulary: ", t.gguf.tokens.size(),
                         " tokens, but the model's vocab_size is ", vocab_size));
      }
      AddVocab(t.gguf, b);
      return absl::OkStatus();
    case Kind::kSentencePieceFile:
      kind = "sentencepiece";
      break;
    case Kind::kLlama2cFile:
      kind = "llama2c";
      break;
    case Kind::kHfTokenizerJson:
      kind = "hf-tokenizer-json";
      break;
  }
  std::string contents = t.embedded;
  if (contents.empty()) {
    ENGINE_ASSIGN_OR_RETURN(contents, ReadFileToString(t.path));
  }
  if (contents.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(t.path, ": the tokenizer file is empty"));
  }
  b.Add(keys::kFp4lmTokKind, GgufValue::String(kind));
  b.Add(keys::kFp4lmTokFile,
        GgufValue::Uint8Array(std::span<const uint8_t>(
            reinterpret_cast<const uint8_t*>(contents.data()), contents.size())));
  if (t.bos_id >= 0) b.Add(keys::kFp4lmTokBos, GgufValue::Int32(t.bos_id));
  if (t.eos_id >= 0) b.Add(keys::kFp4lmTokEos, GgufValue::Int32(t.eos_id));
  return absl::OkStatus();
}

void AddHyperparameters(const LoadedModel& model, const std::string& path, GgufBuilder& b) {
  const bool w4a4 = !model.weights.fp4.empty();
  const ModelConfig& c = model.config;
  auto llama = [](const char* suffix) { return absl::StrCat("llama.", suffix); };
  auto u32 = [](int32_t v) { return GgufValue::Uint32(static_cast<uint32_t>(v)); };
  b.Add(keys::kArchitecture, GgufValue::String("llama"));
  b.Add(keys::kName, GgufValue::String(NameFromPath(model.path.empty() ? path : model.path)));
  b.Add(gguf::kAlignmentKey, GgufValue::Uint32(kAlignment));
  // No llama_ftype describes a W4A4 file, and llama.cpp treats the key as optional.
  if (!w4a4) b.Add(keys::kFileType, GgufValue::Uint32(kFileTypeAllF32));
  b.Add(llama(keys::kContextLength), u32(c.max_seq_len));
  b.Add(llama(keys::kEmbeddingLength), u32(c.model_dim));
  b.Add(llama(keys::kFeedForwardLength), u32(c.ffn_dim));
  b.Add(llama(keys::kBlockCount), u32(c.n_layers));
  b.Add(llama(keys::kHeadCount), u32(c.n_heads));
  b.Add(llama(keys::kHeadCountKv), u32(c.n_kv_heads));
  b.Add(llama(keys::kRopeFreqBase), GgufValue::Float32(c.rope_theta));
  b.Add(llama(keys::kRmsEps), GgufValue::Float32(c.norm_eps));
  b.Add(llama(keys::kRopeDimensionCount), u32(c.head_dim));
  if (c.head_dim * c.n_heads != c.model_dim) {
    b.Add(llama(keys::kKeyLength), u32(c.head_dim));
    b.Add(llama(keys::kValueLength), u32(c.head_dim));
  }
  b.Add(llama(keys::kVocabSize), u32(c.vocab_size));
}

}  // namespace

std::vector<uint8_t> PermuteRowsHalvesToInterleaved(std::span<const uint8_t> rows,
                                                    int64_t row_bytes, int32_t n_heads) {
  const int64_t n_rows = static_cast<int64_t>(rows.size()) / row_bytes;
  const int64_t head_dim = n_rows / n_heads;
  const int64_t half = head_dim / 2;
  std::vector<uint8_t> out(rows.size());
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int64_t i = 0; i < half; ++i) {
      for (int64_t j = 0; j < 2; ++j) {
        const int64_t dst = h * head_dim + 2 * i + j;
        const int64_t src = h * head_dim + j * half + i;
        std::copy_n(rows.data() + src * row_bytes, row_bytes, out.data() + dst * row_bytes);
      }
    }
  }
  return out;
}

std::vector<float> PermuteHalvesToInterleaved(const F32Tensor& w, int32_t n_heads) {
  const int64_t rows = w.dim(0);
  const int64_t cols = w.shape.size() > 1 ? w.num_elements() / rows : 1;
  const std::vector<uint8_t> bytes = PermuteRowsHalvesToInterleaved(
      AsBytes(w.data, w.num_elements()), cols * static_cast<int64_t>(sizeof(float)), n_heads);
  std::vector<float> out(static_cast<size_t>(rows * cols));
  if (!bytes.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

absl::Status WriteGgufModel(const LoadedModel& model, const std::string& path) {
  const ModelConfig& c = model.config;
  const std::string& source = model.path.empty() ? path : model.path;
  ENGINE_RETURN_IF_ERROR(c.Validate(source));
  ENGINE_RETURN_IF_ERROR(model.weights.Validate(c, source));

  GgufBuilder b(kAlignment);
  AddHyperparameters(model, path, b);
  ENGINE_RETURN_IF_ERROR(AddTokenizer(model.tokenizer, c.vocab_size, path, b));
  if (!model.chat_template.empty()) {
    b.Add(keys::kChatTemplate, GgufValue::String(model.chat_template));
  }

  auto add = [&b](const std::string& name, const F32Tensor& t) {
    return b.AddTensor(name, Ne(t.shape), GgmlType::kF32, AsBytes(t.data, t.num_elements()));
  };
  // Q/K of a halves-RoPE model are stored permuted, like llama.cpp's LlamaModel.permute.
  const bool permute = c.rope_style == RopeStyle::kHalves;
  auto add_qk = [&](const std::string& name, const F32Tensor& t, int32_t heads) {
    if (!permute) return add(name, t);
    std::vector<float> p = PermuteHalvesToInterleaved(t, heads);
    std::vector<uint8_t> bytes(p.size() * sizeof(float));
    std::memcpy(bytes.data(), p.data(), bytes.size());
    return b.AddTensorCopy(name, Ne(t.shape), GgmlType::kF32, std::move(bytes));
  };

  const ModelWeights& w = model.weights;
  const bool w4a4 = !w.fp4.empty();
  if (w4a4) {
    ENGINE_RETURN_IF_ERROR(AddFp4ModelKeys(w.fp4, source, b));
    ENGINE_RETURN_IF_ERROR(AddFp4Sink(c, w.fp4.sink, source, b));
  }
  ENGINE_RETURN_IF_ERROR(add("token_embd.weight", w.token_embedding));
  ENGINE_RETURN_IF_ERROR(add("output_norm.weight", w.final_norm));
  if (!c.tied_embeddings) ENGINE_RETURN_IF_ERROR(add("output.weight", w.output));
  for (size_t i = 0; i < w.layers.size(); ++i) {
    const LayerWeights& l = w.layers[i];
    auto name = [i](const char* suffix) { return absl::StrCat("blk.", i, ".", suffix); };
    ENGINE_RETURN_IF_ERROR(add(name("attn_norm.weight"), l.attn_norm));
    if (w4a4) {  // the linears are FP4 (Q/K permuted there too); only the norms are FP32
      ENGINE_RETURN_IF_ERROR(add(name("ffn_norm.weight"), l.ffn_norm));
      ENGINE_RETURN_IF_ERROR(AddFp4Layer(c, w.fp4.layers[i], static_cast<int>(i), source, b));
      continue;
    }
    ENGINE_RETURN_IF_ERROR(add_qk(name("attn_q.weight"), l.wq, c.n_heads));
    ENGINE_RETURN_IF_ERROR(add_qk(name("attn_k.weight"), l.wk, c.n_kv_heads));
    ENGINE_RETURN_IF_ERROR(add(name("attn_v.weight"), l.wv));
    if (c.qkv_bias) {
      ENGINE_RETURN_IF_ERROR(add_qk(name("attn_q.bias"), l.bq, c.n_heads));
      ENGINE_RETURN_IF_ERROR(add_qk(name("attn_k.bias"), l.bk, c.n_kv_heads));
      ENGINE_RETURN_IF_ERROR(add(name("attn_v.bias"), l.bv));
    }
    ENGINE_RETURN_IF_ERROR(add(name("attn_output.weight"), l.wo));
    ENGINE_RETURN_IF_ERROR(add(name("ffn_norm.weight"), l.ffn_norm));
    ENGINE_RETURN_IF_ERROR(add(name("ffn_gate.weight"), l.w_gate));
    ENGINE_RETURN_IF_ERROR(add(name("ffn_up.weight"), l.w_up));
    ENGINE_RETURN_IF_ERROR(add(name("ffn_down.weight"), l.w_down));
  }
  return b.WriteFile(path);
}

}  // namespace engine::model
