// GGUF reading: hostile and truncated containers must give clear errors (never a crash), tiny
// hand-built llama files load with the right shapes and values, and the real SmolLM2 Q4_1 file
// and the llama.cpp vocab-only file read as their metadata says.
#include "model/gguf_reader.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/core/half.h"
#include "model/gguf_file.h"
#include "model/mapped_file.h"
#include "tests/test_util.h"

namespace engine::model {
namespace {

using gguf::GgmlType;
using gguf::GgufBuilder;
using gguf::GgufValue;
using ::testing::HasSubstr;

// A test-only byte builder, written from the GGUF spec, for containers our writer would never
// produce.
class Bytes {
 public:
  Bytes& Raw(const std::string& s) {
    out_ += s;
    return *this;
  }
  Bytes& U32(uint32_t v) {
    out_.append(reinterpret_cast<const char*>(&v), 4);
    return *this;
  }
  Bytes& U64(uint64_t v) {
    out_.append(reinterpret_cast<const char*>(&v), 8);
    return *this;
  }
  Bytes& F32(float v) {
    out_.append(reinterpret_cast<const char*>(&v), 4);
    return *this;
  }
  Bytes& Str(const std::string& s) {
    U64(s.size());
    return Raw(s);
  }
  Bytes& Header(uint64_t tensors, uint64_t kvs, uint32_t version = 3) {
    return Raw("GGUF").U32(version).U64(tensors).U64(kvs);
  }
  Bytes& KvStr(const std::string& k, const std::string& v) {
    Str(k).U32(8);
    return Str(v);
  }
  Bytes& KvU32(const std::string& k, uint32_t v) {
    Str(k).U32(4);
    return U32(v);
  }
  Bytes& Tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t off) {
    Str(name).U32(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) U64(d);
    return U32(type).U64(off);
  }
  Bytes& PadTo(size_t alignment) {
    out_.resize((out_.size() + alignment - 1) / alignment * alignment, '\0');
    return *this;
  }
  const std::string& str() const { return out_; }

