// The limits of issue 7: what a file claims is checked against the real file and against sane
// upper bounds before anything is allocated, and a model that would need more memory than the
// machine has is a ResourceExhausted error before the allocation. Huge claims are made real
// with sparse files (ftruncate), which cost no disk space; the test skips where the file system
// cannot make them.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/config.h"
#include "model/gguf_file.h"
#include "model/gguf_format.h"
#include "model/gguf_reader.h"
#include "model/hf_reader.h"
#include "model/mapped_file.h"
#include "model/memory_limit.h"
#include "nlohmann/json.hpp"
#include "tests/test_util.h"

namespace engine::model {
namespace {

using ::testing::HasSubstr;

using testing::ExpectError;

// Writes `head` and extends the file (sparsely) to `size` bytes. False if the file system
// refuses, e.g. a size above its maximum file size.
bool WriteSparse(const std::string& path, const std::string& head, uint64_t size) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(head.data(), static_cast<std::streamsize>(head.size()));
    if (!out) return false;
  }
  return ::truncate(path.c_str(), static_cast<off_t>(size)) == 0;
}

class Bytes {
 public:
  Bytes& Raw(const std::string& s) {
    out_ += s;
    return *this;
  }
  template <typename T>
  Bytes& Put(T v) {
    out_.append(reinterpret_cast<const char*>(&v), sizeof(T));
    return *this;
  }
  Bytes& Str(const std::string& s) { return Put<uint64_t>(s.size()).Raw(s); }
  Bytes& KvStr(const std::string& k, const std::string& v) {
    return Str(k).Put<uint32_t>(8).Str(v);
  }
  Bytes& KvU32(const std::string& k, uint32_t v) { return Str(k).Put<uint32_t>(4).Put(v); }
  Bytes& KvF32(const std::string& k, float v) { return Str(k).Put<uint32_t>(6).Put(v); }
  const std::string& str() const { return out_; }

 private:
  std::string out_;
};

absl::Status ParseBytes(const std::string& bytes) {
  return gguf::ParseGguf({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()},
                         "limits.gguf")
      .status();
}

TEST(MemoryLimitTest, CheckMemoryNamesWhatNeededIt) {
  EXPECT_OK(CheckMemory(1 << 20, "x", "f", 1 << 20));
  ExpectError(CheckMemory((uint64_t{3} << 20) + 1, "the KV cache", "model.gguf", 2 << 20),
              absl::StatusCode::kResourceExhausted,
              {"model.gguf", "the KV cache", "needs 3 MiB", "2 MiB of memory available"});
  const uint64_t available = AvailableMemoryBytes();
  EXPECT_GT(available, uint64_t{64} << 20);
  EXPECT_LE(available, static_cast<uint64_t>(::sysconf(_SC_PHYS_PAGES)) *
                           static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)));
  EXPECT_OK(CheckMemory(1 << 20, "a small buffer", "f"));
}

// A GGUF llama header whose one tensor claims 2^40 Q4_0 elements: the file (576 GiB, sparse)
// really holds them, but dequantized to FP32 they would need 4 TiB.
TEST(MemoryLimitTest, GgufWhoseDequantizedWeightsExceedMemoryIsResourceExhausted) {
  Bytes b;
  b.Raw("GGUF").Put<uint32_t>(3).Put<uint64_t>(1).Put<uint64_t>(9);
  b.KvStr("general.architecture", "llama")
      .KvU32("llama.embedding_length", 64)
      .KvU32("llama.feed_forward_length", 128)
      .KvU32("llama.block_count", 1)
      .KvU32("llama.attention.head_count", 4)
      .KvU32("llama.context_length", 64)
      .KvU32("llama.vocab_size", 100)
      .KvF32("llama.attention.layer_norm_rms_epsilon", 1e-5f)
      .KvStr("general.name", "huge");
  const uint64_t ne0 = uint64_t{1} << 20, ne1 = uint64_t{1} << 20;
  b.Str("blk.0.ffn_up.weight").Put<uint32_t>(2).Put(ne0).Put(ne1);
  b.Put<uint32_t>(static_cast<uint32_t>(gguf::GgmlType::kQ4_0)).Put<uint64_t>(0);
  std::string head = b.str();
  head.resize((head.size() + 31) / 32 * 32, '\0');
  const uint64_t data_bytes = ne0 * ne1 / 32 * 18;
  const std::string path = testing::TempDir() + "/huge.gguf";
  if (!WriteSparse(path, head, head.size() + data_bytes)) {
    std::remove(path.c_str());
    GTEST_SKIP() << "the file system cannot hold a sparse file of " << (data_bytes >> 30)
                 << " GiB";
  }
  const absl::StatusOr<LoadedModel> m = ReadGgufModel(path);
  std::remove(path.c_str());
  ExpectError(m.status(), absl::StatusCode::kResourceExhausted,
              {path, "dequantizing the weights to FP32", "needs 4194304 MiB"});
}

