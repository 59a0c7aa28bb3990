// End to end, the engine's fast W4A4 path (VNNI GEMM, fused producers, threads, vectorized
// attention) against a forward pass built only from the scalar references of kernels/ref, on
// quantized stories260K, tinystories-656K and SmolLM2-135M: the greedy continuation must be the
// same token for token, and the logits close (the references differ from the fast FP32 ops
// only in summation order and exp; every W4A4 linear is bit-exact).
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend_weights.h"
#include "engine/engine.h"
#include "engine/internal.h"
#include "gtest/gtest.h"
#include "kernels/ref/ops_ref.h"
#include "kernels/ref/w4a4_ref.h"
#include "quantizer/quantize_model.h"
#include "tests/test_util.h"

namespace engine {
namespace {

using kernels::AttentionShape;

Fp4Kind KindOf(model::Fp4Format f) { return static_cast<Fp4Kind>(f); }

// A W4A4 decoder from kernels/ref only, fed one token at a time, with the engine's sink rule:
// a sequence that starts with the sink token takes its stored keys, values and logits.
class ReferenceW4A4 {
 public:
  ReferenceW4A4(const model::LoadedModel& m, int32_t capacity) : m_(m), capacity_(capacity) {
    const model::ModelConfig& c = m.config;
    k_cache_.assign(c.n_layers, std::vector<float>(size_t(c.n_kv_heads) * capacity * c.head_dim));
    v_cache_ = k_cache_;
    // The engine runs the head as int8 rows (the same conversion) through MatMulI8Ref.
    absl::StatusOr<I8Rows> head =
        ConvertToI8Rows(m.weights.output.data, c.vocab_size, c.model_dim, "output head");
    EXPECT_TRUE(head.ok()) << head.status();
    if (head.ok()) head_ = *std::move(head);
  }

  std::vector<float> Feed(int32_t token) {
    const model::ModelConfig& c = m_.config;
    const model::ModelWeights& w = m_.weights;
    const int64_t d = c.model_dim, f = c.ffn_dim, qd = c.q_dim(), kvd = c.kv_dim();
    const int32_t pos = size_++;
    const model::Fp4Sink& sink = w.fp4.sink;
    if (pos == 0 && !sink.empty() && token == sink.token) {
      for (int32_t l = 0; l < c.n_layers; ++l) WriteKv(l, 0, sink.keys + l * kvd, sink.values + l * kvd);
      return std::vector<float>(sink.logits, sink.logits + c.vocab_size);
    }
    std::vector<float> x(w.token_embedding.data + int64_t{token} * d,
                         w.token_embedding.data + (int64_t{token} + 1) * d);
    std::vector<float> xn(d), q(qd), k(kvd), v(kvd), att(qd), gate(f), up(f);
    std::vector<uint8_t> codes(std::max({d, qd, f}) / 2);
    const auto pairing = c.rope_style == model::RopeStyle::kInterleaved
                             ? kernels::RopePairing::kInterleaved
                             : kernels::RopePairing::kHalves;
    for (int32_t l = 0; l < c.n_layers; ++l) {
      const model::Fp4LayerWeights& fl = w.fp4.layers[l];
      kernels::RmsNormRef(x.data(), w.layers[l].attn_norm.data, xn.data(), 1, d, c.norm_eps);
      Quantize(xn.data(), d, fl.attn_input, codes.data());
      Linear(codes.data(), fl.attn_input, fl.wq, q.data(), false);
      Linear(codes.data(), fl.attn_input, fl.wk, k.data(), false);
      Linear(codes.data(), fl.attn_input, fl.wv, v.data(), false);
      kernels::RopeRef(q.data(), &pos, 1, c.n_heads, c.head_dim, c.rope_theta, pairing);
      kernels::RopeRef(k.data(), &pos, 1, c.n_kv_heads, c.head_dim, c.rope_theta, pairing);
      WriteKv(l, pos, k.data(), v.data());
      kernels::AttentionRef(q.data(), k_cache_[l].data(), v_cache_[l].data(), &pos, att.data(),
                            AttentionShape{.m = 1, .n_heads = c.n_heads,
                                           .n_kv_heads = c.n_kv_heads, .head_dim = c.head_dim,
                                           .capacity = capacity_});
      Quantize(att.data(), qd, fl.attn_output, codes.data());
      Linear(codes.data(), fl.attn_output, fl.wo, x.data(), true);
      kernels::RmsNormRef(x.data(), w.layers[l].ffn_norm.data, xn.data(), 1, d, c.norm_eps);
      Quantize(xn.data(), d, fl.ffn_input, codes.data());
      Linear(codes.data(), fl.ffn_input, fl.w_gate, gate.data(), false);
      Linear(codes.data(), fl.ffn_input, fl.w_up, up.data(), false);
      kernels::SiluMulRef(gate.data(), up.data(), gate.data(), f);
      Quantize(gate.data(), f, fl.down_input, codes.data());
      Linear(codes.data(), fl.down_input, fl.w_down, x.data(), true);
    }
    kernels::RmsNormRef(x.data(), w.final_norm.data, xn.data(), 1, d, c.norm_eps);
    std::vector<float> logits(c.vocab_size);
    kernels::MatMulI8Ref(xn.data(), head_.q.get(), head_.scale.get(), nullptr, logits.data(), 1,
                         c.vocab_size, d);
    return logits;
  }

