#include "engine/bench_model.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/internal.h"
#include "engine/kv_cache.h"
#include "engine/transformer.h"
#include "kernels/core/status_macros.h"

namespace engine::bench {
namespace {

// xorshift64*: fast enough to fill gigabytes of weights in seconds.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t Next() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 0x2545F4914F6CDD1Dull;
  }
  // Uniform in [-amplitude, amplitude).
  float Uniform(float amplitude) {
    return amplitude * (static_cast<float>(Next() >> 40) * (2.0f / 16777216.0f) - 1.0f);
  }

 private:
  uint64_t state_;
};

std::vector<float> RandomFloats(Random& rng, int64_t n, float amplitude) {
  std::vector<float> out(static_cast<size_t>(n));
  for (float& v : out) v = rng.Uniform(amplitude);
  return out;
}

// Random F16 bit patterns of magnitude in [amplitude / 4, 2 * amplitude), random sign and
// mantissa, four per draw: built from bits because converting billions of floats (Llama-2-7B)
// would take longer than the benchmark.
std::unique_ptr<uint16_t[]> RandomHalves(Random& rng, int64_t n, float amplitude) {
  auto out = std::make_unique<uint16_t[]>(static_cast<size_t>(n));
  const int top = std::clamp(15 + static_cast<int>(std::floor(std::log2(amplitude))), 3, 29);
  for (int64_t i = 0; i < n; i += 4) {
    uint64_t bits = rng.Next();
    for (int64_t j = i; j < std::min(n, i + 4); ++j, bits >>= 16) {
      const auto exponent = static_cast<uint16_t>(top - 2 + ((bits >> 10) & 3));  // top-2..top+1
      out[j] = static_cast<uint16_t>((bits & 0x83ff) | (exponent << 10));
    }
  }
  return out;
}

// Random int8 rows (-127..127) with scales that make the values span +-amplitude: the head
// of the W4A4 and W4A16 shapes, as PrepareBackendWeights makes a model's.
I8Rows RandomI8Rows(Random& rng, int64_t n, int64_t k, float amplitude) {
  I8Rows out{.q = std::make_unique<int8_t[]>(static_cast<size_t>(n * k)),
             .scale = std::make_unique<float[]>(static_cast<size_t>(n))};
  for (int64_t i = 0; i < n * k; i += 8) {
    uint64_t bits = rng.Next();
    for (int64_t j = i; j < std::min(n * k, i + 8); ++j, bits >>= 8) {
      out.q[j] = static_cast<int8_t>(static_cast<int>((bits & 0xff) % 255) - 127);
    }
  }
  for (int64_t j = 0; j < n; ++j) out.scale[j] = amplitude / 127.0f;
  return out;
}

// Random FP4 codes (every code is a valid E2M1 value) with per-row scales that keep the
// outputs near unit size, repacked as the engine repacks a model file's.
absl::StatusOr<kernels::PreparedFp4Weight> RandomFp4(Random& rng, int64_t n, int64_t k) {
  std::vector<uint8_t> codes(static_cast<size_t>(n * k / 2));
  for (size_t i = 0; i < codes.size(); i += 8) {
    const uint64_t bits = rng.Next();
    std::memcpy(&codes[i], &bits, std::min<size_t>(8, codes.size() - i));
  }
  std::vector<float> row_scale(static_cast<size_t>(n));
  for (float& s : row_scale) s = (0.5f + 0.5f * std::fabs(rng.Uniform(1.0f))) / std::sqrt(k * 8.0f);
  return kernels::PrepareFp4Weight(codes.data(), row_scale.data(), nullptr, Fp4Kind::kE2M1, n, k);
}