 private:
  std::string out_;
};

std::string WriteTemp(const std::string& bytes, const std::string& name = "model.gguf") {
  const std::string path = absl::StrCat(engine::testing::TempDir(), "/", name);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  EXPECT_NE(f, nullptr);
  if (f != nullptr) {
    if (!bytes.empty()) {
      EXPECT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
    }
    std::fclose(f);
  }
  return path;
}

absl::Status ParseStatus(const std::string& bytes) {
  return gguf::ParseGguf(
             std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
             "mem.gguf")
      .status();
}

// ---- A tiny llama GGUF (dim 32 so Q8_0/Q4_0 rows fit whole blocks) ----

struct TensorSpec {
  TensorSpec(std::string n, std::vector<int64_t> shape)
      : name(std::move(n)), ne(std::move(shape)) {}
  std::string name;
  std::vector<int64_t> ne;  // innermost-first
  GgmlType type = GgmlType::kF32;
  std::vector<uint8_t> data;  // empty: F32 values TinyValue(name, i)
};

constexpr int kDim = 32, kFfn = 64, kHeads = 2, kKvHeads = 1, kVocab = 8, kHeadDim = 16;

float TinyValue(const std::string& name, int64_t i) {
  return static_cast<float>(name.size() % 7) * 0.25f + static_cast<float>(i % 13) * 0.125f - 1.0f;
}

std::vector<TensorSpec> TinyTensors(bool tied) {
  std::vector<TensorSpec> t;
  t.emplace_back("token_embd.weight", std::vector<int64_t>{kDim, kVocab});
  t.emplace_back("output_norm.weight", std::vector<int64_t>{kDim});
  if (!tied) t.emplace_back("output.weight", std::vector<int64_t>{kDim, kVocab});
  const std::string p = "blk.0.";
  t.emplace_back(p + "attn_norm.weight", std::vector<int64_t>{kDim});
  t.emplace_back(p + "attn_q.weight", std::vector<int64_t>{kDim, kHeads * kHeadDim});
  t.emplace_back(p + "attn_k.weight", std::vector<int64_t>{kDim, kKvHeads * kHeadDim});
  t.emplace_back(p + "attn_v.weight", std::vector<int64_t>{kDim, kKvHeads * kHeadDim});
  t.emplace_back(p + "attn_output.weight", std::vector<int64_t>{kHeads * kHeadDim, kDim});
  t.emplace_back(p + "ffn_norm.weight", std::vector<int64_t>{kDim});
  t.emplace_back(p + "ffn_gate.weight", std::vector<int64_t>{kDim, kFfn});
  t.emplace_back(p + "ffn_up.weight", std::vector<int64_t>{kDim, kFfn});
  t.emplace_back(p + "ffn_down.weight", std::vector<int64_t>{kFfn, kDim});
  return t;
}

// Overrides for the tiny metadata: a value replaces the key's value (or is appended), nullopt
// drops the key.
using Overrides = std::vector<std::pair<std::string, std::optional<GgufValue>>>;

void AddTinyMetadata(GgufBuilder& b, const Overrides& overrides = {}) {
  std::vector<std::pair<std::string, GgufValue>> kvs;
  kvs.emplace_back("general.architecture", GgufValue::String("llama"));
  kvs.emplace_back("llama.context_length", GgufValue::Uint32(128));
  kvs.emplace_back("llama.embedding_length", GgufValue::Uint32(kDim));
  kvs.emplace_back("llama.feed_forward_length", GgufValue::Uint32(kFfn));
  kvs.emplace_back("llama.block_count", GgufValue::Uint32(1));
  kvs.emplace_back("llama.attention.head_count", GgufValue::Uint32(kHeads));
  kvs.emplace_back("llama.attention.head_count_kv", GgufValue::Uint32(kKvHeads));
  kvs.emplace_back("llama.attention.layer_norm_rms_epsilon", GgufValue::Float32(1e-6f));
  kvs.emplace_back("llama.rope.freq_base", GgufValue::Float32(500000.0f));
  kvs.emplace_back("tokenizer.ggml.model", GgufValue::String("llama"));
  kvs.emplace_back("tokenizer.ggml.tokens",
                   GgufValue::StringArray({"<unk>", "<s>", "</s>", "a", "b", "c", "d", "e"}));
  const std::vector<float> scores = {0, 0, 0, -1, -2, -3, -4, -5};
  kvs.emplace_back("tokenizer.ggml.scores", GgufValue::Float32Array(scores));
  const std::vector<int32_t> types = {2, 3, 3, 1, 1, 1, 1, 1};
  kvs.emplace_back("tokenizer.ggml.token_type", GgufValue::Int32Array(types));
  kvs.emplace_back("tokenizer.ggml.bos_token_id", GgufValue::Uint32(1));
  kvs.emplace_back("tokenizer.ggml.eos_token_id", GgufValue::Uint32(2));
  kvs.emplace_back("tokenizer.chat_template", GgufValue::String("{{ messages }}"));
  for (const auto& [key, value] : overrides) {
    auto it = std::find_if(kvs.begin(), kvs.end(), [&](const auto& kv) { return kv.first == key; });
    if (it == kvs.end()) {
      if (value.has_value()) kvs.emplace_back(key, *value);
    } else if (value.has_value()) {
      it->second = *value;
    } else {
      kvs.erase(it);
    }
  }
  for (auto& [key, value] : kvs) b.Add(key, value);
}

std::function<void(GgufBuilder&)> Metadata(Overrides overrides) {
  return [overrides](GgufBuilder& b) { AddTinyMetadata(b, overrides); };
}

// The bytes of a tiny llama file; `edit` may change metadata and tensors first.
std::string TinyLlama(
    bool tied = true,
    const std::function<void(GgufBuilder&, std::vector<TensorSpec>&)>& edit = nullptr,
    const std::function<void(GgufBuilder&)>& metadata = Metadata({})) {
  GgufBuilder b;
  if (metadata) metadata(b);
  std::vector<TensorSpec> tensors = TinyTensors(tied);
  if (edit) edit(b, tensors);
  for (TensorSpec& t : tensors) {
    if (t.data.empty()) {
      int64_t n = 1;
      for (int64_t d : t.ne) n *= d;
      std::vector<float> v(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = TinyValue(t.name, i);
      t.data.resize(v.size() * 4);
      std::memcpy(t.data.data(), v.data(), t.data.size());
    }
    const absl::Status s = b.AddTensorCopy(t.name, t.ne, t.type, t.data);
    EXPECT_TRUE(s.ok()) << s;
  }
  return b.Serialize();
}

TEST(GgufReaderTest, TinyLlamaLoads) {
  const std::string path = WriteTemp(TinyLlama());
  ASSERT_OK_AND_ASSIGN(const LoadedModel m, ReadGgufModel(path));
  EXPECT_EQ(m.format, ModelFormat::kGguf);
  EXPECT_EQ(m.config.model_dim, kDim);
  EXPECT_EQ(m.config.ffn_dim, kFfn);
  EXPECT_EQ(m.config.n_layers, 1);
  EXPECT_EQ(m.config.n_heads, kHeads);
  EXPECT_EQ(m.config.n_kv_heads, kKvHeads);
  EXPECT_EQ(m.config.head_dim, kHeadDim);
  EXPECT_EQ(m.config.vocab_size, kVocab);
  EXPECT_EQ(m.config.max_seq_len, 128);
  EXPECT_EQ(m.config.norm_eps, 1e-6f);
  EXPECT_EQ(m.config.rope_theta, 500000.0f);
  EXPECT_EQ(m.config.rope_style, RopeStyle::kInterleaved);
  EXPECT_TRUE(m.config.tied_embeddings);
  EXPECT_FALSE(m.config.qkv_bias);
  EXPECT_EQ(m.weights.output.data, m.weights.token_embedding.data);
  // ne = [in, out] is our [out, in]; element (r, c) is ggml element r * ne[0] + c.
  const F32Tensor& wq = m.weights.layers[0].wq;
  EXPECT_EQ(wq.shape, (std::vector<int64_t>{kHeads * kHeadDim, kDim}));
  EXPECT_EQ(wq.data[3 * kDim + 5], TinyValue("blk.0.attn_q.weight", 3 * kDim + 5));
  EXPECT_EQ(m.weights.layers[0].w_down.shape, (std::vector<int64_t>{kDim, kFfn}));
  EXPECT_EQ(m.tokenizer.kind, TokenizerSource::Kind::kGguf);
  EXPECT_EQ(m.tokenizer.gguf.tokens.size(), 8u);
  EXPECT_EQ(m.tokenizer.gguf.scores[4], -2.0f);
  EXPECT_EQ(m.tokenizer.gguf.token_types[0], 2);
  EXPECT_EQ(m.tokenizer.gguf.bos_id, 1);
  EXPECT_EQ(m.tokenizer.gguf.eos_id, 2);
  EXPECT_EQ(m.tokenizer.gguf.unk_id, -1);
  EXPECT_EQ(m.chat_template, "{{ messages }}");
  ASSERT_EQ(m.tensors.size(), TinyTensors(true).size());
  EXPECT_EQ(m.tensors[0].name, "token_embd.weight");
  EXPECT_EQ(m.tensors[0].dtype, "F32");
  EXPECT_EQ(m.tensors[0].shape, (std::vector<int64_t>{kVocab, kDim}));
}

TEST(GgufReaderTest, DefaultsForOptionalKeys) {
  // No head_count_kv (-> head_count), no rope.freq_base (-> 10000), no tokenizer (vocab size
  // from llama.vocab_size), untied output.
  const Overrides defaults = {{"llama.attention.head_count_kv", std::nullopt},
                              {"llama.rope.freq_base", std::nullopt},
                              {"tokenizer.ggml.model", std::nullopt},
                              {"tokenizer.ggml.tokens", std::nullopt},
                              {"tokenizer.ggml.scores", std::nullopt},
                              {"tokenizer.ggml.token_type", std::nullopt},
                              {"tokenizer.ggml.bos_token_id", std::nullopt},
                              {"tokenizer.ggml.eos_token_id", std::nullopt},
                              {"llama.vocab_size", GgufValue::Uint32(kVocab)}};
  // head_count_kv defaults to head_count = 2, so the tiny file's [16, 32] attn_k is rejected
  // with a shape error that names the tensor.
  const absl::StatusOr<LoadedModel> m =
      ReadGgufModel(WriteTemp(TinyLlama(/*tied=*/false, nullptr, Metadata(defaults))));
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("blk.0.attn_k.weight"));

  const auto full_kv = [](GgufBuilder&, std::vector<TensorSpec>& t) {
    for (TensorSpec& s : t) {
      if (s.name == "blk.0.attn_k.weight" || s.name == "blk.0.attn_v.weight") {
        s.ne = {kDim, kHeads * kHeadDim};
      }
    }
  };
  ASSERT_OK_AND_ASSIGN(const LoadedModel ok,
                       ReadGgufModel(WriteTemp(TinyLlama(false, full_kv, Metadata(defaults)))));
  EXPECT_EQ(ok.config.n_kv_heads, kHeads);
  EXPECT_EQ(ok.config.rope_theta, 10000.0f);
  EXPECT_EQ(ok.config.head_dim, kDim / kHeads);
  EXPECT_FALSE(ok.config.tied_embeddings);
  EXPECT_NE(ok.weights.output.data, ok.weights.token_embedding.data);
  EXPECT_EQ(ok.weights.output.data[3], TinyValue("output.weight", 3));
  EXPECT_EQ(ok.tokenizer.kind, TokenizerSource::Kind::kNone);
  EXPECT_EQ(ok.config.vocab_size, kVocab);
}

TEST(GgufReaderTest, QuantizedTensorsAreDequantized) {
  // token_embd as Q8_0 (d = 0.5, q = i % 9 - 4), output_norm as F16, ffn_up as BF16.
  const std::string path = WriteTemp(TinyLlama(true, [](GgufBuilder&, std::vector<TensorSpec>& t) {
    for (TensorSpec& s : t) {
      if (s.name == "token_embd.weight") {
        s.type = GgmlType::kQ8_0;
        for (int blk = 0; blk < kVocab * kDim / 32; ++blk) {
          const uint16_t d = F32ToF16(0.5f);
          s.data.push_back(static_cast<uint8_t>(d & 0xff));
          s.data.push_back(static_cast<uint8_t>(d >> 8));
          for (int j = 0; j < 32; ++j) {
            s.data.push_back(static_cast<uint8_t>(static_cast<int8_t>((blk * 32 + j) % 9 - 4)));
          }
        }
      } else if (s.name == "output_norm.weight") {
        s.type = GgmlType::kF16;
        for (int i = 0; i < kDim; ++i) {
          const uint16_t h = F32ToF16(static_cast<float>(i) * 0.25f);
          s.data.push_back(static_cast<uint8_t>(h & 0xff));
          s.data.push_back(static_cast<uint8_t>(h >> 8));
        }
      } else if (s.name == "blk.0.ffn_up.weight") {
        s.type = GgmlType::kBF16;
        for (int i = 0; i < kDim * kFfn; ++i) {
          const uint16_t h = F32ToBf16(static_cast<float>(i % 5) - 2.0f);
          s.data.push_back(static_cast<uint8_t>(h & 0xff));
          s.data.push_back(static_cast<uint8_t>(h >> 8));
        }
      }
    }
  }));
  ASSERT_OK_AND_ASSIGN(const LoadedModel m, ReadGgufModel(path));
  for (int i = 0; i < kVocab * kDim; ++i) {
    ASSERT_EQ(m.weights.token_embedding.data[i], 0.5f * static_cast<float>(i % 9 - 4)) << i;
  }
  for (int i = 0; i < kDim; ++i) EXPECT_EQ(m.weights.final_norm.data[i], i * 0.25f);
  EXPECT_EQ(m.weights.layers[0].w_up.data[7], 0.0f);
  EXPECT_EQ(m.weights.layers[0].w_up.data[9], 2.0f);
  EXPECT_EQ(m.tensors[0].dtype, "Q8_0");
  EXPECT_EQ(m.tensors[1].dtype, "F16");
  EXPECT_EQ(m.weights.output.data, m.weights.token_embedding.data);
}

TEST(GgufReaderTest, QkvBiasIsRead) {
  const std::string path = WriteTemp(TinyLlama(true, [](GgufBuilder&, std::vector<TensorSpec>& t) {
    t.emplace_back("blk.0.attn_q.bias", std::vector<int64_t>{kHeads * kHeadDim});
    t.emplace_back("blk.0.attn_k.bias", std::vector<int64_t>{kKvHeads * kHeadDim});
    t.emplace_back("blk.0.attn_v.bias", std::vector<int64_t>{kKvHeads * kHeadDim});
  }));
  ASSERT_OK_AND_ASSIGN(const LoadedModel m, ReadGgufModel(path));
  EXPECT_TRUE(m.config.qkv_bias);
  EXPECT_EQ(m.weights.layers[0].bk.shape, (std::vector<int64_t>{kKvHeads * kHeadDim}));
  EXPECT_EQ(m.weights.layers[0].bq.data[5], TinyValue("blk.0.attn_q.bias", 5));

  // A q bias without the k bias is a missing tensor.
  const std::string bad = WriteTemp(
      TinyLlama(true,
                [](GgufBuilder&, std::vector<TensorSpec>& t) {
                  t.emplace_back("blk.0.attn_q.bias", std::vector<int64_t>{kHeads * kHeadDim});
                }),
      "bad.gguf");
  const absl::StatusOr<LoadedModel> b = ReadGgufModel(bad);
  EXPECT_EQ(b.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(b.status().message()), HasSubstr("blk.0.attn_k.bias"));
}

// ---- Bad input ----

void ExpectError(const absl::StatusOr<LoadedModel>& m, absl::StatusCode code,
                 const std::vector<std::string>& substrings) {
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), code) << m.status();
  for (const std::string& s : substrings) {
    EXPECT_THAT(std::string(m.status().message()), HasSubstr(s));
  }
}

