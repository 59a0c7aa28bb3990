// Writes the generated part of the seed corpora in tests/fuzz/corpus/: tiny models in every
// format (written by fp4lm's own writers where it has one), tokenizers and task files. Small
// inputs keep the fuzzers fast; each seed covers a path of its reader that the others do not.
// Usage: make_fuzz_seeds [corpus_dir]  (default: the source tree's tests/fuzz/corpus).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "fp4lm/harness_tasks.h"
#include "model/gguf_file.h"
#include "model/gguf_format.h"
#include "model/gguf_writer.h"
#include "model/loaded_model.h"
#include "model/mapped_file.h"
#include "nlohmann/json.hpp"
#include "tests/fuzz/fuzz_targets.h"
#include "tokenizer/spm_convert.h"
#include "tokenizer/spm_model_proto.h"

namespace engine::fuzz {
extern const char kSafetensorsFuzzConfig[];
namespace {

namespace fs = std::filesystem;
using model::F32Tensor;
using model::LoadedModel;
using model::gguf::GgmlType;
using model::gguf::GgufBuilder;
using model::gguf::GgufValue;

fs::path g_root;
int g_failures = 0;

void Fail(const std::string& what) {
  std::fprintf(stderr, "make_fuzz_seeds: %s\n", what.c_str());
  ++g_failures;
}

void Write(const std::string& target, const std::string& name, std::string_view bytes) {
  const fs::path dir = g_root / target;
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) Fail(absl::StrCat("cannot write ", (dir / name).string()));
}

std::string ReadOrEmpty(const std::string& path) {
  absl::StatusOr<std::string> s = model::ReadFileToString(path);
  if (!s.ok()) Fail(s.status().ToString());
  return s.ok() ? *s : std::string();
}

std::string SharedPath(const std::string& relative) {
  return absl::StrCat(FP4LM_SHARED_DIR, "/", relative);
}

std::vector<float> RandomFloats(int64_t n, std::mt19937& rng, float scale = 0.5f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

std::string FloatBytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// ---- llama2.c ----

void Llama2c() {
  std::mt19937 rng(1);
  for (const bool shared : {true, false}) {
    const int32_t dim = 8, hidden = 16, layers = 1, heads = 2, kv_heads = 1, vocab = 16, seq = 4;
    const int32_t header[7] = {dim, hidden, layers, heads, kv_heads, shared ? vocab : -vocab, seq};
    const int64_t head_dim = dim / heads, kv = head_dim * kv_heads;
    int64_t floats = int64_t{vocab} * dim +
                     layers * (2 * dim + dim * dim + 2 * dim * kv + dim * dim + 3 * dim * hidden) +
                     dim + seq * head_dim + (shared ? 0 : int64_t{vocab} * dim);
    std::string bytes(reinterpret_cast<const char*>(header), sizeof(header));
    bytes += FloatBytes(RandomFloats(floats, rng));
    Write("llama2c", shared ? "tiny_shared_classifier.bin" : "tiny_unshared_classifier.bin",
          bytes);
  }
}

// ---- safetensors (for kSafetensorsFuzzConfig: dim 8, ffn 16, 1 layer, 2 heads, 1 kv head,
// vocab 16) ----

struct StTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
};

uint16_t ToF16(float f) {  // round toward zero; seeds need plausible bits, not exact rounding
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const int32_t exp = static_cast<int32_t>((x >> 23) & 0xFF) - 127 + 15;
  if (exp <= 0) return static_cast<uint16_t>(sign);
  if (exp >= 31) return static_cast<uint16_t>(sign | 0x7C00u);
  return static_cast<uint16_t>(sign | (static_cast<uint32_t>(exp) << 10) | ((x >> 13) & 0x3FFu));
}

std::string Safetensors(const std::vector<StTensor>& tensors, const nlohmann::json& metadata,
                        std::mt19937& rng) {
  nlohmann::json header = nlohmann::json::object();
  std::string data;
  for (const StTensor& t : tensors) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    const std::vector<float> values = RandomFloats(n, rng);
    const size_t begin = data.size();
    for (const float v : values) {
      if (t.dtype == "F32") {
        data.append(reinterpret_cast<const char*>(&v), 4);
      } else {
        uint32_t bits;
        std::memcpy(&bits, &v, 4);
        const uint16_t h = t.dtype == "BF16" ? static_cast<uint16_t>(bits >> 16) : ToF16(v);
        data.append(reinterpret_cast<const char*>(&h), 2);
      }
    }
    header[t.name] = {
        {"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {begin, data.size()}}};
  }
  if (!metadata.is_null()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  while (text.size() % 8 != 0) text += ' ';
  const uint64_t n = text.size();
  return std::string(reinterpret_cast<const char*>(&n), 8) + text + data;
}

void SafetensorsSeeds() {
  std::mt19937 rng(2);
  auto layer = [](const std::string& dt) {
    const std::string p = "model.layers.0.";
    return std::vector<StTensor>{{p + "input_layernorm.weight", "F32", {8}},
                                 {p + "self_attn.q_proj.weight", dt, {8, 8}},
                                 {p + "self_attn.k_proj.weight", dt, {4, 8}},
                                 {p + "self_attn.v_proj.weight", dt, {4, 8}},
                                 {p + "self_attn.o_proj.weight", dt, {8, 8}},
                                 {p + "post_attention_layernorm.weight", "F32", {8}},
                                 {p + "mlp.gate_proj.weight", dt, {16, 8}},
                                 {p + "mlp.up_proj.weight", "F16", {16, 8}},
                                 {p + "mlp.down_proj.weight", dt, {8, 16}}};
  };
  for (const std::string dt : {"F32", "BF16"}) {
    std::vector<StTensor> t = layer(dt);
    t.push_back({"model.embed_tokens.weight", dt, {16, 8}});
    t.push_back({"model.norm.weight", "F32", {8}});
    t.push_back({"lm_head.weight", dt, {16, 8}});
    Write("safetensors", absl::StrCat("tiny_", dt, ".safetensors"),
          Safetensors(t, nlohmann::json(), rng));
  }
  // tinystories-656K's layout: only lm_head stored, the embedding an alias of it.
  std::vector<StTensor> t = layer("F32");
  t.push_back({"model.norm.weight", "F32", {8}});
  t.push_back({"lm_head.weight", "F32", {16, 8}});
  Write("safetensors", "tiny_tied_alias.safetensors",
        Safetensors(t, {{"format", "pt"}, {"model.embed_tokens.weight", "lm_head.weight"}}, rng));
}

// ---- config.json ----

void HfConfigs() {
  Write("hf_config", "tinystories-656K.json",
        ReadOrEmpty(SharedPath("models/tinystories-656K/config.json")));
  Write("hf_config", "safetensors_fuzz_config.json", kSafetensorsFuzzConfig);
  Write("hf_config", "qwen2.json",
        R"({"architectures": ["Qwen2ForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
  "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
  "vocab_size": 100, "max_position_embeddings": 128, "rms_norm_eps": 1e-6, "rope_theta": 1e6,
  "tie_word_embeddings": true, "hidden_act": "silu", "rope_scaling": null,
  "bos_token_id": 1, "eos_token_id": 2})");
  Write("hf_config", "mistral_model_type.json",
        R"({"model_type": "mistral", "hidden_size": 32.0, "intermediate_size": 64,
  "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 10,
  "max_position_embeddings": 16, "attention_bias": true,
  "rope_scaling": {"type": "linear", "factor": [2.0, {"a": null}]}})");
}

// ---- GGUF ----

LoadedModel TinyModel(int dim, int ffn, int heads, int kv_heads, int vocab, bool tied,
                      std::mt19937& rng) {
  LoadedModel m;
  m.path = "tiny";
  m.format = model::ModelFormat::kGguf;
  model::ModelConfig& c = m.config;
  c.model_dim = dim;
  c.ffn_dim = ffn;
  c.n_layers = 1;
  c.n_heads = heads;
  c.n_kv_heads = kv_heads;
  c.head_dim = dim / heads;
  c.vocab_size = vocab;
  c.max_seq_len = 32;
  c.norm_eps = 1e-5f;
  c.rope_theta = 10000.0f;
  c.rope_style = model::RopeStyle::kInterleaved;
  c.tied_embeddings = tied;
  model::ModelWeights& w = m.weights;
  auto t = [&](std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return w.Own(RandomFloats(n, rng), std::move(shape));
  };
  const int64_t d = dim, f = ffn, q = c.q_dim(), kv = c.kv_dim(), v = vocab;
  w.token_embedding = t({v, d});
  w.final_norm = t({d});
  w.output = tied ? w.token_embedding : t({v, d});
  model::LayerWeights l;
  l.attn_norm = t({d});
  l.wq = t({q, d});
  l.wk = t({kv, d});
  l.wv = t({kv, d});
  l.wo = t({d, q});
  l.ffn_norm = t({d});
  l.w_gate = t({f, d});
  l.w_up = t({f, d});
  l.w_down = t({d, f});
  w.layers.push_back(l);
  m.chat_template =
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
      "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}";
  return m;
}

model::GgufVocab Gpt2Vocab(int n) {
  model::GgufVocab g;
  g.model = "gpt2";
  g.pre = "smollm";
  const std::vector<std::string> base = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "H", "e",
                                         "l", "o", "\xC4\xA0", "w", "r", "d", "He", "ll", "llo",
                                         "\xC4\xA0w", "or"};
  for (int i = 0; i < n; ++i) {
    g.tokens.push_back(i < static_cast<int>(base.size()) ? base[static_cast<size_t>(i)]
                                                         : absl::StrCat("t", i));
    g.token_types.push_back(i < 3 ? 3 : 1);
  }
  g.merges = {"H e", "l l", "ll o", "\xC4\xA0 w", "o r"};
  g.bos_id = 0;
  g.eos_id = 2;
  return g;
}

