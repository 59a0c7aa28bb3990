#include "model/hf_reader.h"

#include <sys/stat.h>

#include <cstring>
#include <map>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/core/half.h"
#include "kernels/core/status_macros.h"
#include "model/memory_limit.h"
#include "model/safetensors_reader.h"

namespace engine::model {
namespace {

bool IsFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Every tensor of the model by name, across shards.
struct TensorIndex {
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  std::map<std::string, std::pair<const SafetensorsFile*, const SafetensorsTensor*>> by_name;
};

absl::Status AddFile(TensorIndex& index, const std::string& path) {
  ENGINE_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, SafetensorsFile::Open(path));
  for (const auto& [name, tensor] : file->tensors()) {
    if (!index.by_name.emplace(name, std::make_pair(file.get(), &tensor)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor '", name, "' is also stored in another shard"));
    }
  }
  // Aliases of tied weights: {"model.embed_tokens.weight": "lm_head.weight"}.
  for (const auto& [alias, target] : file->metadata()) {
    auto it = file->tensors().find(target);
    if (it != file->tensors().end() && !file->tensors().contains(alias)) {
      index.by_name.emplace(alias, std::make_pair(file.get(), &it->second));
    }
  }
  index.files.push_back(std::move(file));
  return absl::OkStatus();
}

absl::StatusOr<TensorIndex> IndexTensors(const std::string& dir) {
  TensorIndex index;
  const std::string single = dir + "/model.safetensors";
  const std::string sharded = dir + "/model.safetensors.index.json";
  if (IsFile(single)) {
    ENGINE_RETURN_IF_ERROR(AddFile(index, single));
    return index;
  }
  if (!IsFile(sharded)) {
    return absl::NotFoundError(absl::StrCat(dir, ": neither model.safetensors nor ",
                                            "model.safetensors.index.json found"));
  }
  ENGINE_ASSIGN_OR_RETURN(std::string text, ReadFileToString(sharded));
  ENGINE_ASSIGN_OR_RETURN(Json json, ParseJson(text, sharded));
  if (!json.contains("weight_map") || !json["weight_map"].is_object()) {
    return absl::InvalidArgumentError(sharded + ": missing object 'weight_map'");
  }
  std::set<std::string> shards;
  for (auto it = json["weight_map"].begin(); it != json["weight_map"].end(); ++it) {
    if (!it.value().is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(sharded, ": weight_map['", it.key(),
                                                     "'] is not a file name"));
    }
    const std::string shard = it.value().get<std::string>();
    if (shard.find('/') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(sharded, ": shard name '", shard, "' must not contain '/'"));
    }
    shards.insert(shard);
  }
  for (const std::string& shard : shards) ENGINE_RETURN_IF_ERROR(AddFile(index, dir + "/" + shard));
  return index;
}

// Returns an FP32 view of a stored tensor (in place for aligned F32, converted otherwise),
// checking its shape.
absl::StatusOr<F32Tensor> LoadTensor(const TensorIndex& index, const std::string& name,
                                     const std::vector<int64_t>& want_shape, ModelWeights& weights,
                                     const std::string& dir) {
  auto it = index.by_name.find(name);
  if (it == index.by_name.end()) {
    return absl::NotFoundError(absl::StrCat(dir, ": missing tensor '", name, "'"));
  }
  const auto& [file, tensor] = it->second;
  if (tensor->shape != want_shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        file->path(), ": tensor '", name, "': expected shape [", absl::StrJoin(want_shape, ", "),
        "], found [", absl::StrJoin(tensor->shape, ", "), "]"));
  }
  const size_t count = tensor->data.size() / static_cast<size_t>(SafetensorsDtypeSize(tensor->dtype));
  const uint8_t* bytes = tensor->data.data();
  if (tensor->dtype == "F32") {
    if (reinterpret_cast<uintptr_t>(bytes) % alignof(float) == 0) {
      weights.KeepAlive(file->mapping());
      return F32Tensor{.data = reinterpret_cast<const float*>(bytes), .shape = want_shape};
    }
    std::vector<float> values(count);
    std::memcpy(values.data(), bytes, count * sizeof(float));
    return weights.Own(std::move(values), want_shape);
  }
  if (tensor->dtype == "F16" || tensor->dtype == "BF16") {
    std::vector<float> values(count);
    const bool is_bf16 = tensor->dtype == "BF16";
    for (size_t i = 0; i < count; ++i) {
      uint16_t h;
      std::memcpy(&h, bytes + 2 * i, 2);
      values[i] = is_bf16 ? Bf16ToF32(h) : F16ToF32(h);
    }
    return weights.Own(std::move(values), want_shape);
  }
  return absl::UnimplementedError(absl::StrCat(file->path(), ": tensor '", name, "': dtype ",
                                               tensor->dtype, " (supported: F32, F16, BF16)"));
}

}  // namespace