TEST(GgufReaderTest, EveryTruncationIsAnError) {
  const std::string full = TinyLlama();
  ASSERT_OK(ReadGgufModel(WriteTemp(full)).status());
  // The container parser sees every prefix; the full reader every prefix in the header and a
  // stride through the tensor data (each of those writes a file).
  ASSERT_OK_AND_ASSIGN(
      const gguf::GgufFile parsed,
      gguf::ParseGguf(
          std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(full.data()), full.size()),
          "full"));
  for (size_t len = 0; len < full.size(); ++len) {
    const absl::Status s = ParseStatus(full.substr(0, len));
    ASSERT_FALSE(s.ok()) << "prefix " << len;
    ASSERT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  }
  const std::string path = absl::StrCat(engine::testing::TempDir(), "/cut.gguf");
  for (size_t len = 0; len < full.size(); len += (len < parsed.data_offset ? 1 : 61)) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    if (len > 0) {
      ASSERT_EQ(std::fwrite(full.data(), 1, len, f), len);
    }
    std::fclose(f);
    const absl::StatusOr<LoadedModel> m = ReadGgufModel(path);
    ASSERT_FALSE(m.ok()) << "prefix " << len;
    ASSERT_THAT(std::string(m.status().message()), HasSubstr(path)) << m.status();
  }
}