model::GgufVocab LlamaVocab(int n) {
  model::GgufVocab g;
  g.model = "llama";
  const std::vector<std::string> base = {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "b",
                                         "\xE2\x96\x81" "a", "ab", "<|im_start|>"};
  for (int i = 0; i < n; ++i) {
    g.tokens.push_back(i < static_cast<int>(base.size()) ? base[static_cast<size_t>(i)]
                                                         : absl::StrCat("p", i));
    g.scores.push_back(-static_cast<float>(i));
    g.token_types.push_back(i == 0 ? 2 : i < 3 ? 3 : i == 8 ? 4 : 1);
  }
  g.bos_id = 1;
  g.eos_id = 2;
  g.unk_id = 0;
  return g;
}

std::string WriteModelBytes(const LoadedModel& m) {
  const std::string path = WriteFuzzFile("seed.gguf", "");
  if (absl::Status s = model::WriteGgufModel(m, path); !s.ok()) {
    Fail(s.ToString());
    return "";
  }
  return ReadOrEmpty(path);
}

// The file `bytes` with its tensors named in `retype` stored as `type` (random block bytes).
std::string Retyped(const std::string& bytes, const std::vector<std::string>& retype,
                    GgmlType type, std::mt19937& rng) {
  const std::span<const uint8_t> span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  absl::StatusOr<model::gguf::GgufFile> f = model::gguf::ParseGguf(span, "seed");
  if (!f.ok()) {
    Fail(f.status().ToString());
    return "";
  }
  GgufBuilder b(f->alignment);
  for (const model::gguf::GgufKv& kv : f->kvs) b.Add(kv.key, kv.value);
  std::uniform_int_distribution<int> byte(0, 255);
  for (const model::gguf::GgufTensorInfo& t : f->tensors) {
    const std::span<const uint8_t> data = model::gguf::TensorBytes(*f, t, span);
    if (std::find(retype.begin(), retype.end(), t.name) == retype.end()) {
      if (absl::Status s = b.AddTensorCopy(t.name, t.ne, t.type, {data.begin(), data.end()});
          !s.ok()) {
        Fail(s.ToString());
      }
      continue;
    }
    const model::gguf::GgmlTypeTraits traits = model::gguf::TensorTypeInfo(
        static_cast<uint32_t>(type));
    std::vector<uint8_t> block_bytes(
        static_cast<size_t>(t.n_elements / traits.block_size * traits.type_size));
    for (size_t i = 0; i < block_bytes.size(); ++i) {
      // Small f16 scales (0x2000-ish) keep the values finite; the rest is random.
      block_bytes[i] = static_cast<uint8_t>(i % traits.type_size == 1 ? 0x20 : byte(rng));
    }
    if (absl::Status s = b.AddTensorCopy(t.name, t.ne, type, std::move(block_bytes)); !s.ok()) {
      Fail(s.ToString());
    }
  }
  return b.Serialize();
}

