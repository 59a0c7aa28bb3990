// fp4lm W4A4 GGUF files: a random tiny W4A4 model survives a write/read round trip bit for bit
// (Q/K code rows, row scales and biases of a halves-RoPE model permuted as an independent
// formula says), damaged files fail with errors naming the key or tensor (every prefix of a
// small file included), and the file is still a plain GGUF v3 container to ParseGguf.
#include "model/gguf_fp4.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/gguf_file.h"
#include "model/gguf_reader.h"
#include "model/gguf_writer.h"
#include "model/mapped_file.h"
#include "tests/test_util.h"

namespace engine::model {
namespace {

using gguf::GgmlType;
using gguf::GgufValue;
using ::testing::HasSubstr;

struct Options {
  RopeStyle rope = RopeStyle::kHalves;
  bool bias = false;
  bool tied = false;
  bool gguf_vocab = true;  // else an embedded tokenizer (fp4lm.tokenizer.*)
  // Shape; the defaults are the brief's tiny model.
  int dim = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 96, vocab = 100;
  uint32_t seed = 7;
};

// The linears of a layer in file order, with llama.cpp's names.
struct LinearRef {
  const char* name;
  Fp4Linear Fp4LayerWeights::*member;
};
constexpr LinearRef kLinears[] = {
    {"attn_q", &Fp4LayerWeights::wq},       {"attn_k", &Fp4LayerWeights::wk},
    {"attn_v", &Fp4LayerWeights::wv},       {"attn_output", &Fp4LayerWeights::wo},
    {"ffn_gate", &Fp4LayerWeights::w_gate}, {"ffn_up", &Fp4LayerWeights::w_up},
    {"ffn_down", &Fp4LayerWeights::w_down},
};
struct ActRef {
  const char* name;
  ActQuant Fp4LayerWeights::*member;
};
constexpr ActRef kActs[] = {
    {"attn_input", &Fp4LayerWeights::attn_input},
    {"attn_output", &Fp4LayerWeights::attn_output},
    {"ffn_input", &Fp4LayerWeights::ffn_input},
    {"down_input", &Fp4LayerWeights::down_input},
};

Fp4Format RandomFormat(std::mt19937& rng) {
  return static_cast<Fp4Format>(std::uniform_int_distribution<int>(0, 2)(rng));
}

F32Tensor RandomF32(ModelWeights& w, std::vector<int64_t> shape, std::mt19937& rng) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return w.Own(std::move(v), std::move(shape));
}

Fp4Linear RandomLinear(ModelWeights& w, int64_t out, int64_t in, bool bias, std::mt19937& rng) {
  Fp4Linear l;
  l.format = RandomFormat(rng);
  l.out_features = out;
  l.in_features = in;
  std::vector<uint8_t> codes(static_cast<size_t>(out * in / 2));
  std::uniform_int_distribution<int> byte(0, 255);
  for (uint8_t& c : codes) c = static_cast<uint8_t>(byte(rng));
  l.codes = w.OwnBytes(std::move(codes));
  std::vector<float> scales(static_cast<size_t>(out));
  std::normal_distribution<float> log_scale(-4.0f, 1.0f);
  for (float& s : scales) s = std::exp(log_scale(rng));
  scales[0] = 0.0f;  // an all-zero row is legal
  l.row_scale = w.OwnFloats(std::move(scales));
  if (bias) {
    std::vector<float> b(static_cast<size_t>(out));
    std::normal_distribution<float> dist(0.0f, 0.1f);
    for (float& x : b) x = dist(rng);
    l.bias = w.OwnFloats(std::move(b));
  }
  return l;
}

LoadedModel TinyW4A4(const Options& o) {
  LoadedModel m;
  m.path = "/tmp/tiny-w4a4.safetensors";
  m.format = ModelFormat::kHuggingFace;
  ModelConfig& c = m.config;
  c.model_dim = o.dim;
  c.ffn_dim = o.ffn;
  c.n_layers = o.layers;
  c.n_heads = o.heads;
  c.n_kv_heads = o.kv_heads;
  c.head_dim = o.dim / o.heads;
  c.vocab_size = o.vocab;
  c.max_seq_len = 256;
  c.norm_eps = 1e-6f;
  c.rope_theta = 10000.0f;
  c.rope_style = o.rope;
  c.tied_embeddings = o.tied;
  c.qkv_bias = o.bias;
  std::mt19937 rng(o.seed);
  ModelWeights& w = m.weights;
  const int64_t d = c.model_dim, f = c.ffn_dim, q = c.q_dim(), kv = c.kv_dim(), v = c.vocab_size;
  w.token_embedding = RandomF32(w, {v, d}, rng);
  w.final_norm = RandomF32(w, {d}, rng);
  w.output = o.tied ? w.token_embedding : RandomF32(w, {v, d}, rng);
  std::uniform_real_distribution<float> act_scale(0.001f, 2.0f);
  for (int i = 0; i < c.n_layers; ++i) {
    LayerWeights l;
    l.attn_norm = RandomF32(w, {d}, rng);
    l.ffn_norm = RandomF32(w, {d}, rng);
    w.layers.push_back(l);
    Fp4LayerWeights fl;
    for (const ActRef& a : kActs) fl.*a.member = {RandomFormat(rng), act_scale(rng)};
    fl.wq = RandomLinear(w, q, d, o.bias, rng);
    fl.wk = RandomLinear(w, kv, d, o.bias, rng);
    fl.wv = RandomLinear(w, kv, d, o.bias, rng);
    fl.wo = RandomLinear(w, d, q, false, rng);
    fl.w_gate = RandomLinear(w, f, d, false, rng);
    fl.w_up = RandomLinear(w, f, d, false, rng);
    fl.w_down = RandomLinear(w, d, f, false, rng);
    w.fp4.layers.push_back(fl);
  }
  w.fp4.metadata = {{"method", "llm-fp4"},
                    {"calibration", "pile-val 128x512, seed 0"},
                    {"empty.value", ""},
                    {"layers.0.search", "attn_q: e2m1 (mse 1.2e-4); ffn_down: e1m2 \xc3\xa9"}};
  if (o.gguf_vocab) {
    m.tokenizer.kind = TokenizerSource::Kind::kGguf;
    GgufVocab& g = m.tokenizer.gguf;
    g.model = "gpt2";
    g.pre = "smollm";
    for (int i = 0; i < v; ++i) g.tokens.push_back(absl::StrCat("tok", i));
    g.token_types.assign(static_cast<size_t>(v), 1);
    g.merges = {"t o", "to k"};
    g.bos_id = 1;
    g.eos_id = 2;
  } else {
    m.tokenizer.kind = TokenizerSource::Kind::kHfTokenizerJson;
    m.tokenizer.embedded = R"({"model": {"type": "BPE", "vocab": {}}})";
    m.tokenizer.bos_id = 1;
    m.tokenizer.eos_id = 2;
  }
  m.chat_template = "{% for m in messages %}<|im_start|>{{ m.content }}{% endfor %}";
  return m;
}

std::string TempPath(const std::string& name) {
  return absl::StrCat(engine::testing::TempDir(), "/", name);
}

bool SameBits(const float* a, const float* b, int64_t n) {
  return std::memcmp(a, b, static_cast<size_t>(n) * sizeof(float)) == 0;
}

// Where row r of a Q/K tensor in the file came from in a halves-RoPE model. Written from the
// RoPE pairing, not from the writer: interleaved RoPE rotates file rows (2i, 2i+1) of a head,
// halves RoPE rotates model rows (i, i + head_dim/2), so file row h*hd + 2i + j must hold model
// row h*hd + j*hd/2 + i.
int64_t SourceRow(int64_t r, int64_t head_dim) {
  const int64_t head = r / head_dim, within = r % head_dim;
  const int64_t pair = within / 2, slot = within % 2;
  return head * head_dim + slot * (head_dim / 2) + pair;
}

void ExpectLinearRoundTrip(const Fp4Linear& got, const Fp4Linear& want, int64_t permute_heads,
                           const std::string& what) {
  ASSERT_EQ(got.format, want.format) << what;
  ASSERT_EQ(got.out_features, want.out_features) << what;
  ASSERT_EQ(got.in_features, want.in_features) << what;
  ASSERT_NE(got.codes, nullptr) << what;
  ASSERT_NE(got.row_scale, nullptr) << what;
  ASSERT_EQ(got.bias != nullptr, want.bias != nullptr) << what;
  const int64_t row_bytes = want.in_features / 2;
  const int64_t head_dim = permute_heads > 0 ? want.out_features / permute_heads : 0;
  for (int64_t r = 0; r < want.out_features; ++r) {
    const int64_t src = permute_heads > 0 ? SourceRow(r, head_dim) : r;
    ASSERT_EQ(std::memcmp(got.codes + r * row_bytes, want.codes + src * row_bytes,
                          static_cast<size_t>(row_bytes)),
              0)
        << what << " code row " << r << " (from row " << src << ")";
    ASSERT_TRUE(SameBits(got.row_scale + r, want.row_scale + src, 1)) << what << " scale " << r;
    if (want.bias != nullptr) {
      ASSERT_TRUE(SameBits(got.bias + r, want.bias + src, 1)) << what << " bias " << r;
    }
  }
}

void RoundTrip(const Options& o) {
  const LoadedModel m = TinyW4A4(o);
  const std::string path = TempPath("w4a4.gguf");
  ASSERT_OK(WriteGgufModel(m, path));
  ASSERT_OK_AND_ASSIGN(LoadedModel read, ReadGgufModel(path));
  const LoadedModel r = std::move(read);  // views must survive a move of the model

  const ModelConfig& c = r.config;
  EXPECT_EQ(c.model_dim, m.config.model_dim);
  EXPECT_EQ(c.ffn_dim, m.config.ffn_dim);
  EXPECT_EQ(c.n_layers, m.config.n_layers);
  EXPECT_EQ(c.n_heads, m.config.n_heads);
  EXPECT_EQ(c.n_kv_heads, m.config.n_kv_heads);
  EXPECT_EQ(c.head_dim, m.config.head_dim);
  EXPECT_EQ(c.vocab_size, m.config.vocab_size);
  EXPECT_EQ(c.norm_eps, m.config.norm_eps);
  EXPECT_EQ(c.rope_style, RopeStyle::kInterleaved);
  EXPECT_EQ(c.tied_embeddings, o.tied);
  EXPECT_EQ(c.qkv_bias, o.bias);

  const ModelWeights& a = m.weights;
  const ModelWeights& b = r.weights;
  ASSERT_EQ(b.token_embedding.shape, a.token_embedding.shape);
  EXPECT_TRUE(
      SameBits(b.token_embedding.data, a.token_embedding.data, a.token_embedding.num_elements()));
  EXPECT_TRUE(SameBits(b.output.data, a.output.data, a.output.num_elements()));
  EXPECT_TRUE(SameBits(b.final_norm.data, a.final_norm.data, a.final_norm.num_elements()));
  ASSERT_EQ(b.layers.size(), a.layers.size());
  ASSERT_EQ(b.fp4.layers.size(), a.fp4.layers.size());
  const bool permuted = o.rope == RopeStyle::kHalves;
  for (size_t i = 0; i < a.layers.size(); ++i) {
    const std::string p = absl::StrCat("layer ", i, " ");
    EXPECT_TRUE(SameBits(b.layers[i].attn_norm.data, a.layers[i].attn_norm.data, o.dim)) << p;
    EXPECT_TRUE(SameBits(b.layers[i].ffn_norm.data, a.layers[i].ffn_norm.data, o.dim)) << p;
    EXPECT_TRUE(b.layers[i].wq.empty() && b.layers[i].w_down.empty()) << p;
    const Fp4LayerWeights& la = a.fp4.layers[i];
    const Fp4LayerWeights& lb = b.fp4.layers[i];
    for (const ActRef& act : kActs) {
      EXPECT_EQ((lb.*act.member).format, (la.*act.member).format) << p << act.name;
      EXPECT_TRUE(SameBits(&(lb.*act.member).scale, &(la.*act.member).scale, 1)) << p << act.name;
    }
    for (const LinearRef& lin : kLinears) {
      int64_t heads = 0;
      if (permuted && lin.member == &Fp4LayerWeights::wq) heads = o.heads;
      if (permuted && lin.member == &Fp4LayerWeights::wk) heads = o.kv_heads;
      ExpectLinearRoundTrip(lb.*lin.member, la.*lin.member, heads, p + lin.name);
    }
  }
  EXPECT_EQ(b.fp4.metadata, a.fp4.metadata);
  EXPECT_EQ(r.chat_template, m.chat_template);
  EXPECT_EQ(r.tokenizer.kind, m.tokenizer.kind);
  if (o.gguf_vocab) {
    EXPECT_EQ(r.tokenizer.gguf.tokens, m.tokenizer.gguf.tokens);
    EXPECT_EQ(r.tokenizer.gguf.merges, m.tokenizer.gguf.merges);
  } else {
    EXPECT_EQ(r.tokenizer.embedded, m.tokenizer.embedded);
    EXPECT_EQ(r.tokenizer.bos_id, 1);
  }
  // One tensor per codes/scales/bias, each listed with its fp4lm type name.
  const size_t per_layer = 2 + 7 * 2 + (o.bias ? 3 : 0);
  EXPECT_EQ(r.tensors.size(), 2u + (o.tied ? 0 : 1) + per_layer * a.layers.size());
  int fp4_tensors = 0;
  for (const SourceTensorInfo& t : r.tensors) {
    if (t.dtype.rfind("FP4LM_", 0) == 0) ++fp4_tensors;
  }
  EXPECT_EQ(fp4_tensors, 7 * o.layers);

  // Codes and row scales are views of one mapping of the file: their distance in memory is
  // their distance in the file.
  ASSERT_OK_AND_ASSIGN(auto mapped, MappedFile::Open(path));
  ASSERT_OK_AND_ASSIGN(const gguf::GgufFile f, gguf::ParseGguf(mapped->bytes(), path));
  const gguf::GgufTensorInfo* codes = f.FindTensor("blk.1.ffn_down.weight");
  const gguf::GgufTensorInfo* scales = f.FindTensor("blk.1.ffn_down.row_scale");
  ASSERT_NE(codes, nullptr);
  ASSERT_NE(scales, nullptr);
  EXPECT_EQ(reinterpret_cast<const uint8_t*>(b.fp4.layers[1].w_down.row_scale) -
                b.fp4.layers[1].w_down.codes,
            static_cast<int64_t>(scales->offset) - static_cast<int64_t>(codes->offset));
}

TEST(GgufFp4Test, RoundTripHalves) { RoundTrip({}); }
TEST(GgufFp4Test, RoundTripHalvesWithBiasTied) { RoundTrip({.bias = true, .tied = true}); }
TEST(GgufFp4Test, RoundTripInterleavedWithBias) {
  RoundTrip({.rope = RopeStyle::kInterleaved, .bias = true, .seed = 11});
}
TEST(GgufFp4Test, RoundTripInterleavedEmbeddedTokenizer) {
  RoundTrip({.rope = RopeStyle::kInterleaved, .gguf_vocab = false, .seed = 12});
}
TEST(GgufFp4Test, RoundTripManySeeds) {
  for (uint32_t seed = 100; seed < 106; ++seed) {
    SCOPED_TRACE(seed);
    RoundTrip({.rope = seed % 2 ? RopeStyle::kHalves : RopeStyle::kInterleaved,
               .bias = seed % 3 == 0,
               .seed = seed});
  }
}

TEST(GgufFp4Test, ByteRowPermutationOfASmallMatrix) {
  // 2 heads of head_dim 4, rows of 2 bytes: rows [0 1 2 3 | 4 5 6 7] -> [0 2 1 3 | 4 6 5 7].
  std::vector<uint8_t> rows;
  for (uint8_t r = 0; r < 8; ++r) rows.insert(rows.end(), {r, static_cast<uint8_t>(0x80 | r)});
  const std::vector<uint8_t> got = PermuteRowsHalvesToInterleaved(rows, 2, 2);
  const std::vector<uint8_t> want = {0, 0x80, 2, 0x82, 1, 0x81, 3, 0x83,
                                     4, 0x84, 6, 0x86, 5, 0x85, 7, 0x87};
  EXPECT_EQ(got, want);
}

TEST(GgufFp4Test, TypeNumbers) {
  EXPECT_EQ(Fp4GgufType(Fp4Format::kE2M1), 1000u);
  EXPECT_EQ(Fp4GgufType(Fp4Format::kE3M0), 1001u);
  EXPECT_EQ(Fp4GgufType(Fp4Format::kE1M2), 1002u);
  for (Fp4Format f : {Fp4Format::kE2M1, Fp4Format::kE3M0, Fp4Format::kE1M2}) {
    EXPECT_EQ(Fp4FormatFromGgufType(Fp4GgufType(f)), f);
    EXPECT_EQ(ParseFp4FormatName(Fp4FormatName(f)), f);
    // The type name spells the same format as Fp4FormatName.
    std::string name = gguf::TensorTypeInfo(Fp4GgufType(f)).name;
    for (char& ch : name) ch = static_cast<char>(std::tolower(ch));
    EXPECT_EQ(name, absl::StrCat("fp4lm_", Fp4FormatName(f)));
  }
  EXPECT_EQ(Fp4FormatFromGgufType(999), std::nullopt);
  EXPECT_EQ(Fp4FormatFromGgufType(1003), std::nullopt);
  EXPECT_EQ(Fp4FormatFromGgufType(0), std::nullopt);
  EXPECT_EQ(ParseFp4FormatName("E2M1"), std::nullopt);
  // No ggml type uses these numbers, and none of ours hides a ggml type.
  for (uint32_t t = 0; t < 1100; ++t) {
    EXPECT_FALSE(gguf::GgmlTypeInfo(t).name != nullptr && gguf::Fp4lmTypeInfo(t).name != nullptr)
        << t;
  }
  EXPECT_EQ(gguf::Fp4lmTypeInfo(1000).block_size, 2);
  EXPECT_EQ(gguf::Fp4lmTypeInfo(1000).type_size, 1);
}

// ---- The container as a plain GGUF file ----

TEST(GgufFp4Test, ParsesAsPlainGguf) {
  const LoadedModel m = TinyW4A4({.bias = true});
  const std::string path = TempPath("plain.gguf");
  ASSERT_OK(WriteGgufModel(m, path));
  ASSERT_OK_AND_ASSIGN(auto mapped, MappedFile::Open(path));
  const std::span<const uint8_t> bytes = mapped->bytes();
  // The fixed header, read straight from the bytes.
  ASSERT_GE(bytes.size(), 24u);
  EXPECT_EQ(std::memcmp(bytes.data(), "GGUF", 4), 0);
  uint32_t version;
  std::memcpy(&version, bytes.data() + 4, 4);
  EXPECT_EQ(version, 3u);

  ASSERT_OK_AND_ASSIGN(const gguf::GgufFile f, gguf::ParseGguf(bytes, path));
  EXPECT_EQ(f.GetString("general.architecture").value_or(""), "llama");
  const GgufValue* v = f.Find("fp4lm.format_version");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->type, gguf::ValueType::kUint32);
  EXPECT_EQ(v->u, 1u);
  EXPECT_EQ(f.GetString("fp4lm.quantization").value_or(""), "w4a4");
  EXPECT_EQ(f.GetString("fp4lm.meta.method").value_or(""), "llm-fp4");
  EXPECT_FALSE(f.Has("general.file_type"));
  EXPECT_TRUE(f.Has("tokenizer.ggml.tokens"));
  EXPECT_TRUE(f.Has("tokenizer.chat_template"));
  const Fp4LayerWeights& l1 = m.weights.fp4.layers[1];
  const GgufValue* fmt = f.Find("fp4lm.blk.1.ffn_input.format");
  ASSERT_NE(fmt, nullptr);
  EXPECT_EQ(fmt->type, gguf::ValueType::kString);
  EXPECT_EQ(fmt->str, Fp4FormatName(l1.ffn_input.format));
  const GgufValue* scale = f.Find("fp4lm.blk.1.down_input.scale");
  ASSERT_NE(scale, nullptr);
  EXPECT_EQ(scale->type, gguf::ValueType::kFloat32);
  EXPECT_EQ(static_cast<float>(scale->f), l1.down_input.scale);