TEST(GgufReaderTest, CorruptedHeaderBytesNeverCrash) {
  // Every header byte replaced by a few values: each read either fails cleanly or loads a
  // model whose weights still pass validation.
  const std::string full = TinyLlama();
  ASSERT_OK_AND_ASSIGN(
      const gguf::GgufFile parsed,
      gguf::ParseGguf(
          std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(full.data()), full.size()),
          "full"));
  const std::string path = absl::StrCat(engine::testing::TempDir(), "/flip.gguf");
  int loaded = 0, failed = 0;
  for (size_t pos = 0; pos < parsed.data_offset; ++pos) {
    for (const uint8_t value : {uint8_t{0x00}, uint8_t{0xff}, uint8_t(full[pos] ^ 0x10)}) {
      if (static_cast<uint8_t>(full[pos]) == value) continue;
      std::string bytes = full;
      bytes[pos] = static_cast<char>(value);
      if (!ParseStatus(bytes).ok()) {
        ++failed;
        continue;
      }
      std::FILE* f = std::fopen(path.c_str(), "wb");
      ASSERT_NE(f, nullptr);
      ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
      std::fclose(f);
      const absl::StatusOr<LoadedModel> m = ReadGgufModel(path);
      if (m.ok()) {
        ++loaded;
        EXPECT_OK(m->weights.Validate(m->config, path));
      } else {
        ++failed;
      }
    }
  }
  EXPECT_GT(failed, 0);
  EXPECT_GT(loaded, 0);  // e.g. a changed letter inside a token string
}