void GgufSeeds() {
  std::mt19937 rng(3);
  // Models: gpt2 and llama vocabularies, tied and not.
  LoadedModel gpt2 = TinyModel(8, 16, 2, 1, 16, /*tied=*/true, rng);
  gpt2.tokenizer.kind = model::TokenizerSource::Kind::kGguf;
  gpt2.tokenizer.gguf = Gpt2Vocab(16);
  const std::string gpt2_bytes = WriteModelBytes(gpt2);
  LoadedModel llama = TinyModel(8, 16, 2, 2, 12, /*tied=*/false, rng);
  llama.tokenizer.kind = model::TokenizerSource::Kind::kGguf;
  llama.tokenizer.gguf = LlamaVocab(12);
  const std::string llama_bytes = WriteModelBytes(llama);
  // An embedded llama2.c tokenizer (stories260K's tok512.bin).
  LoadedModel embedded = TinyModel(8, 16, 2, 1, 512, /*tied=*/true, rng);
  embedded.tokenizer.kind = model::TokenizerSource::Kind::kLlama2cFile;
  embedded.tokenizer.embedded = ReadOrEmpty(SharedPath("models/stories260K/tok512.bin"));
  // Block-quantized linears: dims that are multiples of 32.
  LoadedModel quant = TinyModel(32, 64, 4, 2, 16, /*tied=*/true, rng);
  quant.tokenizer.kind = model::TokenizerSource::Kind::kGguf;
  quant.tokenizer.gguf = Gpt2Vocab(16);
  const std::string quant_bytes = WriteModelBytes(quant);
  const std::vector<std::string> linears = {"blk.0.attn_q.weight", "blk.0.attn_k.weight",
                                            "blk.0.ffn_up.weight"};
  for (const std::string& target : {std::string("gguf"), std::string("gguf_model")}) {
    Write(target, "tiny_f32_gpt2_vocab.gguf", gpt2_bytes);
    Write(target, "tiny_f32_llama_vocab.gguf", llama_bytes);
    Write(target, "tiny_q8_0.gguf", Retyped(quant_bytes, linears, GgmlType::kQ8_0, rng));
    Write(target, "tiny_q4_1.gguf", Retyped(quant_bytes, linears, GgmlType::kQ4_1, rng));
    Write(target, "tiny_q5_0.gguf", Retyped(quant_bytes, linears, GgmlType::kQ5_0, rng));
    Write(target, "tiny_f16.gguf",
          Retyped(quant_bytes, {"blk.0.ffn_down.weight", "token_embd.weight"}, GgmlType::kF16,
                  rng));
  }
  Write("gguf_model", "tiny_embedded_llama2c_tokenizer.gguf", WriteModelBytes(embedded));

  // A vocabulary-only file (like llama.cpp's ggml-vocab-*.gguf).
  {
    GgufBuilder b;
    const model::GgufVocab v = LlamaVocab(300);
    b.Add("general.architecture", GgufValue::String("llama"));
    b.Add("tokenizer.ggml.model", GgufValue::String("llama"));
    b.Add("tokenizer.ggml.tokens", GgufValue::StringArray(v.tokens));
    b.Add("tokenizer.ggml.scores", GgufValue::Float32Array(v.scores));
    b.Add("tokenizer.ggml.token_type", GgufValue::Int32Array(v.token_types));
    b.Add("tokenizer.ggml.bos_token_id", GgufValue::Uint32(1));
    b.Add("tokenizer.ggml.eos_token_id", GgufValue::Uint32(2));
    b.Add("tokenizer.ggml.add_bos_token", GgufValue::Bool(true));
    Write("gguf_model", "vocab_only_llama.gguf", b.Serialize());
  }
  // The container: metadata of every value type, nested arrays, alignment, K-quant blocks.
  {
    GgufBuilder b(64);
    auto scalar = [](model::gguf::ValueType type, uint64_t u, int64_t i, double f) {
      GgufValue v;
      v.type = type;
      v.u = u;
      v.i = i;
      v.f = f;
      return v;
    };
    using VT = model::gguf::ValueType;
    b.Add("u8", scalar(VT::kUint8, 200, 0, 0));
    b.Add("i8", scalar(VT::kInt8, 0, -100, 0));
    b.Add("u16", scalar(VT::kUint16, 60000, 0, 0));
    b.Add("i16", scalar(VT::kInt16, 0, -30000, 0));
    b.Add("u32", GgufValue::Uint32(4000000000u));
    b.Add("i32", GgufValue::Int32(-2000000000));
    b.Add("u64", scalar(VT::kUint64, ~uint64_t{0}, 0, 0));
    b.Add("i64", scalar(VT::kInt64, 0, INT64_MIN, 0));
    b.Add("f32", GgufValue::Float32(1.5f));
    b.Add("f64", scalar(VT::kFloat64, 0, 0, -2.25));
    b.Add("bool", GgufValue::Bool(true));
    b.Add("str", GgufValue::String("h\xC3\xA9llo"));
    b.Add("arr.str", GgufValue::StringArray({"a", "", "bc"}));
    b.Add("arr.u8", GgufValue::Uint8Array(std::vector<uint8_t>{1, 2, 255}));
    b.Add("arr.i32", GgufValue::Int32Array(std::vector<int32_t>{-1, 0, 7}));
    b.Add("arr.f32", GgufValue::Float32Array(std::vector<float>{0.5f, NAN, INFINITY}));
    GgufValue nested;
    nested.type = VT::kArray;
    nested.array.elem_type = VT::kArray;
    nested.array.size = 2;
    nested.array.arrays = {GgufValue::Int32Array(std::vector<int32_t>{1}).array,
                           GgufValue::StringArray({"x"}).array};
    b.Add("arr.nested", nested);
    std::uniform_int_distribution<int> byte(0, 255);
    for (const GgmlType type : {GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K,
                                GgmlType::kQ5_1, GgmlType::kQ4_0, GgmlType::kBF16}) {
      const model::gguf::GgmlTypeTraits traits =
          model::gguf::TensorTypeInfo(static_cast<uint32_t>(type));
      std::vector<uint8_t> bytes(static_cast<size_t>(traits.type_size) *
                                 (traits.block_size >= 256 ? 1 : 256 / traits.block_size));
      for (uint8_t& x : bytes) x = static_cast<uint8_t>(byte(rng));
      if (absl::Status s = b.AddTensorCopy(absl::StrCat("t.", traits.name), {256, 1}, type,
                                           std::move(bytes));
          !s.ok()) {
        Fail(s.ToString());
      }
    }
    Write("gguf", "every_value_type.gguf", b.Serialize());
  }
}