// The same for a Hugging Face directory whose BF16 tensor would become 4 TiB of FP32.
TEST(MemoryLimitTest, SafetensorsWhoseConvertedWeightsExceedMemoryIsResourceExhausted) {
  const std::string dir = testing::TempDir();
  {
    std::ofstream config(dir + "/config.json");
    config << R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 64,
      "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4,
      "vocab_size": 100, "max_position_embeddings": 64})";
  }
  const uint64_t bytes = uint64_t{1} << 41;  // 2^40 BF16 elements
  nlohmann::json header = {{"model.layers.0.mlp.up_proj.weight",
                            {{"dtype", "BF16"},
                             {"shape", {uint64_t{1} << 20, uint64_t{1} << 20}},
                             {"data_offsets", {uint64_t{0}, bytes}}}}};
  std::string text = header.dump();
  while (text.size() % 8 != 0) text += ' ';
  const uint64_t n = text.size();
  const std::string head = std::string(reinterpret_cast<const char*>(&n), 8) + text;
  const std::string path = dir + "/model.safetensors";
  if (!WriteSparse(path, head, head.size() + bytes)) {
    std::remove(path.c_str());
    GTEST_SKIP() << "the file system cannot hold a sparse file of 2 TiB";
  }
  const absl::StatusOr<LoadedModel> m = ReadHfModel(dir);
  std::remove(path.c_str());
  ExpectError(m.status(), absl::StatusCode::kResourceExhausted,
              {"converting the weights to FP32", "needs 4194304 MiB"});
}

TEST(GgufLimitsTest, StringLengthAboveTheLimitIsRefusedBeforeReading) {
  Bytes b;
  b.Raw("GGUF").Put<uint32_t>(3).Put<uint64_t>(0).Put<uint64_t>(1);
  b.Str("general.name").Put<uint32_t>(8).Put<uint64_t>(gguf::kMaxStringBytes + 1);
  std::string bytes = b.str() + std::string(64, 'x');
  ExpectError(ParseBytes(bytes), absl::StatusCode::kInvalidArgument,
              {"general.name", "exceeds the limit of 67108864 bytes"});
  // Below the limit but beyond the file: the remaining-bytes check.
  Bytes c;
  c.Raw("GGUF").Put<uint32_t>(3).Put<uint64_t>(0).Put<uint64_t>(1);
  c.Str("general.name").Put<uint32_t>(8).Put<uint64_t>(1000);
  ExpectError(ParseBytes(c.str() + "short"), absl::StatusCode::kInvalidArgument,
              {"general.name", "exceeds the 5 bytes remaining"});
}

TEST(GgufLimitsTest, ArrayLengthAboveTheLimitIsRefusedBeforeAllocating) {
  Bytes b;
  b.Raw("GGUF").Put<uint32_t>(3).Put<uint64_t>(0).Put<uint64_t>(1);
  b.Str("tokenizer.ggml.tokens").Put<uint32_t>(9).Put<uint32_t>(8);
  b.Put<uint64_t>(gguf::kMaxArrayElements + 1);
  ExpectError(ParseBytes(b.str() + std::string(64, '\0')), absl::StatusCode::kInvalidArgument,
              {"tokenizer.ggml.tokens", "exceeds the limit of 268435456"});
}