  for (const gguf::GgufTensorInfo& t : f.tensors) EXPECT_EQ(t.offset % 32, 0u) << t.name;
  struct Want {
    const char* name;
    int64_t out, in;
    Fp4Format format;
  };
  for (const Want& w :
       {Want{"blk.0.attn_q", 64, 64, m.weights.fp4.layers[0].wq.format},
        Want{"blk.1.attn_k", 32, 64, l1.wk.format}, Want{"blk.1.attn_output", 64, 64, l1.wo.format},
        Want{"blk.0.ffn_up", 96, 64, m.weights.fp4.layers[0].w_up.format},
        Want{"blk.1.ffn_down", 64, 96, l1.w_down.format}}) {
    const gguf::GgufTensorInfo* codes = f.FindTensor(absl::StrCat(w.name, ".weight"));
    ASSERT_NE(codes, nullptr) << w.name;
    EXPECT_EQ(codes->type, 1000u + static_cast<uint32_t>(w.format)) << w.name;
    EXPECT_EQ(codes->ne, (std::vector<int64_t>{w.in, w.out})) << w.name;  // ggml order
    EXPECT_EQ(codes->n_bytes, static_cast<uint64_t>(w.out * w.in / 2)) << w.name;
    const gguf::GgufTensorInfo* rs = f.FindTensor(absl::StrCat(w.name, ".row_scale"));
    ASSERT_NE(rs, nullptr) << w.name;
    EXPECT_EQ(rs->type, 0u) << w.name;
    EXPECT_EQ(rs->ne, (std::vector<int64_t>{w.out})) << w.name;
  }
  EXPECT_NE(f.FindTensor("blk.1.attn_v.bias"), nullptr);
  EXPECT_EQ(f.FindTensor("blk.1.ffn_up.bias"), nullptr);
  // Norms and embeddings stay F32.
  for (const char* name : {"token_embd.weight", "output.weight", "output_norm.weight",
                           "blk.0.attn_norm.weight", "blk.1.ffn_norm.weight"}) {
    const gguf::GgufTensorInfo* t = f.FindTensor(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->type, 0u) << name;
  }
  // The interleaved-RoPE file needs no permutation: its code bytes are the model's, in place.
  const LoadedModel mi = TinyW4A4({.rope = RopeStyle::kInterleaved});
  ASSERT_OK(WriteGgufModel(mi, path));
  ASSERT_OK_AND_ASSIGN(auto mapped_i, MappedFile::Open(path));
  ASSERT_OK_AND_ASSIGN(const gguf::GgufFile fi, gguf::ParseGguf(mapped_i->bytes(), path));
  const gguf::GgufTensorInfo* q = fi.FindTensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(std::memcmp(gguf::TensorBytes(fi, *q, mapped_i->bytes()).data(),
                        mi.weights.fp4.layers[0].wq.codes, q->n_bytes),
            0);
}