// ---- fp4lm W4A4 GGUF ----

void Fp4Seeds() {
  std::mt19937 rng(4);
  for (int variant = 0; variant < 3; ++variant) {
    const bool bias = variant == 1, sink = variant != 0, halves = variant == 2;
    LoadedModel m = TinyModel(16, 32, 2, 1, 16, /*tied=*/variant != 1, rng);
    m.config.qkv_bias = bias;
    m.config.rope_style = halves ? model::RopeStyle::kHalves : model::RopeStyle::kInterleaved;
    model::ModelWeights& w = m.weights;
    const model::ModelConfig& c = m.config;
    model::LayerWeights& l = w.layers[0];
    l.wq = l.wk = l.wv = l.wo = l.w_gate = l.w_up = l.w_down = F32Tensor{};
    std::uniform_int_distribution<int> byte(0, 255);
    auto linear = [&](int64_t out, int64_t in, bool with_bias, model::Fp4Format format) {
      model::Fp4Linear lin;
      lin.format = format;
      lin.out_features = out;
      lin.in_features = in;
      std::vector<uint8_t> codes(static_cast<size_t>(out * in / 2));
      for (uint8_t& x : codes) x = static_cast<uint8_t>(byte(rng));
      lin.codes = w.OwnBytes(std::move(codes));
      std::vector<float> scales(static_cast<size_t>(out), 0.01f);
      lin.row_scale = w.OwnFloats(std::move(scales));
      if (with_bias) lin.bias = w.OwnFloats(RandomFloats(out, rng, 0.1f));
      return lin;
    };
    model::Fp4LayerWeights fl;
    fl.attn_input = {model::Fp4Format::kE2M1, 0.5f};
    fl.attn_output = {model::Fp4Format::kE3M0, 0.25f};
    fl.ffn_input = {model::Fp4Format::kE1M2, 1.0f};
    fl.down_input = {model::Fp4Format::kE2M1, 2.0f};
    const int64_t d = c.model_dim, f = c.ffn_dim, q = c.q_dim(), kv = c.kv_dim();
    fl.wq = linear(q, d, bias, model::Fp4Format::kE2M1);
    fl.wk = linear(kv, d, bias, model::Fp4Format::kE3M0);
    fl.wv = linear(kv, d, bias, model::Fp4Format::kE1M2);
    fl.wo = linear(d, q, false, model::Fp4Format::kE2M1);
    fl.w_gate = linear(f, d, false, model::Fp4Format::kE2M1);
    fl.w_up = linear(f, d, false, model::Fp4Format::kE2M1);
    fl.w_down = linear(d, f, false, model::Fp4Format::kE3M0);
    w.fp4.layers.push_back(fl);
    w.fp4.metadata = {{"method", "rtn"}, {"fp4lm_version", "0.1.0"}};
    if (sink) {
      w.fp4.sink.token = 0;
      w.fp4.sink.keys = w.OwnFloats(RandomFloats(kv, rng));
      w.fp4.sink.values = w.OwnFloats(RandomFloats(kv, rng));
      w.fp4.sink.logits = w.OwnFloats(RandomFloats(c.vocab_size, rng));
    }
    if (variant == 2) {
      m.tokenizer.kind = model::TokenizerSource::Kind::kHfTokenizerJson;
      m.tokenizer.embedded =
          R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "<s>": 3},
              "merges": ["a b"]}, "added_tokens": [{"id": 3, "content": "<s>", "special": true}],
              "post_processor": {"type": "TemplateProcessing",
                                 "single": [{"SpecialToken": {"id": "<s>"}}]}})";
    } else {
      m.tokenizer.kind = model::TokenizerSource::Kind::kGguf;
      m.tokenizer.gguf = Gpt2Vocab(16);
    }
    Write("fp4_gguf", absl::StrCat("tiny_w4a4_", bias ? "bias_" : "", sink ? "sink_" : "",
                                   halves ? "halves_embedded_tokenizer" : "gguf_vocab", ".gguf"),
          WriteModelBytes(m));
  }
}

