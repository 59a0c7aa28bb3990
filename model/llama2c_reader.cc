#include "model/llama2c_reader.h"

#include <sys/stat.h>

#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "kernels/core/status_macros.h"

namespace engine::model {
namespace {

struct Llama2cHeader {
  int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
};

Llama2cHeader ParseHeader(std::span<const uint8_t> bytes) {
  Llama2cHeader h;
  std::memcpy(&h, bytes.data(), sizeof(h));
  return h;
}

// Floats in the file implied by the header, or -1 if the header is implausible.
int64_t ExpectedFloats(const Llama2cHeader& h) {
  if (h.dim <= 0 || h.hidden_dim <= 0 || h.n_layers <= 0 || h.n_heads <= 0 ||
      h.n_kv_heads <= 0 || h.vocab_size == 0 || h.seq_len <= 0 || h.dim > kMaxModelDim ||
      h.hidden_dim > 8 * kMaxModelDim || h.n_layers > kMaxLayers || h.n_heads > kMaxHeads ||
      h.n_kv_heads > h.n_heads || h.seq_len > kMaxSeqLen || h.dim % h.n_heads != 0 ||
      h.vocab_size < -kMaxVocab || h.vocab_size > kMaxVocab) {
    return -1;
  }
  const int64_t dim = h.dim, hidden = h.hidden_dim, layers = h.n_layers;
  const int64_t vocab = h.vocab_size < 0 ? -int64_t{h.vocab_size} : h.vocab_size;
  const int64_t head_dim = dim / h.n_heads, kv_dim = head_dim * h.n_kv_heads;
  int64_t floats = vocab * dim;                                 // token embedding
  floats += layers * (2 * dim + dim * dim + 2 * dim * kv_dim + dim * dim + 3 * dim * hidden);
  floats += dim;                                                // final norm
  floats += int64_t{h.seq_len} * head_dim;                      // freq_cis real + imag (unused)
  if (h.vocab_size < 0) floats += vocab * dim;                  // unshared classifier
  return floats;
}

}  // namespace

bool LooksLikeLlama2c(std::span<const uint8_t> bytes) {
  if (bytes.size() < kLlama2cHeaderBytes) return false;
  const int64_t floats = ExpectedFloats(ParseHeader(bytes));
  return floats > 0 &&
         static_cast<int64_t>(bytes.size()) ==
             static_cast<int64_t>(kLlama2cHeaderBytes) + floats * int64_t{sizeof(float)};
}

absl::StatusOr<LoadedModel> ReadLlama2cModel(const std::string& path) {
  ENGINE_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> mapped, MappedFile::Open(path));
  std::shared_ptr<const MappedFile> file = std::move(mapped);
  if (file->size() < kLlama2cHeaderBytes) {
    return absl::DataLossError(absl::StrCat(path, ": llama2.c checkpoint truncated: expected a ",
                                            kLlama2cHeaderBytes, "-byte header, file has ",
                                            file->size(), " bytes"));
  }
  const Llama2cHeader h = ParseHeader(file->bytes());
  const int64_t floats = ExpectedFloats(h);
  if (floats < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": implausible llama2.c header (dim=", h.dim, " hidden_dim=", h.hidden_dim,
        " n_layers=", h.n_layers, " n_heads=", h.n_heads, " n_kv_heads=", h.n_kv_heads,
        " vocab_size=", h.vocab_size, " seq_len=", h.seq_len, ")"));
  }
  const int64_t want_bytes = static_cast<int64_t>(kLlama2cHeaderBytes) + floats * 4;
  if (static_cast<int64_t>(file->size()) != want_bytes) {
    return absl::DataLossError(absl::StrCat(path, ": llama2.c checkpoint: the header implies ",
                                            want_bytes, " bytes, the file has ", file->size(),
                                            file->size() < static_cast<size_t>(want_bytes)
                                                ? " (truncated)"
                                                : " (trailing data)"));
  }

  LoadedModel model;
  model.format = ModelFormat::kLlama2c;
  model.path = path;
  ModelConfig& c = model.config;
  c.architecture = "llama";
  c.model_dim = h.dim;
  c.ffn_dim = h.hidden_dim;
  c.n_layers = h.n_layers;
  c.n_heads = h.n_heads;
  c.n_kv_heads = h.n_kv_heads;
  c.head_dim = h.dim / h.n_heads;
  c.vocab_size = h.vocab_size < 0 ? -h.vocab_size : h.vocab_size;
  c.max_seq_len = h.seq_len;
  c.norm_eps = 1e-5f;  // run.c's rmsnorm constant
  c.rope_theta = 10000.0f;
  c.rope_style = RopeStyle::kInterleaved;
  c.tied_embeddings = h.vocab_size > 0;
  ENGINE_RETURN_IF_ERROR(c.Validate(path));

  // Walk the file in run.c's memory_map_weights order.
  const float* cursor = reinterpret_cast<const float*>(file->data() + kLlama2cHeaderBytes);
  const int64_t d = c.model_dim, f = c.ffn_dim, q = c.q_dim(), kv = c.kv_dim(), v = c.vocab_size;
  const int64_t layers = c.n_layers;
  auto take = [&cursor](int64_t count) {
    const float* p = cursor;
    cursor += count;
    return p;
  };
  auto layer_slices = [&](const float* base, int64_t per_layer, std::vector<int64_t> shape,
                          F32Tensor LayerWeights::*member) {
    for (int64_t l = 0; l < layers; ++l) {
      model.weights.layers[l].*member = F32Tensor{.data = base + l * per_layer, .shape = shape};
    }
  };
  ModelWeights& w = model.weights;
  w.layers.resize(static_cast<size_t>(layers));
  w.token_embedding = F32Tensor{.data = take(v * d), .shape = {v, d}};
  layer_slices(take(layers * d), d, {d}, &LayerWeights::attn_norm);
  layer_slices(take(layers * q * d), q * d, {q, d}, &LayerWeights::wq);
  layer_slices(take(layers * kv * d), kv * d, {kv, d}, &LayerWeights::wk);
  layer_slices(take(layers * kv * d), kv * d, {kv, d}, &LayerWeights::wv);
  layer_slices(take(layers * d * q), d * q, {d, q}, &LayerWeights::wo);
  layer_slices(take(layers * d), d, {d}, &LayerWeights::ffn_norm);
  layer_slices(take(layers * f * d), f * d, {f, d}, &LayerWeights::w_gate);  // w1
  layer_slices(take(layers * d * f), d * f, {d, f}, &LayerWeights::w_down);  // w2
  layer_slices(take(layers * f * d), f * d, {f, d}, &LayerWeights::w_up);    // w3
  w.final_norm = F32Tensor{.data = take(d), .shape = {d}};
  take(int64_t{c.max_seq_len} * c.head_dim);  // freq_cis_real, freq_cis_imag: recomputed
  w.output = c.tied_embeddings ? w.token_embedding
                               : F32Tensor{.data = take(v * d), .shape = {v, d}};
  w.KeepAlive(file);

  model.tensors = {
      {"token_embedding_table", "F32", {v, d}}, {"rms_att_weight", "F32", {layers, d}},
      {"wq", "F32", {layers, q, d}},            {"wk", "F32", {layers, kv, d}},
      {"wv", "F32", {layers, kv, d}},           {"wo", "F32", {layers, d, q}},
      {"rms_ffn_weight", "F32", {layers, d}},   {"w1", "F32", {layers, f, d}},
      {"w2", "F32", {layers, d, f}},            {"w3", "F32", {layers, f, d}},
      {"rms_final_weight", "F32", {d}}};
  if (!c.tied_embeddings) model.tensors.push_back({"wcls", "F32", {v, d}});

  // The tokenizer: tokenizer.bin, or tok<vocab>.bin (stories260K ships tok512.bin), beside it.
  const std::string dir = path.find('/') == std::string::npos
                              ? std::string(".")
                              : path.substr(0, path.find_last_of('/'));
  for (const std::string& name : {absl::StrCat("tok", v, ".bin"), std::string("tokenizer.bin")}) {
    const std::string candidate = absl::StrCat(dir, "/", name);
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      model.tokenizer.kind = TokenizerSource::Kind::kLlama2cFile;
      model.tokenizer.path = candidate;
      break;
    }
  }
  model.tokenizer.bos_id = 1;  // llama2.c: BOS = 1, EOS = 2
  model.tokenizer.eos_id = 2;
  ENGINE_RETURN_IF_ERROR(model.weights.Validate(c, path));
  return model;
}

}  // namespace engine::model