// ---- Damaged files ----

// A parsed file as editable parts, rebuilt with GgufBuilder.
struct Parts {
  std::vector<gguf::GgufKv> kvs;
  struct Tensor {
    std::string name;
    std::vector<int64_t> ne;
    uint32_t type;
    std::vector<uint8_t> data;
  };
  std::vector<Tensor> tensors;

  gguf::GgufKv* Kv(const std::string& key) {
    for (gguf::GgufKv& kv : kvs) {
      if (kv.key == key) return &kv;
    }
    ADD_FAILURE() << "no key " << key;
    return nullptr;
  }
  void EraseKv(const std::string& key) {
    std::erase_if(kvs, [&](const gguf::GgufKv& kv) { return kv.key == key; });
  }
  Tensor* Find(const std::string& name) {
    for (Tensor& t : tensors) {
      if (t.name == name) return &t;
    }
    ADD_FAILURE() << "no tensor " << name;
    return nullptr;
  }
  void Erase(const std::string& name) {
    std::erase_if(tensors, [&](const Tensor& t) { return t.name == name; });
  }
};

class DamagedFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = TinyW4A4({.bias = true});
    good_ = TempPath("good.gguf");
    ASSERT_OK(WriteGgufModel(model_, good_));
  }

  Parts Load() {
    Parts p;
    auto mapped = MappedFile::Open(good_);
    EXPECT_TRUE(mapped.ok());
    auto f = gguf::ParseGguf((*mapped)->bytes(), good_);
    EXPECT_TRUE(f.ok());
    p.kvs = f->kvs;
    for (const gguf::GgufTensorInfo& t : f->tensors) {
      const std::span<const uint8_t> b = gguf::TensorBytes(*f, t, (*mapped)->bytes());
      p.tensors.push_back({t.name, t.ne, t.type, {b.begin(), b.end()}});
    }
    return p;
  }

  absl::Status ReadEdited(const std::function<void(Parts&)>& edit) {
    Parts p = Load();
    edit(p);
    gguf::GgufBuilder b;
    for (gguf::GgufKv& kv : p.kvs) b.Add(kv.key, kv.value);
    for (Parts::Tensor& t : p.tensors) {
      const absl::Status s = b.AddTensorCopy(t.name, t.ne, t.type, t.data);
      if (!s.ok()) return s;
    }
    const std::string path = TempPath("edited.gguf");
    if (absl::Status s = b.WriteFile(path); !s.ok()) return s;
    return ReadGgufModel(path).status();
  }

  // Reads the good file with `bytes` written 4 bytes past the length-prefixed string `key`:
  // over the value of a metadata key (past its value type), or over ne[0] of a tensor info
  // (past its n_dims).
  absl::Status ReadPatched(const std::string& key, const std::string& bytes) {
    auto contents = ReadFileToString(good_);
    EXPECT_TRUE(contents.ok());
    std::string needle(8, '\0');
    const uint64_t n = key.size();
    std::memcpy(needle.data(), &n, 8);
    needle += key;
    const size_t at = contents->find(needle);
    EXPECT_NE(at, std::string::npos) << key;
    contents->replace(at + needle.size() + 4, bytes.size(), bytes);  // after the value type
    const std::string path = TempPath("patched.gguf");
    std::FILE* f = std::fopen(path.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    std::fwrite(contents->data(), 1, contents->size(), f);
    std::fclose(f);
    return ReadGgufModel(path).status();
  }

  LoadedModel model_;
  std::string good_;
};