// What CreateRandom holds for `type` (weights only; the KV cache and scratch are small).
int64_t RandomModelBytes(const model::ModelConfig& c, LinearType type) {
  const int64_t d = c.model_dim, f = c.ffn_dim, q = c.q_dim(), kv = c.kv_dim();
  const int64_t linear_weights = c.n_layers * (2 * d * q + 2 * d * kv + 3 * d * f);
  const int64_t embedding = int64_t{c.vocab_size} * d;
  double per_weight = 4.0;
  if (type == LinearType::kF16) per_weight = 2.0;
  if (type == LinearType::kW4A16 || type == LinearType::kW4A4) per_weight = 0.5;
  int64_t head = 2 * embedding;
  if (type == LinearType::kF32) head = 4 * embedding;
  if (type == LinearType::kW4A16 || type == LinearType::kW4A4) head = embedding + 4 * c.vocab_size;
  return static_cast<int64_t>(per_weight * linear_weights) + 4 * embedding + head;
}

}  // namespace

int64_t PhysicalMemoryBytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page : 0;
}

const char* LinearTypeName(LinearType type) {
  switch (type) {
    case LinearType::kF32:
      return "f32";
    case LinearType::kF16:
      return "f16";
    case LinearType::kW4A16:
      return "w4a16";
    case LinearType::kW4A4:
      return "w4a4";
  }
  return "unknown";
}

absl::StatusOr<LinearType> ParseLinearType(std::string_view name) {
  for (LinearType t : {LinearType::kF32, LinearType::kF16, LinearType::kW4A16, LinearType::kW4A4}) {
    if (name == LinearTypeName(t)) return t;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown type '", absl::string_view(name.data(), name.size()),
      "': expected one of w4a4, w4a16, f16, f32"));
}

std::vector<std::string> ShapeNames() { return {"tinyllama-1.1b", "llama2-7b", "smollm2-135m"}; }

absl::StatusOr<model::ModelConfig> ShapeConfig(std::string_view name) {
  model::ModelConfig c;
  if (name == "tinyllama-1.1b") {  // TinyLlama/TinyLlama-1.1B-Chat-v1.0
    c.model_dim = 2048, c.ffn_dim = 5632, c.n_layers = 22, c.n_heads = 32, c.n_kv_heads = 4;
    c.head_dim = 64, c.vocab_size = 32000, c.max_seq_len = 2048;
  } else if (name == "llama2-7b") {  // meta-llama/Llama-2-7b-hf
    c.model_dim = 4096, c.ffn_dim = 11008, c.n_layers = 32, c.n_heads = 32, c.n_kv_heads = 32;
    c.head_dim = 128, c.vocab_size = 32000, c.max_seq_len = 4096;
  } else if (name == "smollm2-135m") {  // HuggingFaceTB/SmolLM2-135M-Instruct
    c.model_dim = 576, c.ffn_dim = 1536, c.n_layers = 30, c.n_heads = 9, c.n_kv_heads = 3;
    c.head_dim = 64, c.vocab_size = 49152, c.max_seq_len = 8192, c.rope_theta = 100000.0f;
    c.tied_embeddings = true;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown shape '", absl::string_view(name.data(), name.size()),
                     "': expected one of ", absl::StrJoin(ShapeNames(), ", ")));
  }
  return c;
}

struct BenchModel::Storage {
  model::ModelConfig config;
  model::ModelWeights weights;
  BackendWeights backend;
};

BenchModel::BenchModel() = default;
BenchModel::~BenchModel() = default;

