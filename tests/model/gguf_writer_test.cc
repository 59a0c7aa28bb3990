// GGUF writing: a random tiny model survives a write/read round trip (config, every tensor bit
// for bit, Q/K rows permuted exactly as llama.cpp's converter does for a halves-RoPE model), the
// container matches the GGUF layout, and tokenizers are embedded.
#include "model/gguf_writer.h"

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/gguf_file.h"
#include "model/gguf_reader.h"
#include "model/mapped_file.h"
#include "tests/test_util.h"

namespace engine::model {
namespace {

using ::testing::HasSubstr;

struct TinyOptions {
  bool tied = false;
  RopeStyle rope = RopeStyle::kHalves;
  bool bias = false;
};

F32Tensor Random(ModelWeights& w, std::vector<int64_t> shape, std::mt19937& rng) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return w.Own(std::move(v), std::move(shape));
}

// dim 64, 2 layers, 4 heads, 2 kv heads, ffn 96, vocab 100, with a GGUF vocabulary.
LoadedModel TinyModel(const TinyOptions& o) {
  LoadedModel m;
  m.path = "/tmp/tiny-model.safetensors";
  m.format = ModelFormat::kHuggingFace;
  ModelConfig& c = m.config;
  c.model_dim = 64;
  c.ffn_dim = 96;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 16;
  c.vocab_size = 100;
  c.max_seq_len = 256;
  c.norm_eps = 1e-6f;
  c.rope_theta = 10000.0f;
  c.rope_style = o.rope;
  c.tied_embeddings = o.tied;
  c.qkv_bias = o.bias;
  std::mt19937 rng(42);
  ModelWeights& w = m.weights;
  const int64_t d = c.model_dim, f = c.ffn_dim, q = c.q_dim(), kv = c.kv_dim(), v = c.vocab_size;
  w.token_embedding = Random(w, {v, d}, rng);
  w.final_norm = Random(w, {d}, rng);
  w.output = o.tied ? w.token_embedding : Random(w, {v, d}, rng);
  for (int i = 0; i < c.n_layers; ++i) {
    LayerWeights l;
    l.attn_norm = Random(w, {d}, rng);
    l.wq = Random(w, {q, d}, rng);
    l.wk = Random(w, {kv, d}, rng);
    l.wv = Random(w, {kv, d}, rng);
    if (o.bias) {
      l.bq = Random(w, {q}, rng);
      l.bk = Random(w, {kv}, rng);
      l.bv = Random(w, {kv}, rng);
    }
    l.wo = Random(w, {d, q}, rng);
    l.ffn_norm = Random(w, {d}, rng);
    l.w_gate = Random(w, {f, d}, rng);
    l.w_up = Random(w, {f, d}, rng);
    l.w_down = Random(w, {d, f}, rng);
    w.layers.push_back(l);
  }
  m.tokenizer.kind = TokenizerSource::Kind::kGguf;
  GgufVocab& g = m.tokenizer.gguf;
  g.model = "gpt2";
  g.pre = "smollm";
  for (int i = 0; i < v; ++i) g.tokens.push_back(absl::StrCat("tok", i));
  g.token_types.assign(static_cast<size_t>(v), 1);
  g.token_types[0] = 3;
  g.merges = {"t o", "to k"};
  g.bos_id = 1;
  g.eos_id = 2;
  g.pad_id = 2;
  g.add_bos = false;
  g.add_space_prefix = false;
  m.chat_template = "{% for m in messages %}<|im_start|>{{ m.content }}{% endfor %}";
  return m;
}

void ExpectBitIdentical(const F32Tensor& a, const F32Tensor& b, const std::string& what) {
  ASSERT_EQ(a.shape, b.shape) << what;
  ASSERT_EQ(std::memcmp(a.data, b.data, static_cast<size_t>(a.num_elements()) * 4), 0) << what;
}

// Row r = h*hd + 2i + j of the written tensor must be original row h*hd + j*hd/2 + i.
void ExpectPermuted(const F32Tensor& written, const F32Tensor& original, int heads,
                    const std::string& what) {
  ASSERT_EQ(written.shape, original.shape) << what;
  const int64_t rows = original.dim(0);
  const int64_t cols = original.shape.size() > 1 ? original.dim(1) : 1;
  const int64_t hd = rows / heads;
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t i = 0; i < hd / 2; ++i) {
      for (int64_t j = 0; j < 2; ++j) {
        const float* w = written.data + (h * hd + 2 * i + j) * cols;
        const float* o = original.data + (h * hd + j * (hd / 2) + i) * cols;
        ASSERT_EQ(std::memcmp(w, o, static_cast<size_t>(cols) * 4), 0)
            << what << " head " << h << " pair " << i << " slot " << j;
      }
    }
  }
}

