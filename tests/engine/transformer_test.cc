// The engine's forward pass against an independent reference built from the scalar ops of
// kernels/ref, on a tiny random Qwen2-style model (q/k/v biases, untied head, halves RoPE,
// grouped-query attention) stored the way Hugging Face shards it: BF16 tensors in two
// safetensors files behind model.safetensors.index.json.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "engine/engine.h"
#include "gtest/gtest.h"
#include "kernels/core/half.h"
#include "kernels/ref/ops_ref.h"
#include "nlohmann/json.hpp"
#include "tests/test_util.h"

namespace engine {
namespace {

constexpr int kDim = 48, kFfn = 80, kLayers = 2, kHeads = 6, kKvHeads = 2, kVocab = 512;
constexpr int kHeadDim = kDim / kHeads;
constexpr float kEps = 1e-6f, kTheta = 10000.0f;
// Float32 kernels vs a float64 reference on O(1) logits.
constexpr double kLogitTolerance = 1e-4;

using Tensors = std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>>;

// Random weights, already rounded to BF16 so that the stored file holds them exactly.
Tensors RandomQwen2(uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  Tensors t;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float offset = 0.0f) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = Bf16ToF32(F32ToBf16(offset + normal(rng)));
    t[name] = {shape, v};
  };
  add("model.embed_tokens.weight", {kVocab, kDim});
  add("lm_head.weight", {kVocab, kDim});
  add("model.norm.weight", {kDim}, 1.0f);
  for (int l = 0; l < kLayers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {kDim}, 1.0f);
    add(p + "post_attention_layernorm.weight", {kDim}, 1.0f);
    add(p + "self_attn.q_proj.weight", {kHeads * kHeadDim, kDim});
    add(p + "self_attn.k_proj.weight", {kKvHeads * kHeadDim, kDim});
    add(p + "self_attn.v_proj.weight", {kKvHeads * kHeadDim, kDim});
    add(p + "self_attn.q_proj.bias", {kHeads * kHeadDim});
    add(p + "self_attn.k_proj.bias", {kKvHeads * kHeadDim});
    add(p + "self_attn.v_proj.bias", {kKvHeads * kHeadDim});
    add(p + "self_attn.o_proj.weight", {kDim, kHeads * kHeadDim});
    add(p + "mlp.gate_proj.weight", {kFfn, kDim});
    add(p + "mlp.up_proj.weight", {kFfn, kDim});
    add(p + "mlp.down_proj.weight", {kDim, kFfn});
  }
  return t;
}

void WriteBf16Safetensors(const std::string& path, const Tensors& all,
                          const std::vector<std::string>& names) {
  nlohmann::json header;
  std::string data;
  for (const std::string& name : names) {
    const auto& [shape, values] = all.at(name);
    const size_t begin = data.size();
    for (float v : values) {
      const uint16_t h = F32ToBf16(v);
      data.append(reinterpret_cast<const char*>(&h), 2);
    }
    header[name] = {{"dtype", "BF16"}, {"shape", shape}, {"data_offsets", {begin, data.size()}}};
  }
  const std::string text = header.dump();
  const uint64_t n = text.size();
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << text << data;
}

std::string WriteModelDir(const Tensors& t) {
  const std::string dir = testing::TempDir() + "/qwen2";
  std::filesystem::create_directories(dir);
  nlohmann::json config = {{"architectures", {"Qwen2ForCausalLM"}},
                           {"hidden_size", kDim},
                           {"intermediate_size", kFfn},
                           {"num_hidden_layers", kLayers},
                           {"num_attention_heads", kHeads},
                           {"num_key_value_heads", kKvHeads},
                           {"vocab_size", kVocab},
                           {"max_position_embeddings", 64},
                           {"rms_norm_eps", kEps},
                           {"rope_theta", kTheta},
                           {"tie_word_embeddings", false},
                           {"bos_token_id", 1},
                           {"eos_token_id", 2}};
  std::ofstream(dir + "/config.json") << config.dump();
  // Two shards, split by name order.
  std::vector<std::string> shard[2];
  nlohmann::json weight_map;
  int i = 0;
  for (const auto& [name, unused] : t) {
    const int s = i++ % 2;
    shard[s].push_back(name);
    weight_map[name] = "model-0000" + std::to_string(s + 1) + "-of-00002.safetensors";
  }
  for (int s = 0; s < 2; ++s) {
    WriteBf16Safetensors(dir + "/model-0000" + std::to_string(s + 1) + "-of-00002.safetensors",
                         t, shard[s]);
  }
  std::ofstream(dir + "/model.safetensors.index.json")
      << nlohmann::json{{"weight_map", weight_map}}.dump();
  return dir;
}