absl::StatusOr<std::unique_ptr<BenchModel>> BenchModel::CreateRandom(
    const model::ModelConfig& config, LinearType type, uint64_t seed) {
  ENGINE_RETURN_IF_ERROR(config.Validate("bench shape"));
  const int64_t need = RandomModelBytes(config, type), have = PhysicalMemoryBytes();
  if (have > 0 && need > have * 8 / 10) {
    return absl::ResourceExhaustedError(absl::StrCat(
        LinearTypeName(type), " weights need ", need >> 20, " MiB, more than 80% of the ",
        have >> 20, " MiB of memory this machine has"));
  }
  std::unique_ptr<BenchModel> out(new BenchModel());
  out->owned_ = std::make_unique<Storage>();
  Storage& s = *out->owned_;
  s.config = config;
  const model::ModelConfig& c = s.config;
  const int64_t d = c.model_dim, f = c.ffn_dim, q = c.q_dim(), kv = c.kv_dim();
  Random rng(seed);
  model::ModelWeights& w = s.weights;
  w.token_embedding = w.Own(RandomFloats(rng, int64_t{c.vocab_size} * d, 1.0f),
                            {c.vocab_size, d});
  w.final_norm = w.Own(std::vector<float>(static_cast<size_t>(d), 1.0f), {d});
  const float head_amplitude = 1.0f / std::sqrt(static_cast<float>(d));
  if (type == LinearType::kF32) {
    w.output = w.Own(RandomFloats(rng, int64_t{c.vocab_size} * d, head_amplitude),
                     {c.vocab_size, d});
    s.backend.head = DenseLinear{.type = DenseLinear::Type::kF32, .n = c.vocab_size, .k = d,
                                 .f32 = w.output.data};
  } else if (type == LinearType::kF16) {
    s.backend.head = s.backend.AddF16(RandomHalves(rng, int64_t{c.vocab_size} * d, head_amplitude),
                                      c.vocab_size, d);
  } else {  // the head a W4A4 model file gets (W4A16: the same, to isolate the activations)
    s.backend.head = s.backend.AddI8(RandomI8Rows(rng, c.vocab_size, d, head_amplitude),
                                     c.vocab_size, d);
  }
  w.layers.resize(static_cast<size_t>(c.n_layers));
  if (type == LinearType::kW4A4) w.fp4.layers.resize(static_cast<size_t>(c.n_layers));
  for (int32_t l = 0; l < c.n_layers; ++l) {
    model::LayerWeights& lw = w.layers[l];
    lw.attn_norm = w.Own(std::vector<float>(static_cast<size_t>(d), 1.0f), {d});
    lw.ffn_norm = w.Own(std::vector<float>(static_cast<size_t>(d), 1.0f), {d});
    // [n, k] of wq, wk, wv, wo, w_gate, w_up, w_down
    const int64_t shapes[7][2] = {{q, d}, {kv, d}, {kv, d}, {d, q}, {f, d}, {f, d}, {d, f}};
    switch (type) {
      case LinearType::kF32: {
        model::F32Tensor* t[7] = {&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.w_gate, &lw.w_up, &lw.w_down};
        for (int i = 0; i < 7; ++i) {
          const int64_t n = shapes[i][0], k = shapes[i][1];
          *t[i] = w.Own(RandomFloats(rng, n * k, 1.0f / std::sqrt(static_cast<float>(k))), {n, k});
        }
        break;
      }
      case LinearType::kF16:
      case LinearType::kW4A16: {
        DenseLayer& dl = s.backend.dense.emplace_back();
        DenseLinear* t[7] = {&dl.wq, &dl.wk, &dl.wv, &dl.wo, &dl.w_gate, &dl.w_up, &dl.w_down};
        for (int i = 0; i < 7; ++i) {
          const int64_t n = shapes[i][0], k = shapes[i][1];
          if (type == LinearType::kF16) {
            *t[i] = s.backend.AddF16(
                RandomHalves(rng, n * k, 1.0f / std::sqrt(static_cast<float>(k))), n, k);
          } else {
            ENGINE_ASSIGN_OR_RETURN(kernels::PreparedFp4Weight p, RandomFp4(rng, n, k));
            *t[i] = s.backend.AddW4A16(std::move(p));
          }
        }
        break;
      }
      case LinearType::kW4A4: {
        // Static activation scales that put unit-size activations inside E2M1's range.
        model::Fp4LayerWeights& fl = w.fp4.layers[l];
        for (model::ActQuant* a : {&fl.attn_input, &fl.attn_output, &fl.ffn_input,
                                   &fl.down_input}) {
          *a = model::ActQuant{.format = model::Fp4Format::kE2M1, .scale = 0.5f};
        }
        Fp4PreparedLayer& pl = s.backend.fp4.emplace_back();
        kernels::PreparedFp4Weight* t[7] = {&pl.wq, &pl.wk, &pl.wv, &pl.wo,
                                            &pl.w_gate, &pl.w_up, &pl.w_down};
        for (int i = 0; i < 7; ++i) {
          ENGINE_ASSIGN_OR_RETURN(*t[i], RandomFp4(rng, shapes[i][0], shapes[i][1]));
        }
        break;
      }
    }
  }
  out->type_ = type;
  out->config_ = &s.config;
  out->weights_ = &s.weights;
  out->backend_ = &s.backend;
  return out;
}