void RoundTrip(const TinyOptions& o) {
  const LoadedModel m = TinyModel(o);
  const std::string path = absl::StrCat(engine::testing::TempDir(), "/tiny.gguf");
  ASSERT_OK(WriteGgufModel(m, path));
  ASSERT_OK_AND_ASSIGN(const LoadedModel r, ReadGgufModel(path));

  ModelConfig want = m.config;
  want.rope_style = RopeStyle::kInterleaved;
  const ModelConfig& got = r.config;
  EXPECT_EQ(got.architecture, "llama");
  EXPECT_EQ(got.model_dim, want.model_dim);
  EXPECT_EQ(got.ffn_dim, want.ffn_dim);
  EXPECT_EQ(got.n_layers, want.n_layers);
  EXPECT_EQ(got.n_heads, want.n_heads);
  EXPECT_EQ(got.n_kv_heads, want.n_kv_heads);
  EXPECT_EQ(got.head_dim, want.head_dim);
  EXPECT_EQ(got.vocab_size, want.vocab_size);
  EXPECT_EQ(got.max_seq_len, want.max_seq_len);
  EXPECT_EQ(got.norm_eps, want.norm_eps);
  EXPECT_EQ(got.rope_theta, want.rope_theta);
  EXPECT_EQ(got.rope_style, RopeStyle::kInterleaved);
  EXPECT_EQ(got.tied_embeddings, want.tied_embeddings);
  EXPECT_EQ(got.qkv_bias, want.qkv_bias);

  const ModelWeights& a = m.weights;
  const ModelWeights& b = r.weights;
  ExpectBitIdentical(b.token_embedding, a.token_embedding, "token_embedding");
  ExpectBitIdentical(b.final_norm, a.final_norm, "final_norm");
  ExpectBitIdentical(b.output, a.output, "output");
  if (o.tied) {
    EXPECT_EQ(b.output.data, b.token_embedding.data);
  }
  const bool permuted = o.rope == RopeStyle::kHalves;
  for (size_t i = 0; i < a.layers.size(); ++i) {
    const LayerWeights& la = a.layers[i];
    const LayerWeights& lb = b.layers[i];
    const std::string p = absl::StrCat("layer ", i, " ");
    if (permuted) {
      ExpectPermuted(lb.wq, la.wq, m.config.n_heads, p + "wq");
      ExpectPermuted(lb.wk, la.wk, m.config.n_kv_heads, p + "wk");
      if (o.bias) {
        ExpectPermuted(lb.bq, la.bq, m.config.n_heads, p + "bq");
        ExpectPermuted(lb.bk, la.bk, m.config.n_kv_heads, p + "bk");
      }
    } else {
      ExpectBitIdentical(lb.wq, la.wq, p + "wq");
      ExpectBitIdentical(lb.wk, la.wk, p + "wk");
      if (o.bias) {
        ExpectBitIdentical(lb.bq, la.bq, p + "bq");
        ExpectBitIdentical(lb.bk, la.bk, p + "bk");
      }
    }
    if (o.bias) ExpectBitIdentical(lb.bv, la.bv, p + "bv");
    ExpectBitIdentical(lb.attn_norm, la.attn_norm, p + "attn_norm");
    ExpectBitIdentical(lb.wv, la.wv, p + "wv");
    ExpectBitIdentical(lb.wo, la.wo, p + "wo");
    ExpectBitIdentical(lb.ffn_norm, la.ffn_norm, p + "ffn_norm");
    ExpectBitIdentical(lb.w_gate, la.w_gate, p + "w_gate");
    ExpectBitIdentical(lb.w_up, la.w_up, p + "w_up");
    ExpectBitIdentical(lb.w_down, la.w_down, p + "w_down");
  }

  EXPECT_EQ(r.tokenizer.kind, TokenizerSource::Kind::kGguf);
  const GgufVocab& va = m.tokenizer.gguf;
  const GgufVocab& vb = r.tokenizer.gguf;
  EXPECT_EQ(vb.model, va.model);
  EXPECT_EQ(vb.pre, va.pre);
  EXPECT_EQ(vb.tokens, va.tokens);
  EXPECT_EQ(vb.scores, va.scores);
  EXPECT_EQ(vb.token_types, va.token_types);
  EXPECT_EQ(vb.merges, va.merges);
  EXPECT_EQ(vb.bos_id, va.bos_id);
  EXPECT_EQ(vb.eos_id, va.eos_id);
  EXPECT_EQ(vb.unk_id, -1);
  EXPECT_EQ(vb.pad_id, va.pad_id);
  EXPECT_EQ(vb.add_bos, va.add_bos);
  EXPECT_EQ(vb.add_space_prefix, va.add_space_prefix);
  EXPECT_EQ(r.chat_template, m.chat_template);
  for (const SourceTensorInfo& t : r.tensors) EXPECT_EQ(t.dtype, "F32") << t.name;
  EXPECT_EQ(r.tensors.size(), 2u + (o.tied ? 0 : 1) + 2 * (9u + (o.bias ? 3 : 0)));
}