absl::StatusOr<ModelConfig> ParseHfConfig(const Json& json, const std::string& source) {
  if (!json.is_object()) return absl::InvalidArgumentError(source + ": not a JSON object");
  ModelConfig c;
  std::string arch;
  if (json.contains("architectures") && json["architectures"].is_array() &&
      !json["architectures"].empty() && json["architectures"][0].is_string()) {
    arch = json["architectures"][0].get<std::string>();
  } else {
    ENGINE_ASSIGN_OR_RETURN(arch, JsonString(json, "model_type", source));
  }
  if (arch == "LlamaForCausalLM" || arch == "llama") {
    c.architecture = "llama";
  } else if (arch == "MistralForCausalLM" || arch == "mistral") {
    c.architecture = "mistral";
  } else if (arch == "Qwen2ForCausalLM" || arch == "qwen2") {
    c.architecture = "qwen2";
  } else {
    return absl::UnimplementedError(absl::StrCat(
        source, ": architecture '", arch,
        "' is not supported (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM are)"));
  }
  auto int_field = [&](const char* key, int32_t& out) -> absl::Status {
    ENGINE_ASSIGN_OR_RETURN(int64_t v, JsonInt(json, key, source));
    if (v <= 0 || v > std::numeric_limits<int32_t>::max()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": field '", key, "' = ", v));
    }
    out = static_cast<int32_t>(v);
    return absl::OkStatus();
  };
  ENGINE_RETURN_IF_ERROR(int_field("hidden_size", c.model_dim));
  ENGINE_RETURN_IF_ERROR(int_field("intermediate_size", c.ffn_dim));
  ENGINE_RETURN_IF_ERROR(int_field("num_hidden_layers", c.n_layers));
  ENGINE_RETURN_IF_ERROR(int_field("num_attention_heads", c.n_heads));
  ENGINE_RETURN_IF_ERROR(int_field("vocab_size", c.vocab_size));
  ENGINE_RETURN_IF_ERROR(int_field("max_position_embeddings", c.max_seq_len));
  ENGINE_ASSIGN_OR_RETURN(int64_t kv_heads,
                          JsonIntOr(json, "num_key_value_heads", c.n_heads, source));
  ENGINE_ASSIGN_OR_RETURN(int64_t head_dim,
                          JsonIntOr(json, "head_dim", c.model_dim / c.n_heads, source));
  if (kv_heads <= 0 || kv_heads > kMaxHeads || head_dim <= 0 || head_dim > kMaxModelDim) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": num_key_value_heads = ", kv_heads,
                                                   ", head_dim = ", head_dim));
  }
  c.n_kv_heads = static_cast<int32_t>(kv_heads);
  c.head_dim = static_cast<int32_t>(head_dim);
  ENGINE_ASSIGN_OR_RETURN(double eps, JsonNumberOr(json, "rms_norm_eps", 1e-6, source));
  ENGINE_ASSIGN_OR_RETURN(double theta, JsonNumberOr(json, "rope_theta", 10000.0, source));
  c.norm_eps = static_cast<float>(eps);
  c.rope_theta = static_cast<float>(theta);
  c.rope_style = RopeStyle::kHalves;
  // transformers' PretrainedConfig default: untied.
  ENGINE_ASSIGN_OR_RETURN(c.tied_embeddings,
                          JsonBoolOr(json, "tie_word_embeddings", false, source));
  c.qkv_bias = c.architecture == "qwen2";
  ENGINE_ASSIGN_OR_RETURN(bool attention_bias, JsonBoolOr(json, "attention_bias", false, source));
  c.qkv_bias = c.qkv_bias || attention_bias;
  if (json.contains("rope_scaling") && !json["rope_scaling"].is_null()) {
    // Only a flat object is quoted: dump() recurses, and the value comes from the file.
    const Json& scaling = json["rope_scaling"];
    std::string found = scaling.type_name();
    if (scaling.is_object() && scaling.size() <= 8) {
      bool flat = true;
      for (const Json& v : scaling) flat = flat && v.is_primitive();
      if (flat) found = scaling.dump(-1, ' ', false, Json::error_handler_t::replace);
    }
    return absl::UnimplementedError(
        absl::StrCat(source, ": rope_scaling is not supported yet (found ", found, ")"));
  }
  if (json.contains("hidden_act") && json["hidden_act"].is_string() &&
      json["hidden_act"].get<std::string>() != "silu") {
    return absl::UnimplementedError(absl::StrCat(source, ": hidden_act '",
                                                 json["hidden_act"].get<std::string>(),
                                                 "' (only silu is supported)"));
  }
  ENGINE_RETURN_IF_ERROR(c.Validate(source));
  return c;
}