TEST(GgufReaderTest, WrongMagic) {
  std::string bytes = TinyLlama();
  bytes[0] = 'X';
  ExpectError(ReadGgufModel(WriteTemp(bytes)), absl::StatusCode::kInvalidArgument,
              {"not a GGUF file", "58 47 55 46"});
  ExpectError(ReadGgufModel(WriteTemp("")), absl::StatusCode::kInvalidArgument, {"truncated"});
}

TEST(GgufReaderTest, UnsupportedVersions) {
  ExpectError(ReadGgufModel(WriteTemp(Bytes().Header(0, 0, 1).str())),
              absl::StatusCode::kUnimplemented, {"version 1"});
  ExpectError(ReadGgufModel(WriteTemp(Bytes().Header(0, 0, 4).str())),
              absl::StatusCode::kUnimplemented, {"version 4"});
  ExpectError(ReadGgufModel(WriteTemp(Bytes().Header(0, 0, 0x03000000).str())),
              absl::StatusCode::kUnimplemented, {"big-endian"});
  // Version 2 has the same layout as 3.
  std::string v2 = TinyLlama();
  v2[4] = 2;
  ASSERT_OK(ReadGgufModel(WriteTemp(v2)).status());
}

TEST(GgufReaderTest, AbsurdCounts) {
  EXPECT_THAT(std::string(ParseStatus(Bytes().Header(0, uint64_t{1} << 62).str()).message()),
              HasSubstr("key/value count"));
  EXPECT_THAT(std::string(ParseStatus(Bytes().Header(~uint64_t{0}, 0).str()).message()),
              HasSubstr("tensor count"));
  // Plausible against the limits but not against the bytes present.
  EXPECT_FALSE(ParseStatus(Bytes().Header(1000, 1).KvU32("a", 1).str()).ok());
}

TEST(GgufReaderTest, StringLongerThanFile) {
  const std::string bytes = Bytes().Header(0, 1).U64(uint64_t{1} << 40).Raw("general").str();
  const absl::Status s = ParseStatus(bytes);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("string length 1099511627776"));
  // A string value, too, and an array length.
  const std::string value = Bytes().Header(0, 1).Str("k").U32(8).U64(1000).Raw("abc").str();
  EXPECT_THAT(std::string(ParseStatus(value).message()), HasSubstr("key 'k'"));
  const std::string array =
      Bytes().Header(0, 1).Str("arr").U32(9).U32(4).U64(uint64_t{1} << 60).str();
  EXPECT_THAT(std::string(ParseStatus(array).message()), HasSubstr("array of"));
}

TEST(GgufReaderTest, BadMetadataTypes) {
  EXPECT_THAT(
      std::string(ParseStatus(Bytes().Header(0, 1).Str("k").U32(13).U32(0).str()).message()),
      HasSubstr("unknown metadata value type 13"));
  EXPECT_THAT(
      std::string(ParseStatus(Bytes().Header(0, 1).Str("k").U32(9).U32(77).U64(0).str()).message()),
      HasSubstr("unknown metadata value type 77"));
  // Arrays nested past the limit.
  Bytes nested;
  nested.Header(0, 1).Str("deep").U32(9);
  for (int i = 0; i < 10; ++i) nested.U32(9).U64(1);
  EXPECT_THAT(std::string(ParseStatus(nested.str()).message()), HasSubstr("nested"));
  // Duplicate keys.
  EXPECT_THAT(
      std::string(ParseStatus(Bytes().Header(0, 2).KvU32("a", 1).KvU32("a", 2).str()).message()),
      HasSubstr("duplicate"));
  // A bad general.alignment.
  EXPECT_THAT(
      std::string(ParseStatus(Bytes().Header(0, 1).KvU32("general.alignment", 24).str()).message()),
      HasSubstr("power of two"));
}