using testing::ExpectError;

template <typename T>
std::string Le(T v) {
  return std::string(reinterpret_cast<const char*>(&v), sizeof(T));
}

TEST_F(DamagedFileTest, TheUneditedCopyReads) {
  EXPECT_OK(ReadEdited([](Parts&) {}));
}

TEST_F(DamagedFileTest, ActivationFormat) {
  const std::string key = "fp4lm.blk.1.ffn_input.format";
  ExpectError(ReadEdited([&](Parts& p) { p.Kv(key)->value = GgufValue::String("e5m2"); }),
              absl::StatusCode::kInvalidArgument, {key, "\"e5m2\"", "e2m1"});
  ExpectError(ReadEdited([&](Parts& p) { p.Kv(key)->value = GgufValue::String(""); }),
              absl::StatusCode::kInvalidArgument, {key, "found \"\""});
  ExpectError(ReadEdited([&](Parts& p) { p.Kv(key)->value = GgufValue::Uint32(0); }),
              absl::StatusCode::kInvalidArgument, {key, "expected string", "uint32"});
  ExpectError(ReadEdited([&](Parts& p) { p.EraseKv(key); }), absl::StatusCode::kNotFound, {key});
}

TEST_F(DamagedFileTest, ActivationScale) {
  const std::string key = "fp4lm.blk.0.attn_output.scale";
  for (float bad :
       {0.0f, -0.5f, std::numeric_limits<float>::quiet_NaN(),
        std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()}) {
    SCOPED_TRACE(bad);
    ExpectError(ReadEdited([&](Parts& p) { p.Kv(key)->value = GgufValue::Float32(bad); }),
                absl::StatusCode::kInvalidArgument, {key, "finite positive"});
  }
  // A float64 beyond float range is infinite once narrowed.
  ExpectError(ReadEdited([&](Parts& p) {
                GgufValue v;
                v.type = gguf::ValueType::kFloat64;
                v.f = 1e300;
                p.Kv(key)->value = v;
              }),
              absl::StatusCode::kInvalidArgument, {key});
  ExpectError(ReadEdited([&](Parts& p) { p.Kv(key)->value = GgufValue::String("1.0"); }),
              absl::StatusCode::kInvalidArgument, {key, "a number"});
  ExpectError(ReadEdited([&](Parts& p) { p.EraseKv(key); }), absl::StatusCode::kNotFound, {key});
}