absl::StatusOr<LoadedModel> ReadHfModel(const std::string& dir) {
  const std::string config_path = dir + "/config.json";
  ENGINE_ASSIGN_OR_RETURN(std::string config_text, ReadFileToString(config_path));
  ENGINE_ASSIGN_OR_RETURN(Json config_json, ParseJson(config_text, config_path));
  LoadedModel model;
  model.format = ModelFormat::kHuggingFace;
  model.path = dir;
  ENGINE_ASSIGN_OR_RETURN(model.config, ParseHfConfig(config_json, config_path));
  ModelConfig& c = model.config;
  ENGINE_ASSIGN_OR_RETURN(TensorIndex index, IndexTensors(dir));

  // F16/BF16 tensors become FP32 copies (F32 ones are used in place).
  uint64_t converted = 0;
  for (const auto& file : index.files) {
    for (const auto& [name, tensor] : file->tensors()) {
      if (tensor.dtype == "F16" || tensor.dtype == "BF16") converted += 2 * tensor.data.size();
    }
  }
  ENGINE_RETURN_IF_ERROR(CheckMemory(converted, "converting the weights to FP32", dir));

  const bool has_lm_head = index.by_name.contains("lm_head.weight");
  const bool has_embed = index.by_name.contains("model.embed_tokens.weight");
  if (!has_lm_head && has_embed) c.tied_embeddings = true;  // only the shared tensor is stored
  const int64_t d = c.model_dim, f = c.ffn_dim, q = c.q_dim(), kv = c.kv_dim(), v = c.vocab_size;
  ModelWeights& w = model.weights;
  auto load = [&](const std::string& name, std::vector<int64_t> shape) {
    return LoadTensor(index, name, shape, w, dir);
  };
  ENGINE_ASSIGN_OR_RETURN(w.token_embedding, load("model.embed_tokens.weight", {v, d}));
  ENGINE_ASSIGN_OR_RETURN(w.final_norm, load("model.norm.weight", {d}));
  if (c.tied_embeddings) {
    w.output = w.token_embedding;
  } else {
    ENGINE_ASSIGN_OR_RETURN(w.output, load("lm_head.weight", {v, d}));
  }
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (int32_t l = 0; l < c.n_layers; ++l) {
    LayerWeights& lw = w.layers[static_cast<size_t>(l)];
    const std::string p = absl::StrCat("model.layers.", l, ".");
    ENGINE_ASSIGN_OR_RETURN(lw.attn_norm, load(p + "input_layernorm.weight", {d}));
    ENGINE_ASSIGN_OR_RETURN(lw.wq, load(p + "self_attn.q_proj.weight", {q, d}));
    ENGINE_ASSIGN_OR_RETURN(lw.wk, load(p + "self_attn.k_proj.weight", {kv, d}));
    ENGINE_ASSIGN_OR_RETURN(lw.wv, load(p + "self_attn.v_proj.weight", {kv, d}));
    if (c.qkv_bias) {
      ENGINE_ASSIGN_OR_RETURN(lw.bq, load(p + "self_attn.q_proj.bias", {q}));
      ENGINE_ASSIGN_OR_RETURN(lw.bk, load(p + "self_attn.k_proj.bias", {kv}));
      ENGINE_ASSIGN_OR_RETURN(lw.bv, load(p + "self_attn.v_proj.bias", {kv}));
    }
    ENGINE_ASSIGN_OR_RETURN(lw.wo, load(p + "self_attn.o_proj.weight", {d, q}));
    ENGINE_ASSIGN_OR_RETURN(lw.ffn_norm, load(p + "post_attention_layernorm.weight", {d}));
    ENGINE_ASSIGN_OR_RETURN(lw.w_gate, load(p + "mlp.gate_proj.weight", {f, d}));
    ENGINE_ASSIGN_OR_RETURN(lw.w_up, load(p + "mlp.up_proj.weight", {f, d}));
    ENGINE_ASSIGN_OR_RETURN(lw.w_down, load(p + "mlp.down_proj.weight", {d, f}));
  }
  for (const auto& file : index.files) {
    for (const auto& [name, tensor] : file->tensors()) {
      model.tensors.push_back({name, tensor.dtype, tensor.shape});
    }
  }

  // Tokenizer: tokenizer.json (BPE) first, then tokenizer.model (SentencePiece).
  if (IsFile(dir + "/tokenizer.json")) {
    model.tokenizer.kind = TokenizerSource::Kind::kHfTokenizerJson;
    model.tokenizer.path = dir + "/tokenizer.json";
  } else if (IsFile(dir + "/tokenizer.model")) {
    model.tokenizer.kind = TokenizerSource::Kind::kSentencePieceFile;
    model.tokenizer.path = dir + "/tokenizer.model";
  }
  ENGINE_ASSIGN_OR_RETURN(int64_t bos, JsonIntOr(config_json, "bos_token_id", -1, config_path));
  ENGINE_ASSIGN_OR_RETURN(int64_t eos, JsonIntOr(config_json, "eos_token_id", -1, config_path));
  model.tokenizer.bos_id = static_cast<int32_t>(bos);
  model.tokenizer.eos_id = static_cast<int32_t>(eos);
  if (IsFile(dir + "/tokenizer_config.json")) {
    const std::string tc_path = dir + "/tokenizer_config.json";
    ENGINE_ASSIGN_OR_RETURN(std::string tc_text, ReadFileToString(tc_path));
    ENGINE_ASSIGN_OR_RETURN(Json tc, ParseJson(tc_text, tc_path));
    if (tc.is_object() && tc.contains("chat_template") && tc["chat_template"].is_string()) {
      model.chat_template = tc["chat_template"].get<std::string>();
    }
  }
  ENGINE_RETURN_IF_ERROR(w.Validate(c, dir));
  return model;
}

}  // namespace engine::model