// ---- tokenizers ----

void TokenizerSeeds() {
  const std::string tok512 = ReadOrEmpty(SharedPath("models/stories260K/tok512.bin"));
  Write("tokenizer_bin", "tok512.bin", tok512);
  // The smallest valid file: <unk>, <s>, </s>, 256 byte pieces and two merges.
  {
    std::string b;
    auto put = [&b](const auto& v) { b.append(reinterpret_cast<const char*>(&v), sizeof(v)); };
    put(int32_t{7});
    auto token = [&](float score, const std::string& text) {
      put(score);
      put(static_cast<int32_t>(text.size()));
      b += text;
    };
    token(0.0f, "<unk>");
    token(0.0f, "\n<s>\n");
    token(0.0f, "\n</s>\n");
    for (int i = 0; i < 256; ++i) token(0.0f, absl::StrFormat("<0x%02X>", i));
    token(-1.0f, " t");
    token(-2.0f, "he");
    Write("tokenizer_bin", "minimal.bin", b);
  }
  // tokenizer.model seeds: our own serialization of converted vocabularies.
  {
    absl::StatusOr<tokenizer::SpmModelProto> m =
        tokenizer::Llama2cToSpmModel(tok512, 512, "tok512.bin");
    if (!m.ok()) {
      Fail(m.status().ToString());
    } else {
      Write("spm_model", "tok512_bpe.model", tokenizer::SerializeSpmModelProto(*m));
      m->model_type = tokenizer::kSpmUnigram;
      m->pieces.resize(300);
      m->vocab_size = 300;
      m->normalizer_name = "nmt_nfkc";
      m->pieces[299] = {"<user>", 0.0f, tokenizer::kSpmUserDefined};
      Write("spm_model", "small_unigram.model", tokenizer::SerializeSpmModelProto(*m));
    }
  }
  // tokenizer.json: the real tinystories-656K file, and small ones for each component kind.
  Write("tokenizer_json", "tinystories-656K.json",
        ReadOrEmpty(SharedPath("models/tinystories-656K/tokenizer.json")) + std::string(1, '\0') +
            ReadOrEmpty(SharedPath("models/tinystories-656K/tokenizer_config.json")));
  Write("tokenizer_json", "byte_level.json",
        R"({"model": {"type": "BPE", "vocab": {"H": 0, "e": 1, "l": 2, "o": 3, "Ġ": 4, "He": 5,
  "ll": 6, "<|endoftext|>": 7}, "merges": ["H e", ["l", "l"]], "unk_token": null},
  "added_tokens": [{"id": 7, "content": "<|endoftext|>", "special": true, "lstrip": true}],
  "normalizer": null,
  "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
     {"type": "Digits", "individual_digits": true},
     {"type": "Split", "pattern": {"Regex": "[a-z]+"}, "behavior": "MergedWithNext",
      "invert": false},
     {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}]},
  "decoder": {"type": "ByteLevel"},
  "post_processor": {"type": "ByteLevel"}})" + std::string(1, '\0') +
            R"({"eos_token": {"content": "<|endoftext|>"}, "add_bos_token": false})");
  Write("tokenizer_json", "metaspace_byte_fallback.json",
        R"({"model": {"type": "BPE", "byte_fallback": true, "fuse_unk": true,
  "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0x41>": 3, "▁": 4, "a": 5, "▁a": 6},
  "merges": ["▁ a"], "unk_token": "<unk>"},
  "added_tokens": [{"id": 1, "content": "<s>", "special": true},
                   {"id": 2, "content": "</s>", "special": true, "rstrip": true}],
  "normalizer": {"type": "Sequence", "normalizers": [
     {"type": "Prepend", "prepend": "▁"},
     {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
  "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first",
                    "split": false},
  "decoder": {"type": "Sequence", "decoders": [
     {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
     {"type": "ByteFallback"}, {"type": "Fuse"},
     {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
  "post_processor": {"type": "TemplateProcessing", "single": [
     {"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]}})");
}

// ---- chat templates ----

void ChatTemplateSeeds() {
  // Role bytes: 0 system, 5 user (1 is the separator), 2 assistant.
  const std::string conversation = std::string("\0", 1) + std::string("\x00" "Be brief.", 10) +
                                   "\x01\x05Hi <|im_end|> [INST]" + "\x01\x02Hello!" +
                                   "\x01\x05" "Bye";
  const std::pair<const char*, std::string> templates[] = {
      {"chatml_default_system",
       "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
       "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
       "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
       "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
       "{{ '<|im_start|>assistant\n' }}{% endif %}"},
      {"llama2", "{% if messages[0]['role'] == 'system' %}<<SYS>>{% endif %}{{ bos_token + "
                 "'[INST] ' + content.strip() + ' [/INST]' }}"},
      {"llama3", "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + "
                 "message['content'] | trim + '<|eot_id|>' }}"},
      {"mistral", "{{ bos_token }}{% for message in messages %}{{ '[INST] ' + "
                  "message['content'] + ' [/INST]' }}{% endfor %}"},
      {"zephyr", "{{ '<|user|>\\n' + message['content'] + eos_token }}"},
      {"gemma", "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + "
                "'<end_of_turn>\\n' }}"},
      {"by_name", "chatml"},
  };
  for (const auto& [name, source] : templates) {
    Write("chat_template", absl::StrCat(name, ".txt"), source + conversation);
  }
}

// ---- harness task files: tests/testdata/harness/<task>/*, prefixed with the task's index
// and a --limit byte (harness_task_fuzz.cc) ----

void HarnessSeeds() {
  const fs::path dir = fs::path(FP4LM_SOURCE_DIR) / "tests/testdata/harness";
  const std::span<const fp4lm::TaskSpec> tasks = fp4lm::AllTasks();
  std::error_code error;
  for (const fs::directory_entry& sub : fs::directory_iterator(dir, error)) {
    if (!sub.is_directory()) continue;
    const std::string task_name = sub.path().filename().string();
    uint8_t index = 0;  // bad/ files go to piqa
    for (size_t i = 0; i < tasks.size(); ++i) {
      if (tasks[i].name == task_name) index = static_cast<uint8_t>(i);
    }
    for (const fs::directory_entry& file : fs::directory_iterator(sub.path(), error)) {
      if (!file.is_regular_file() || file.file_size() > 16384) continue;
      std::string contents = ReadOrEmpty(file.path().string());
      if (file.path().filename() == "valid.jsonl") {
        const fs::path labels = file.path().parent_path() / "valid-labels.lst";
        if (fs::exists(labels)) contents += std::string(1, '\0') + ReadOrEmpty(labels.string());
      }
      if (file.path().filename() == "valid-labels.lst") continue;
      Write("harness_task", absl::StrCat(task_name, "_", file.path().filename().string()),
            std::string{static_cast<char>(index),
                        file.path().extension() == ".raw" ? '\x80' : '\0'} + contents);
    }
  }
}

}  // namespace
}  // namespace engine::fuzz

int main(int argc, char** argv) {
  using namespace engine::fuzz;
  g_root = argc > 1 ? fs::path(argv[1]) : fs::path(FP4LM_SOURCE_DIR) / "tests/fuzz/corpus";
  Llama2c();
  SafetensorsSeeds();
  HfConfigs();
  GgufSeeds();
  Fp4Seeds();
  TokenizerSeeds();
  ChatTemplateSeeds();
  HarnessSeeds();
  if (g_failures > 0) {
    std::fprintf(stderr, "make_fuzz_seeds: %d failures\n", g_failures);
    return 1;
  }
  std::printf("make_fuzz_seeds: wrote %s\n", g_root.string().c_str());
  return 0;
}