TEST(GgufReaderTest, BadTensorInfos) {
  auto one_tensor = [](std::vector<uint64_t> ne, uint32_t type, uint64_t offset,
                       size_t data_bytes) {
    Bytes b;
    b.Header(1, 0).Tensor("w", std::move(ne), type, offset).PadTo(32);
    return ParseStatus(b.str() + std::string(data_bytes, '\0'));
  };
  EXPECT_OK(one_tensor({8, 2}, 0, 0, 64));
  // Unknown type: Unimplemented naming the tensor and the number.
  const absl::Status unknown = one_tensor({8, 2}, 99, 0, 64);
  EXPECT_EQ(unknown.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(unknown.message()), HasSubstr("tensor 'w'"));
  EXPECT_THAT(std::string(unknown.message()), HasSubstr("99"));
  EXPECT_THAT(std::string(one_tensor({8, 2}, 4, 0, 64).message()), HasSubstr("type 4"));
  // Data past the end of the file.
  EXPECT_THAT(std::string(one_tensor({8, 2}, 0, 0, 63).message()), HasSubstr("past the end"));
  EXPECT_THAT(std::string(one_tensor({8, 2}, 0, 1u << 30, 64).message()),
              HasSubstr("past the end"));
  EXPECT_THAT(std::string(one_tensor({8, 2}, 0, ~uint64_t{0} - 31, 64).message()),
              HasSubstr("past the end"));
  // Misaligned offset.
  EXPECT_THAT(std::string(one_tensor({8, 2}, 0, 4, 128).message()), HasSubstr("alignment"));
  // Dims: too many, zero, overflowing.
  EXPECT_THAT(std::string(one_tensor({1, 1, 1, 1, 1}, 0, 0, 64).message()),
              HasSubstr("at most 4 dimensions"));
  EXPECT_THAT(std::string(one_tensor({8, 0}, 0, 0, 64).message()), HasSubstr("must be positive"));
  EXPECT_THAT(std::string(one_tensor({uint64_t{1} << 40, uint64_t{1} << 40}, 0, 0, 64).message()),
              HasSubstr("overflows"));
  EXPECT_THAT(std::string(one_tensor({uint64_t{1} << 62}, 0, 0, 64).message()),
              HasSubstr("overflows"));
  // Row not a whole number of blocks (Q4_0 blocks are 32).
  EXPECT_THAT(std::string(one_tensor({16, 2}, 2, 0, 64).message()), HasSubstr("block size 32"));
  // Duplicate tensor names.
  Bytes dup;
  dup.Header(2, 0).Tensor("w", {8}, 0, 0).Tensor("w", {8}, 0, 32).PadTo(32);
  EXPECT_THAT(std::string(ParseStatus(dup.str() + std::string(64, '\0')).message()),
              HasSubstr("duplicate tensor 'w'"));
}