TEST_F(DamagedFileTest, CodesShapeAndType) {
  ExpectError(ReadEdited([](Parts& p) {
                Parts::Tensor* t = p.Find("blk.0.attn_k.weight");
                t->ne = {64, 16};
                t->data.resize(64 * 16 / 2);
              }),
              absl::StatusCode::kInvalidArgument, {"blk.0.attn_k.weight", "[32, 64]", "[16, 64]"});
  // The transposed shape holds the same bytes but is still wrong.
  ExpectError(ReadEdited([](Parts& p) {
                p.Find("blk.1.ffn_down.weight")->ne = {64, 96};
              }),
              absl::StatusCode::kInvalidArgument, {"blk.1.ffn_down.weight", "[64, 96]"});
  ExpectError(ReadEdited([](Parts& p) {
                Parts::Tensor* t = p.Find("blk.1.ffn_up.weight");
                t->type = 0;  // F32 with the right element count
                t->data.assign(96 * 64 * 4, 0);
              }),
              absl::StatusCode::kInvalidArgument, {"blk.1.ffn_up.weight", "F32", "FP4LM_E2M1"});
  ExpectError(ReadEdited([](Parts& p) { p.Erase("blk.1.attn_output.weight"); }),
              absl::StatusCode::kNotFound, {"blk.1.attn_output.weight"});
  // An FP4 type where an FP32 tensor belongs.
  ExpectError(ReadEdited([](Parts& p) {
                Parts::Tensor* t = p.Find("token_embd.weight");
                t->type = 1000;
                t->data.resize(100 * 64 / 2);
              }),
              absl::StatusCode::kUnimplemented, {"token_embd.weight", "1000"});
}