absl::StatusOr<std::unique_ptr<BenchModel>> BenchModel::FromModel(const Model& model) {
  std::unique_ptr<BenchModel> out(new BenchModel());
  const model::LoadedModel& loaded = LoadedModelOf(model);
  out->config_ = &loaded.config;
  out->weights_ = &loaded.weights;
  out->backend_ = &BackendOf(model);
  out->type_ = out->backend_->fp4.empty() ? LinearType::kF32 : LinearType::kW4A4;
  return out;
}

int64_t BenchModel::weight_bytes() const {
  const model::ModelConfig& c = *config_;
  const int64_t d = c.model_dim, f = c.ffn_dim, q = c.q_dim(), kv = c.kv_dim();
  int64_t bytes = int64_t{c.vocab_size} * d * 4;  // embedding
  if (!c.tied_embeddings || backend_->head.type != DenseLinear::Type::kF32) {
    bytes += backend_->head.bytes();
  }
  bytes += c.n_layers * 2 * d * 4;  // norms
  for (int32_t l = 0; l < c.n_layers; ++l) {
    if (!backend_->fp4.empty()) {
      const Fp4PreparedLayer& p = backend_->fp4[l];
      for (const auto* w : {&p.wq, &p.wk, &p.wv, &p.wo, &p.w_gate, &p.w_up, &p.w_down}) {
        bytes += w->memory_bytes();
      }
    } else if (!backend_->dense.empty()) {
      const DenseLayer& dl = backend_->dense[l];
      for (const auto* w : {&dl.wq, &dl.wk, &dl.wv, &dl.wo, &dl.w_gate, &dl.w_up, &dl.w_down}) {
        bytes += w->bytes();
      }
    } else {
      bytes += 4 * (2 * d * q + 2 * d * kv + 3 * d * f);
    }
  }
  return bytes;
}

int64_t BenchModel::DecodeBytesPerToken(int32_t context) const {
  const model::ModelConfig& c = *config_;
  // Everything but the embedding table is read once; of the embedding, one row.
  const int64_t embedding = int64_t{c.vocab_size} * c.model_dim * 4;
  int64_t bytes = weight_bytes() - embedding + c.model_dim * 4;
  if (c.tied_embeddings && backend_->head.type == DenseLinear::Type::kF32) bytes += embedding;
  bytes += int64_t{2} * c.n_layers * c.kv_dim() * 4 * context;  // keys and values
  return bytes;
}

int64_t BenchModel::LinearMacsPerToken() const {
  return config_->n_layers * config_->LinearWeightsPerLayer();
}

absl::StatusOr<double> BenchModel::Run(int32_t n, int32_t per_call, kernels::ThreadPool& pool) {
  const model::ModelConfig& c = *config_;
  ENGINE_ASSIGN_OR_RETURN(KvCache kv, KvCache::Create({.n_layers = c.n_layers,
                                                       .n_kv_heads = c.n_kv_heads,
                                                       .head_dim = c.head_dim,
                                                       .capacity = std::max(n, 1)}));
  ForwardBuffers buffers;
  std::vector<float> logits(static_cast<size_t>(c.vocab_size));
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  Random rng(token_seed_++);
  for (int32_t& t : tokens) t = static_cast<int32_t>(rng.Next() % c.vocab_size);
  const auto start = std::chrono::steady_clock::now();
  for (int32_t begin = 0; begin < n; begin += per_call) {
    const int32_t count = std::min(per_call, n - begin);
    Forward({.config = &c,
             .weights = weights_,
             .backend = backend_,
             .tokens = std::span<const int32_t>(tokens).subspan(begin, count),
             .logits = logits.data()},
            kv, pool, buffers);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

absl::StatusOr<double> BenchModel::TimePrompt(int32_t n, kernels::ThreadPool& pool) {
  return Run(n, kMaxBatchTokens, pool);
}

absl::StatusOr<double> BenchModel::TimeGenerate(int32_t n, kernels::ThreadPool& pool) {
  return Run(n, 1, pool);
}

}  // namespace engine::bench