TEST(GgufReaderTest, ModelLevelErrors) {
  // A tensor whose shape disagrees with the config.
  ExpectError(ReadGgufModel(WriteTemp(TinyLlama(true,
                                                [](GgufBuilder&, std::vector<TensorSpec>& t) {
                                                  for (TensorSpec& s : t) {
                                                    if (s.name == "blk.0.attn_q.weight")
                                                      s.ne = {kDim, kHeads * kHeadDim + 2};
                                                  }
                                                }))),
              absl::StatusCode::kInvalidArgument,
              {"blk.0.attn_q.weight", "expected shape [32, 32]", "found [34, 32]"});
  // A missing tensor.
  ExpectError(ReadGgufModel(WriteTemp(TinyLlama(true,
                                                [](GgufBuilder&, std::vector<TensorSpec>& t) {
                                                  std::erase_if(t, [](const TensorSpec& s) {
                                                    return s.name == "blk.0.ffn_up.weight";
                                                  });
                                                }))),
              absl::StatusCode::kNotFound, {"missing tensor 'blk.0.ffn_up.weight'"});
  // A tensor type we can parse but not dequantize.
  ExpectError(ReadGgufModel(WriteTemp(TinyLlama(true,
                                                [](GgufBuilder&, std::vector<TensorSpec>& t) {
                                                  for (TensorSpec& s : t) {
                                                    if (s.name == "output_norm.weight") {
                                                      s.type = GgmlType::kI8;
                                                      s.data.assign(kDim, 1);
                                                    }
                                                  }
                                                }))),
              absl::StatusCode::kUnimplemented, {"output_norm.weight", "I8"});
  // Another architecture.
  ExpectError(ReadGgufModel(WriteTemp(TinyLlama(
                  true, nullptr, Metadata({{"general.architecture", GgufValue::String("gpt2")}})))),
              absl::StatusCode::kUnimplemented, {"architecture 'gpt2'"});
  // A missing required key, and one of the wrong type.
  ExpectError(
      ReadGgufModel(WriteTemp(TinyLlama(
          true, nullptr,
          [](GgufBuilder& b) { b.Add("general.architecture", GgufValue::String("llama")); }))),
      absl::StatusCode::kNotFound, {"llama.embedding_length"});
  ExpectError(
      ReadGgufModel(WriteTemp(TinyLlama(true, nullptr,
                                        [](GgufBuilder& b) {
                                          b.Add("general.architecture", GgufValue::String("llama"));
                                          b.Add("llama.embedding_length", GgufValue::String("32"));
                                        }))),
      absl::StatusCode::kInvalidArgument,
      {"llama.embedding_length", "expected an integer, found string"});
  // A vocabulary whose size disagrees with llama.vocab_size, and a bad special token id.
  ExpectError(ReadGgufModel(WriteTemp(TinyLlama(true,
                                                [](GgufBuilder& b, std::vector<TensorSpec>&) {
                                                  b.Add("llama.vocab_size", GgufValue::Uint32(9));
                                                }))),
              absl::StatusCode::kInvalidArgument, {"llama.vocab_size", "8 tokens"});
  ExpectError(
      ReadGgufModel(WriteTemp(TinyLlama(
          true, nullptr, Metadata({{"tokenizer.ggml.unknown_token_id", GgufValue::Uint32(8)}})))),
      absl::StatusCode::kInvalidArgument, {"tokenizer.ggml.unknown_token_id", "[0, 8)"});
  // A config that fails ModelConfig::Validate (heads do not divide), a duplicate key.
  ExpectError(
      ReadGgufModel(WriteTemp(TinyLlama(
          true, nullptr, Metadata({{"llama.attention.head_count_kv", GgufValue::Uint32(3)}})))),
      absl::StatusCode::kInvalidArgument, {"invalid model config", "n_kv_heads = 3"});
  ExpectError(ReadGgufModel(WriteTemp(TinyLlama(true,
                                                [](GgufBuilder& b, std::vector<TensorSpec>&) {
                                                  b.Add("llama.attention.head_count_kv",
                                                        GgufValue::Uint32(1));
                                                }))),
              absl::StatusCode::kInvalidArgument,
              {"duplicate metadata key 'llama.attention.head_count_kv'"});
  // A huge block count is refused before any tensor is looked at.
  ExpectError(
      ReadGgufModel(WriteTemp(TinyLlama(
          true, nullptr, Metadata({{"llama.block_count", GgufValue::Uint32(4000000000u)}})))),
      absl::StatusCode::kInvalidArgument, {"llama.block_count"});
  ExpectError(ReadGgufModel(absl::StrCat(engine::testing::TempDir(), "/no-such.gguf")),
              absl::StatusCode::kNotFound, {"no-such.gguf"});
}

// ---- Real files ----