TEST_F(DamagedFileTest, OddInFeatures) {
  // The container already refuses an odd FP4 row: half a byte cannot be addressed. (Our
  // builder will not write one, so the tensor info is patched: ne = [63, 64].)
  ExpectError(ReadPatched("blk.0.attn_q.weight", Le<uint64_t>(63)),
              absl::StatusCode::kInvalidArgument,
              {"blk.0.attn_q.weight", "ne[0] = 63", "in_features must be even"});
}

TEST_F(DamagedFileTest, RowScales) {
  ExpectError(ReadEdited([](Parts& p) { p.Erase("blk.1.ffn_up.row_scale"); }),
              absl::StatusCode::kNotFound, {"blk.1.ffn_up.row_scale"});
  ExpectError(ReadEdited([](Parts& p) {
                Parts::Tensor* t = p.Find("blk.0.attn_v.row_scale");
                t->ne = {31};
                t->data.resize(31 * 4);
              }),
              absl::StatusCode::kInvalidArgument, {"blk.0.attn_v.row_scale", "[32]", "[31]"});
  ExpectError(ReadEdited([](Parts& p) {
                Parts::Tensor* t = p.Find("blk.0.attn_v.row_scale");
                t->type = static_cast<uint32_t>(GgmlType::kF16);
                t->data.resize(32 * 2);
              }),
              absl::StatusCode::kInvalidArgument, {"blk.0.attn_v.row_scale", "F32", "F16"});
  for (float bad :
       {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(), -1.0f}) {
    SCOPED_TRACE(bad);
    ExpectError(ReadEdited([&](Parts& p) {
                  std::memcpy(p.Find("blk.0.attn_v.row_scale")->data.data() + 3 * 4, &bad, 4);
                }),
                absl::StatusCode::kInvalidArgument, {"blk.0.attn_v.row_scale", "row 3"});
  }
}