TEST(GgufWriterTest, RoundTripHalvesUntied) { RoundTrip({.tied = false}); }
TEST(GgufWriterTest, RoundTripHalvesTied) { RoundTrip({.tied = true}); }
TEST(GgufWriterTest, RoundTripHalvesWithBias) { RoundTrip({.tied = true, .bias = true}); }
TEST(GgufWriterTest, RoundTripInterleavedIsNotPermuted) {
  RoundTrip({.tied = false, .rope = RopeStyle::kInterleaved, .bias = true});
}

TEST(GgufWriterTest, PermutationOfASmallMatrix) {
  // 2 heads of head_dim 4, one column: rows [0 1 2 3 | 4 5 6 7] become [0 2 1 3 | 4 6 5 7].
  const std::vector<float> rows = {0, 1, 2, 3, 4, 5, 6, 7};
  const F32Tensor t{.data = rows.data(), .shape = {8}};
  EXPECT_EQ(PermuteHalvesToInterleaved(t, 2), (std::vector<float>{0, 2, 1, 3, 4, 6, 5, 7}));
  // head_dim 6: [0 1 2 | 3 4 5] -> [0 3 1 4 2 5], with two columns per row.
  const std::vector<float> m = {0, 10, 1, 11, 2, 12, 3, 13, 4, 14, 5, 15};
  const F32Tensor w{.data = m.data(), .shape = {6, 2}};
  EXPECT_EQ(PermuteHalvesToInterleaved(w, 1),
            (std::vector<float>{0, 10, 3, 13, 1, 11, 4, 14, 2, 12, 5, 15}));
}

TEST(GgufWriterTest, ContainerLayout) {
  const LoadedModel m = TinyModel({.tied = true});
  const std::string path = absl::StrCat(engine::testing::TempDir(), "/layout.gguf");
  ASSERT_OK(WriteGgufModel(m, path));
  ASSERT_OK_AND_ASSIGN(auto mapped, MappedFile::Open(path));
  ASSERT_OK_AND_ASSIGN(const gguf::GgufFile f, gguf::ParseGguf(mapped->bytes(), path));
  EXPECT_EQ(f.version, 3u);
  EXPECT_EQ(f.alignment, 32u);
  EXPECT_EQ(f.data_offset % 32, 0u);
  EXPECT_EQ(f.GetString("general.architecture").value_or(""), "llama");
  EXPECT_EQ(f.GetString("general.name").value_or(""), "tiny-model");
  EXPECT_EQ(f.GetInt("llama.embedding_length").value_or(0), 64);
  EXPECT_EQ(f.GetInt("llama.rope.dimension_count").value_or(0), 16);
  EXPECT_EQ(f.FindTensor("output.weight"), nullptr);
  for (const gguf::GgufTensorInfo& t : f.tensors) {
    EXPECT_EQ(t.offset % 32, 0u) << t.name;
    EXPECT_EQ(t.type, 0u) << t.name;
  }
  const gguf::GgufTensorInfo* q = f.FindTensor("blk.1.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->ne, (std::vector<int64_t>{64, 64}));
  const gguf::GgufTensorInfo* k = f.FindTensor("blk.0.attn_k.weight");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->ne, (std::vector<int64_t>{64, 32}));  // [in, out]
  const gguf::GgufTensorInfo* down = f.FindTensor("blk.0.ffn_down.weight");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->ne, (std::vector<int64_t>{96, 64}));
  // The last tensor ends within one alignment of the end of the file.
  const gguf::GgufTensorInfo& last = f.tensors.back();
  EXPECT_LE(f.data_offset + last.offset + last.n_bytes, f.file_size);
  EXPECT_GT(f.data_offset + last.offset + last.n_bytes + 32, f.file_size);
}