 private:
  static void Quantize(const float* x, int64_t k, const model::ActQuant& a, uint8_t* codes) {
    kernels::QuantizeActivationsRef(x, 1, k, KindOf(a.format), 1.0f / a.scale, codes);
  }
  static void Linear(const uint8_t* codes, const model::ActQuant& a, const model::Fp4Linear& w,
                     float* y, bool accumulate) {
    kernels::Fp4LinearRef({.a_codes = codes, .a_kind = KindOf(a.format), .a_scale = a.scale,
                           .w_codes = w.codes, .w_kind = KindOf(w.format),
                           .row_scale = w.row_scale, .bias = w.bias, .m = 1,
                           .n = w.out_features, .k = w.in_features, .y = y,
                           .accumulate = accumulate});
  }
  void WriteKv(int32_t l, int32_t pos, const float* k, const float* v) {
    const model::ModelConfig& c = m_.config;
    for (int32_t h = 0; h < c.n_kv_heads; ++h) {
      const size_t dst = (size_t(h) * capacity_ + pos) * c.head_dim;
      std::copy_n(k + h * c.head_dim, c.head_dim, k_cache_[l].begin() + dst);
      std::copy_n(v + h * c.head_dim, c.head_dim, v_cache_[l].begin() + dst);
    }
  }

  const model::LoadedModel& m_;
  int32_t capacity_;
  int32_t size_ = 0;
  std::vector<std::vector<float>> k_cache_, v_cache_;
  I8Rows head_;
};

int32_t Argmax(const std::vector<float>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

// Quantizes `fp_path` (small calibration), then compares greedy generation of `n_new` tokens
// after `prompt` (with BOS where the tokenizer adds one) between the engine and the reference.
void ExpectSameGreedy(const std::string& fp_path, const std::string& prompt, int n_new) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Model> fp, Model::Load({.path = fp_path, .num_threads = 2}));
  // A small calibration and search: any quantized model serves, the kernels are under test.
  quantizer::QuantizeOptions o;
  o.calibration.samples = 2;
  o.calibration.length = 64;
  o.e2m1_only = true;
  o.gptq = false;
  o.search_rows = 128;
  o.num_threads = 2;
  ASSERT_OK_AND_ASSIGN(model::LoadedModel q, quantizer::QuantizeModel(*fp, o));
  const std::string path = testing::TempDir() + "/fast_vs_reference.gguf";
  ASSERT_OK(quantizer::SaveQuantizedModel(q, path));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Model> w4a4, Model::Load({.path = path, .num_threads = 2}));
  ASSERT_OK_AND_ASSIGN(std::vector<TokenId> tokens, w4a4->Tokenize(prompt, /*add_bos=*/true));
  ASSERT_GE(tokens.size(), 2u);

  // Fast: the engine's session, prompt prefilled in one batch, then one token at a time.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Session> session, Session::Create(*w4a4));
  ASSERT_OK(session->Prefill(tokens));
  std::vector<TokenId> fast;
  std::vector<std::vector<float>> fast_logits;
  for (int i = 0; i < n_new; ++i) {
    const std::span<const float> logits = session->Logits();
    fast_logits.emplace_back(logits.begin(), logits.end());
    ASSERT_OK_AND_ASSIGN(TokenId t, session->Step({.temperature = 0.0f}));
    fast.push_back(t);
  }

  // Reference: the same model as loaded, fed one token at a time, behind the implicit sink
  // prefix the engine puts in front of a sequence that does not start with the sink token.
  const model::LoadedModel& loaded = LoadedModelOf(*w4a4);
  ReferenceW4A4 ref(loaded, static_cast<int32_t>(tokens.size()) + n_new + 1);
  const model::Fp4Sink& sink = loaded.weights.fp4.sink;
  if (!sink.empty() && tokens[0] != sink.token) ref.Feed(sink.token);
  std::vector<float> logits;
  for (TokenId t : tokens) logits = ref.Feed(t);
  std::vector<TokenId> slow;
  double max_diff = 0.0;
  for (int i = 0; i < n_new; ++i) {
    for (size_t j = 0; j < logits.size(); ++j) {
      max_diff = std::max(max_diff, double(std::fabs(logits[j] - fast_logits[i][j])));
    }
    slow.push_back(Argmax(logits));
    logits = ref.Feed(slow.back());
  }
  EXPECT_EQ(fast, slow) << "greedy continuations differ";
  // Summation order and exp: a few float ulps per op, amplified over the layers.
  EXPECT_LT(max_diff, 2e-2) << "largest logit difference along the greedy path";
  EXPECT_GT(n_new, 0);
}

TEST(W4A4FastVsReferenceTest, Stories260KGreedyIdentical) {
  ExpectSameGreedy(testing::SharedPath("models/stories260K/stories260K.bin"), "Once upon a time",
                   48);
}

TEST(W4A4FastVsReferenceTest, TinyStories656KGreedyIdentical) {
  ExpectSameGreedy(testing::SharedPath("models/tinystories-656K"), "Once upon a time", 48);
}

TEST(W4A4FastVsReferenceTest, SmolLm2GreedyIdentical) {
  const std::string path = testing::SmolLm2Path();
  if (path.empty()) GTEST_SKIP() << "SmolLM2-135M-Instruct not fetched (scripts/fetch-model)";
  ExpectSameGreedy(path, "The capital of France is", 16);
}

}  // namespace
}  // namespace engine