TEST_F(DamagedFileTest, Biases) {
  ExpectError(ReadEdited([](Parts& p) { p.Erase("blk.1.attn_k.bias"); }),
              absl::StatusCode::kNotFound, {"blk.1.attn_k.bias"});
  ExpectError(
      ReadEdited([](Parts& p) {
        p.tensors.push_back({"blk.0.attn_output.bias", {64}, 0, std::vector<uint8_t>(64 * 4, 0)});
      }),
      absl::StatusCode::kInvalidArgument, {"unexpected tensor 'blk.0.attn_output.bias'"});
}

TEST_F(DamagedFileTest, FormatVersion) {
  ExpectError(ReadPatched("fp4lm.format_version", Le<uint32_t>(2)),
              absl::StatusCode::kUnimplemented, {"fp4lm.format_version", "version 2", "(1)"});
  ExpectError(ReadPatched("fp4lm.format_version", Le<uint32_t>(1000000)),
              absl::StatusCode::kUnimplemented, {"version 1000000"});
  ExpectError(ReadPatched("fp4lm.format_version", Le<uint32_t>(0)),
              absl::StatusCode::kInvalidArgument, {"fp4lm.format_version", "found 0"});
  ExpectError(ReadEdited([](Parts& p) { p.EraseKv("fp4lm.format_version"); }),
              absl::StatusCode::kNotFound, {"fp4lm.format_version"});
  // A newer version is refused before its tensor types could confuse the parser.
  ExpectError(ReadEdited([](Parts& p) {
                p.Kv("fp4lm.format_version")->value = GgufValue::Uint32(3);
                p.Find("blk.0.attn_q.weight")->type = 1002;
              }),
              absl::StatusCode::kUnimplemented, {"version 3"});
}

TEST_F(DamagedFileTest, QuantizationScheme) {
  // Without "w4a4" the FP4 types are unknown types, with the existing error and a hint.
  ExpectError(ReadPatched("fp4lm.quantization", Le<uint64_t>(4) + "w4a5"),
              absl::StatusCode::kUnimplemented,
              {"unknown ggml tensor type 10", "fp4lm.quantization", "\"w4a5\""});
  // A builder refuses to write such a file at all.
  ExpectError(ReadEdited([](Parts& p) { p.EraseKv("fp4lm.quantization"); }),
              absl::StatusCode::kInvalidArgument, {"fp4lm.quantization", "FP4LM_"});
  // With every FP4 tensor gone, the scheme itself is refused.
  ExpectError(ReadEdited([](Parts& p) {
                p.Kv("fp4lm.quantization")->value = GgufValue::String("w8a8");
                std::erase_if(p.tensors,
                              [](const Parts::Tensor& t) { return gguf::IsFp4lmType(t.type); });
              }),
              absl::StatusCode::kUnimplemented, {"fp4lm.quantization", "\"w8a8\""});
}

TEST_F(DamagedFileTest, Metadata) {
  ExpectError(ReadEdited([](Parts& p) { p.Kv("fp4lm.meta.method")->value = GgufValue::Uint32(1); }),
              absl::StatusCode::kInvalidArgument, {"fp4lm.meta.method", "string"});
  ExpectError(ReadEdited([](Parts& p) {
                p.kvs.push_back({"fp4lm.meta.", GgufValue::String("x")});
              }),
              absl::StatusCode::kInvalidArgument, {"fp4lm.meta.", "empty"});
}