TEST(GgufWriterTest, EmbedsNonGgufTokenizers) {
  const std::string spm =
      engine::testing::SharedPath("tokenizers/llama2-sentencepiece/tokenizer.model");
  if (!engine::testing::FileExists(spm)) GTEST_SKIP() << spm << " is missing";
  LoadedModel m = TinyModel({});
  m.tokenizer = TokenizerSource{};
  m.tokenizer.kind = TokenizerSource::Kind::kSentencePieceFile;
  m.tokenizer.path = spm;
  m.tokenizer.bos_id = 1;
  m.tokenizer.eos_id = 2;
  const std::string path = absl::StrCat(engine::testing::TempDir(), "/spm.gguf");
  ASSERT_OK(WriteGgufModel(m, path));
  ASSERT_OK_AND_ASSIGN(const LoadedModel r, ReadGgufModel(path));
  ASSERT_OK_AND_ASSIGN(const std::string want, ReadFileToString(spm));
  EXPECT_EQ(r.tokenizer.kind, TokenizerSource::Kind::kSentencePieceFile);
  EXPECT_EQ(r.tokenizer.embedded, want);
  EXPECT_EQ(r.tokenizer.bos_id, 1);
  EXPECT_EQ(r.tokenizer.eos_id, 2);
  EXPECT_EQ(r.config.vocab_size, 100);  // from llama.vocab_size

  // `embedded` wins over `path`; kinds round trip.
  m.tokenizer = TokenizerSource{};
  m.tokenizer.kind = TokenizerSource::Kind::kHfTokenizerJson;
  m.tokenizer.path = "/nonexistent/tokenizer.json";
  m.tokenizer.embedded = R"({"model": {"type": "BPE"}})";
  ASSERT_OK(WriteGgufModel(m, path));
  ASSERT_OK_AND_ASSIGN(const LoadedModel r2, ReadGgufModel(path));
  EXPECT_EQ(r2.tokenizer.kind, TokenizerSource::Kind::kHfTokenizerJson);
  EXPECT_EQ(r2.tokenizer.embedded, m.tokenizer.embedded);
  EXPECT_EQ(r2.tokenizer.bos_id, -1);

  m.tokenizer.kind = TokenizerSource::Kind::kLlama2cFile;
  ASSERT_OK(WriteGgufModel(m, path));
  ASSERT_OK_AND_ASSIGN(const LoadedModel r3, ReadGgufModel(path));
  EXPECT_EQ(r3.tokenizer.kind, TokenizerSource::Kind::kLlama2cFile);
}

TEST(GgufWriterTest, ErrorsNameThePath) {
  LoadedModel m = TinyModel({});
  const absl::Status bad_dir = WriteGgufModel(m, "/nonexistent-dir/x.gguf");
  EXPECT_FALSE(bad_dir.ok());
  EXPECT_THAT(std::string(bad_dir.message()), HasSubstr("/nonexistent-dir/x.gguf"));

  m.tokenizer = TokenizerSource{};
  m.tokenizer.kind = TokenizerSource::Kind::kSentencePieceFile;
  m.tokenizer.path = "/nonexistent/tokenizer.model";
  const absl::Status bad_tok =
      WriteGgufModel(m, absl::StrCat(engine::testing::TempDir(), "/t.gguf"));
  EXPECT_EQ(bad_tok.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(bad_tok.message()), HasSubstr("/nonexistent/tokenizer.model"));

  // A GGUF vocabulary that does not match vocab_size would make an unreadable file.
  LoadedModel short_vocab = TinyModel({});
  short_vocab.tokenizer.gguf.tokens.pop_back();
  const absl::Status bad_vocab =
      WriteGgufModel(short_vocab, absl::StrCat(engine::testing::TempDir(), "/v.gguf"));
  EXPECT_EQ(bad_vocab.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad_vocab.message()), HasSubstr("99 tokens"));

  // Weights that disagree with the config are refused before anything is written.
  LoadedModel broken = TinyModel({});
  broken.weights.layers[1].w_up.shape = {95, 64};
  const absl::Status bad_shape =
      WriteGgufModel(broken, absl::StrCat(engine::testing::TempDir(), "/b.gguf"));
  EXPECT_EQ(bad_shape.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad_shape.message()), HasSubstr("layers.1.w_up"));
}

}  // namespace
}  // namespace engine::model