// The reference forward over a whole sequence, written from the kernels/ref ops alone.
std::vector<float> ReferenceLogits(const Tensors& t, const std::vector<int32_t>& tokens) {
  using namespace kernels;
  const int64_t m = static_cast<int64_t>(tokens.size());
  auto w = [&](const std::string& name) { return t.at(name).second.data(); };
  std::vector<float> x(m * kDim), xn(m * kDim), q(m * kHeads * kHeadDim),
      k(m * kKvHeads * kHeadDim), v(m * kKvHeads * kHeadDim), att(q.size()), proj(m * kDim),
      gate(m * kFfn), up(m * kFfn), logits(m * kVocab);
  std::vector<float> k_cache(kKvHeads * m * kHeadDim), v_cache(k_cache.size());
  std::vector<int32_t> positions(m);
  for (int64_t i = 0; i < m; ++i) {
    positions[i] = static_cast<int32_t>(i);
    std::memcpy(&x[i * kDim], w("model.embed_tokens.weight") + tokens[i] * kDim, kDim * 4);
  }
  for (int l = 0; l < kLayers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    RmsNormRef(x.data(), w(p + "input_layernorm.weight"), xn.data(), m, kDim, kEps);
    MatMulF32Ref(xn.data(), w(p + "self_attn.q_proj.weight"), w(p + "self_attn.q_proj.bias"),
                 q.data(), m, kHeads * kHeadDim, kDim);
    MatMulF32Ref(xn.data(), w(p + "self_attn.k_proj.weight"), w(p + "self_attn.k_proj.bias"),
                 k.data(), m, kKvHeads * kHeadDim, kDim);
    MatMulF32Ref(xn.data(), w(p + "self_attn.v_proj.weight"), w(p + "self_attn.v_proj.bias"),
                 v.data(), m, kKvHeads * kHeadDim, kDim);
    RopeRef(q.data(), positions.data(), m, kHeads, kHeadDim, kTheta, RopePairing::kHalves);
    RopeRef(k.data(), positions.data(), m, kKvHeads, kHeadDim, kTheta, RopePairing::kHalves);
    for (int64_t i = 0; i < m; ++i) {
      for (int h = 0; h < kKvHeads; ++h) {
        for (int d = 0; d < kHeadDim; ++d) {
          k_cache[(h * m + i) * kHeadDim + d] = k[(i * kKvHeads + h) * kHeadDim + d];
          v_cache[(h * m + i) * kHeadDim + d] = v[(i * kKvHeads + h) * kHeadDim + d];
        }
      }
    }
    AttentionRef(q.data(), k_cache.data(), v_cache.data(), positions.data(), att.data(),
                 {.m = m, .n_heads = kHeads, .n_kv_heads = kKvHeads, .head_dim = kHeadDim,
                  .capacity = m});
    MatMulF32Ref(att.data(), w(p + "self_attn.o_proj.weight"), nullptr, proj.data(), m, kDim,
                 kHeads * kHeadDim);
    for (int64_t i = 0; i < m * kDim; ++i) x[i] += proj[i];
    RmsNormRef(x.data(), w(p + "post_attention_layernorm.weight"), xn.data(), m, kDim, kEps);
    MatMulF32Ref(xn.data(), w(p + "mlp.gate_proj.weight"), nullptr, gate.data(), m, kFfn, kDim);
    MatMulF32Ref(xn.data(), w(p + "mlp.up_proj.weight"), nullptr, up.data(), m, kFfn, kDim);
    SiluMulRef(gate.data(), up.data(), gate.data(), m * kFfn);
    MatMulF32Ref(gate.data(), w(p + "mlp.down_proj.weight"), nullptr, proj.data(), m, kDim, kFfn);
    for (int64_t i = 0; i < m * kDim; ++i) x[i] += proj[i];
  }
  RmsNormRef(x.data(), w("model.norm.weight"), xn.data(), m, kDim, kEps);
  MatMulF32Ref(xn.data(), w("lm_head.weight"), nullptr, logits.data(), m, kVocab, kDim);
  return logits;
}

TEST(TransformerTest, ShardedBf16Qwen2MatchesReferenceForward) {
  const Tensors weights = RandomQwen2(/*seed=*/7);
  const std::string dir = WriteModelDir(weights);
  // The model ships no tokenizer; stories260K's has exactly this vocabulary size.
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Model> model,
      Model::Load({.path = dir,
                   .tokenizer_path = testing::SharedPath("models/stories260K/tok512.bin")}));
  EXPECT_EQ(model->info().architecture, "qwen2");
  EXPECT_FALSE(model->info().tied_embeddings);
  int bf16 = 0;
  for (const TensorSummary& t : model->info().tensors) bf16 += t.dtype == "BF16";
  EXPECT_EQ(bf16, static_cast<int>(weights.size()));

  const std::vector<int32_t> tokens = {1, 17, 300, 5, 511, 42, 42, 9, 0, 250};
  const std::vector<float> want = ReferenceLogits(weights, tokens);

  // Batched prefill, all positions.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Session> session, Session::Create(*model));
  std::vector<float> got;
  ASSERT_OK(session->PrefillAllLogits(tokens, &got));
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], kLogitTolerance) << "position " << i / kVocab;
  }
  // Prefill of a prefix, then one token at a time after a rewind: same logits.
  ASSERT_OK(session->Rewind(4));
  for (size_t i = 4; i < tokens.size(); ++i) {
    const int32_t one[1] = {tokens[i]};
    ASSERT_OK(session->Prefill(one));
    for (int v = 0; v < kVocab; ++v) {
      ASSERT_NEAR(session->Logits()[v], want[i * kVocab + v], kLogitTolerance) << i;
    }
  }
}

TEST(TransformerTest, TokenizerLargerThanTheModelVocabularyIsRefused) {
  const std::string dir = WriteModelDir(RandomQwen2(/*seed=*/8));
  const absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(
      {.path = dir,
       .tokenizer_path = testing::SharedPath("models/tinystories-656K/tokenizer.json")});
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("2048 tokens"), std::string::npos) << model.status();
}

}  // namespace
}  // namespace engine