TEST_F(DamagedFileTest, FpFourTypesOutsideW4A4FilesAreUnknown) {
  // An FP32 model file with one tensor's type number patched to 1000: the existing error.
  LoadedModel fp32 = TinyW4A4({.rope = RopeStyle::kInterleaved});
  ModelWeights& w = fp32.weights;
  std::mt19937 rng(3);
  const int64_t d = 64, f = 96;
  for (LayerWeights& l : w.layers) {
    l.wq = RandomF32(w, {d, d}, rng);
    l.wk = RandomF32(w, {32, d}, rng);
    l.wv = RandomF32(w, {32, d}, rng);
    l.wo = RandomF32(w, {d, d}, rng);
    l.w_gate = RandomF32(w, {f, d}, rng);
    l.w_up = RandomF32(w, {f, d}, rng);
    l.w_down = RandomF32(w, {d, f}, rng);
  }
  w.fp4 = Fp4ModelWeights{};
  const std::string path = TempPath("fp32.gguf");
  ASSERT_OK(WriteGgufModel(fp32, path));
  ASSERT_OK(ReadGgufModel(path).status());
  ASSERT_OK_AND_ASSIGN(std::string bytes, ReadFileToString(path));
  const std::string name = "output_norm.weight";
  const size_t at = bytes.find(Le<uint64_t>(name.size()) + name);
  ASSERT_NE(at, std::string::npos);
  const size_t type_at = at + 8 + name.size() + 4 + 8;  // n_dims, one ne
  uint32_t type;
  std::memcpy(&type, bytes.data() + type_at, 4);
  ASSERT_EQ(type, 0u);
  bytes.replace(type_at, 4, Le<uint32_t>(1000));
  const std::string patched = TempPath("fp32-patched.gguf");
  std::FILE* file = std::fopen(patched.c_str(), "wb");
  ASSERT_NE(file, nullptr);
  std::fwrite(bytes.data(), 1, bytes.size(), file);
  std::fclose(file);
  ExpectError(ReadGgufModel(patched).status(), absl::StatusCode::kUnimplemented,
              {"tensor 'output_norm.weight'", "unknown ggml tensor type 1000", "no such key"});
}

TEST(GgufFp4Test, EveryPrefixOfASmallFileFailsCleanly) {
  const LoadedModel m = TinyW4A4(
      {.dim = 16, .layers = 1, .heads = 2, .kv_heads = 1, .ffn = 8, .vocab = 8, .seed = 5});
  const std::string path = TempPath("small.gguf");
  ASSERT_OK(WriteGgufModel(m, path));
  ASSERT_OK_AND_ASSIGN(const std::string bytes, ReadFileToString(path));
  ASSERT_OK_AND_ASSIGN(auto mapped, MappedFile::Open(path));
  ASSERT_OK_AND_ASSIGN(const gguf::GgufFile f, gguf::ParseGguf(mapped->bytes(), path));
  uint64_t data_end = 0;
  for (const gguf::GgufTensorInfo& t : f.tensors) {
    data_end = std::max(data_end, f.data_offset + t.offset + t.n_bytes);
  }
  ASSERT_LE(data_end, bytes.size());
  ASSERT_LT(bytes.size(), 20000u) << "keep this test small";
  const std::string prefix_path = TempPath("prefix.gguf");
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::FILE* file = std::fopen(prefix_path.c_str(), "wb");
    ASSERT_NE(file, nullptr);
    if (n > 0) {
      ASSERT_EQ(std::fwrite(bytes.data(), 1, n, file), n);
    }
    std::fclose(file);
    const absl::Status s = ReadGgufModel(prefix_path).status();
    if (n < data_end) {
      ASSERT_FALSE(s.ok()) << "prefix of " << n << " bytes read";
      ASSERT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << n << ": " << s;
      ASSERT_THAT(std::string(s.message()), HasSubstr(prefix_path)) << n;
    } else {
      // Only the padding after the last tensor is missing: the data is all there.
      ASSERT_OK(s);
    }
  }
}

// ---- The writer refuses models it cannot store faithfully ----

TEST(GgufFp4Test, WriterRefusals) {
  const std::string path = TempPath("refused.gguf");
  {
    const LoadedModel m = TinyW4A4({.ffn = 95});  // ffn_down has odd in_features
    ExpectError(WriteGgufModel(m, path), absl::StatusCode::kInvalidArgument,
                {"layers.0.w_down", "in_features 95 is odd"});
  }
  {
    LoadedModel m = TinyW4A4({});
    std::vector<float> scales(m.weights.fp4.layers[1].wk.row_scale,
                              m.weights.fp4.layers[1].wk.row_scale + 32);
    scales[5] = std::numeric_limits<float>::quiet_NaN();
    m.weights.fp4.layers[1].wk.row_scale = m.weights.OwnFloats(scales);
    ExpectError(WriteGgufModel(m, path), absl::StatusCode::kInvalidArgument,
                {"blk.1.attn_k.row_scale", "row 5"});
  }
  {
    LoadedModel m = TinyW4A4({});
    m.weights.fp4.layers[0].down_input.scale = 0.0f;
    ExpectError(WriteGgufModel(m, path), absl::StatusCode::kInvalidArgument,
                {"layers.0.down_input"});
  }
  {
    LoadedModel m = TinyW4A4({});
    m.weights.fp4.metadata.push_back({"method", "rtn"});
    ExpectError(WriteGgufModel(m, path), absl::StatusCode::kInvalidArgument,
                {"'method'", "duplicated"});
    m.weights.fp4.metadata.back().first = "";
    ExpectError(WriteGgufModel(m, path), absl::StatusCode::kInvalidArgument, {"empty"});
  }
  {
    // Without the w4a4 key a builder will not write an FP4 tensor.
    gguf::GgufBuilder b;
    const std::vector<uint8_t> codes(8);
    ASSERT_OK(b.AddTensor("w", {4, 4}, Fp4GgufType(Fp4Format::kE2M1), codes));
    ExpectError(b.WriteFile(path), absl::StatusCode::kInvalidArgument,
                {"tensor 'w'", "FP4LM_E2M1", "fp4lm.quantization"});
    // An odd row cannot be added at all.
    EXPECT_FALSE(b.AddTensor("odd", {3, 2}, Fp4GgufType(Fp4Format::kE2M1), codes).ok());
  }
}

}  // namespace
}  // namespace engine::model