TEST(GgufReaderTest, SmolLm2) {
  const std::string path = engine::testing::SmolLm2Path();
  if (path.empty()) GTEST_SKIP() << "SmolLM2 GGUF not in the cache (scripts/fetch-model)";
  ASSERT_OK_AND_ASSIGN(const LoadedModel m, ReadGgufModel(path));
  const ModelConfig& c = m.config;
  EXPECT_EQ(c.model_dim, 576);
  EXPECT_EQ(c.n_layers, 30);
  EXPECT_EQ(c.n_heads, 9);
  EXPECT_EQ(c.n_kv_heads, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.ffn_dim, 1536);
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_EQ(c.rope_theta, 100000.0f);
  EXPECT_EQ(c.max_seq_len, 8192);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-5f);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_EQ(c.rope_style, RopeStyle::kInterleaved);
  EXPECT_EQ(m.weights.output.data, m.weights.token_embedding.data);

  const GgufVocab& v = m.tokenizer.gguf;
  EXPECT_EQ(m.tokenizer.kind, TokenizerSource::Kind::kGguf);
  EXPECT_EQ(v.model, "gpt2");
  EXPECT_EQ(v.pre, "smollm");
  EXPECT_EQ(v.tokens.size(), 49152u);
  EXPECT_EQ(v.tokens[1], "<|im_start|>");
  EXPECT_EQ(v.merges.size(), 48900u);
  EXPECT_EQ(v.merges[0], "\xc4\xa0 t");  // "Ġ t"
  EXPECT_TRUE(v.scores.empty());
  EXPECT_EQ(v.bos_id, 1);
  EXPECT_EQ(v.eos_id, 2);
  EXPECT_FALSE(v.add_bos);
  EXPECT_THAT(m.chat_template, HasSubstr("<|im_start|>"));

  std::set<std::string> dtypes;
  for (const SourceTensorInfo& t : m.tensors) dtypes.insert(t.dtype);
  EXPECT_EQ(dtypes, (std::set<std::string>{"F32", "Q4_1", "Q8_0"}));
  EXPECT_EQ(m.tensors.size(), 272u);

  // Independent check of one Q4_1 block of blk.0.attn_q.weight: x = nibble * d + m.
  ASSERT_OK_AND_ASSIGN(auto mapped, MappedFile::Open(path));
  ASSERT_OK_AND_ASSIGN(const gguf::GgufFile f, gguf::ParseGguf(mapped->bytes(), path));
  const gguf::GgufTensorInfo* q = f.FindTensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  ASSERT_EQ(std::string(q->type_name()), "Q4_1");
  const std::span<const uint8_t> raw = gguf::TensorBytes(f, *q, mapped->bytes());
  for (int blk : {0, 1, 17, 10367}) {  // 576 * 576 / 32 = 10368 blocks
    const uint8_t* b = raw.data() + blk * 20;
    const float d = F16ToF32(static_cast<uint16_t>(b[0] | b[1] << 8));
    const float mn = F16ToF32(static_cast<uint16_t>(b[2] | b[3] << 8));
    for (int j = 0; j < 32; ++j) {
      const int nib = j < 16 ? (b[4 + j] & 0xF) : (b[4 + j - 16] >> 4);
      ASSERT_EQ(m.weights.layers[0].wq.data[blk * 32 + j], static_cast<float>(nib) * d + mn);
    }
  }
  // Norms are F32 in the file and read in place; values are sane.
  for (int i = 0; i < c.model_dim; ++i) {
    ASSERT_TRUE(std::isfinite(m.weights.final_norm.data[i]));
  }
  double sum = 0;
  for (int64_t i = 0; i < m.weights.token_embedding.num_elements(); i += 997) {
    ASSERT_TRUE(std::isfinite(m.weights.token_embedding.data[i]));
    sum += std::fabs(m.weights.token_embedding.data[i]);
  }
  EXPECT_GT(sum, 0.0);
}

TEST(GgufReaderTest, VocabOnlyFile) {
  const std::string path =
      engine::testing::SharedPath("tokenizers/llama-spm-gguf/ggml-vocab-llama-spm.gguf");
  if (!engine::testing::FileExists(path)) GTEST_SKIP() << path << " is missing";
  ASSERT_OK_AND_ASSIGN(const GgufVocab v, ReadGgufVocab(path));
  EXPECT_EQ(v.model, "llama");
  EXPECT_EQ(v.pre, "default");
  ASSERT_EQ(v.tokens.size(), 32000u);
  EXPECT_EQ(v.tokens[0], "<unk>");
  EXPECT_EQ(v.tokens[1], "<s>");
  EXPECT_EQ(v.tokens[3], "<0x00>");
  EXPECT_EQ(v.scores.size(), 32000u);
  ASSERT_EQ(v.token_types.size(), 32000u);
  EXPECT_EQ(v.token_types[0], 2);
  EXPECT_EQ(v.token_types[3], 6);
  EXPECT_EQ(v.bos_id, 1);
  EXPECT_EQ(v.eos_id, 2);
  EXPECT_EQ(v.unk_id, 0);
  EXPECT_TRUE(v.add_bos);
  EXPECT_TRUE(v.merges.empty());

  const absl::StatusOr<LoadedModel> m = ReadGgufModel(path);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("token_embd.weight"));
}

TEST(GgufReaderTest, VocabErrors) {
  // No tokenizer at all, and a scores array of the wrong length.
  const std::string none =
      WriteTemp(Bytes().Header(0, 1).KvStr("general.architecture", "llama").str());
  EXPECT_EQ(ReadGgufVocab(none).status().code(), absl::StatusCode::kNotFound);
  GgufBuilder b;
  b.Add("tokenizer.ggml.model", GgufValue::String("llama"));
  b.Add("tokenizer.ggml.tokens", GgufValue::StringArray({"a", "b"}));
  const std::vector<float> scores = {1.0f};
  b.Add("tokenizer.ggml.scores", GgufValue::Float32Array(scores));
  const absl::StatusOr<GgufVocab> v = ReadGgufVocab(WriteTemp(b.Serialize(), "v.gguf"));
  ASSERT_FALSE(v.ok());
  EXPECT_THAT(std::string(v.status().message()), HasSubstr("tokenizer.ggml.scores"));
  EXPECT_THAT(std::string(v.status().message()), HasSubstr("expected 2 entries"));
}

}  // namespace
}  // namespace engine::model