TEST(GgufLimitsTest, CountsAndDimensionsHaveBounds) {
  Bytes tensors;
  tensors.Raw("GGUF").Put<uint32_t>(3).Put<uint64_t>(gguf::kMaxTensorCount + 1).Put<uint64_t>(0);
  ExpectError(ParseBytes(tensors.str() + std::string(64, '\0')),
              absl::StatusCode::kInvalidArgument, {"tensor count 16777217 is impossible"});
  Bytes dims;
  dims.Raw("GGUF").Put<uint32_t>(3).Put<uint64_t>(1).Put<uint64_t>(0);
  dims.Str("t").Put<uint32_t>(5);
  ExpectError(ParseBytes(dims.str() + std::string(64, '\0')), absl::StatusCode::kInvalidArgument,
              {"tensor 't'", "at most 4 dimensions, found 5"});
  Bytes overflow;
  overflow.Raw("GGUF").Put<uint32_t>(3).Put<uint64_t>(1).Put<uint64_t>(0);
  overflow.Str("t").Put<uint32_t>(2).Put<uint64_t>(uint64_t{1} << 40).Put<uint64_t>(
      uint64_t{1} << 40);
  ExpectError(ParseBytes(overflow.str() + std::string(64, '\0')),
              absl::StatusCode::kInvalidArgument, {"tensor 't'", "overflows int64"});
}

TEST(ConfigLimitsTest, EveryDimensionHasAnUpperBound) {
  const ModelConfig good{.model_dim = 64, .ffn_dim = 128, .n_layers = 2, .n_heads = 4,
                         .n_kv_heads = 2, .head_dim = 16, .vocab_size = 100,
                         .max_seq_len = 64};
  ASSERT_OK(good.Validate("cfg"));
  struct Case {
    const char* field;
    void (*mutate)(ModelConfig&);
  };
  const Case cases[] = {
      {"model_dim", [](ModelConfig& c) { c.model_dim = kMaxModelDim + 1; }},
      {"ffn_dim", [](ModelConfig& c) { c.ffn_dim = 8 * kMaxModelDim + 1; }},
      {"n_layers", [](ModelConfig& c) { c.n_layers = kMaxLayers + 1; }},
      {"n_heads", [](ModelConfig& c) { c.n_heads = kMaxHeads + 1; }},
      {"head_dim", [](ModelConfig& c) { c.head_dim = kMaxModelDim + 2; }},
      {"vocab_size", [](ModelConfig& c) { c.vocab_size = kMaxVocab + 1; }},
      {"max_seq_len", [](ModelConfig& c) { c.max_seq_len = kMaxSeqLen + 1; }},
  };
  for (const Case& c : cases) {
    ModelConfig bad = good;
    c.mutate(bad);
    ExpectError(bad.Validate("cfg"), absl::StatusCode::kInvalidArgument, {"cfg", c.field});
  }
}

TEST(SmallFileLimitsTest, ConfigFilesMustBeRegularAndSmall) {
  const std::string dir = testing::TempDir();
  const std::string fifo = dir + "/config.json";
  std::remove(fifo.c_str());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  // Reading a FIFO would block forever (and /dev/zero would never end).
  ExpectError(ReadFileToString(fifo).status(), absl::StatusCode::kInvalidArgument,
              {"not a regular file"});
  ExpectError(ReadHfModel(dir).status(), absl::StatusCode::kInvalidArgument,
              {"not a regular file"});
  std::remove(fifo.c_str());
  const std::string big = dir + "/big.json";
  if (!WriteSparse(big, "{", kMaxSmallFileBytes + 1)) GTEST_SKIP() << "no sparse files";
  ExpectError(ReadFileToString(big).status(), absl::StatusCode::kInvalidArgument,
              {"big.json", "268435457 bytes", "more than the 268435456"});
  std::remove(big.c_str());
}

}  // namespace
}  // namespace engine::model
