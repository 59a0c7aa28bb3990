// The Hugging Face reader (config.json + safetensors) on tinystories-656K and on broken copies:
// malformed configs, shape mismatches, truncated or inconsistent safetensors files.
#include "model/hf_reader.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "gtest/gtest.h"
#include "model/safetensors_reader.h"
#include "nlohmann/json.hpp"
#include "tests/test_util.h"

namespace engine::model {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

const std::string kModelDir = testing::SharedPath("models/tinystories-656K");

// A copy of tinystories-656K in a temp dir, with `config` and `weights` replaced if not empty.
std::string CopyModel(const std::string& name, const std::string& config = "",
                      const std::string& weights = "") {
  const std::string dir = testing::TempDir() + "/" + name;
  fs::create_directories(dir);
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json"}) {
    fs::copy_file(kModelDir + "/" + f, dir + "/" + f, fs::copy_options::overwrite_existing);
  }
  if (!config.empty()) WriteAll(dir + "/config.json", config);
  if (!weights.empty()) WriteAll(dir + "/model.safetensors", weights);
  return dir;
}

std::string ConfigWith(const std::string& key, const nlohmann::json& value) {
  nlohmann::json config = nlohmann::json::parse(ReadAll(kModelDir + "/config.json"));
  if (value.is_null()) {
    config.erase(key);
  } else {
    config[key] = value;
  }
  return config.dump();
}

TEST(HfReaderTest, ReadsTinyStoriesWithTiedEmbeddingStoredOnce) {
  ASSERT_OK_AND_ASSIGN(LoadedModel m, ReadHfModel(kModelDir));
  const ModelConfig& c = m.config;
  EXPECT_EQ(c.model_dim, 128);
  EXPECT_EQ(c.ffn_dim, 384);
  EXPECT_EQ(c.n_layers, 2);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.vocab_size, 2048);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-6f);
  EXPECT_EQ(c.rope_style, RopeStyle::kHalves);
  EXPECT_TRUE(c.tied_embeddings);
  // Only lm_head.weight is stored; the embedding is the same tensor.
  EXPECT_EQ(m.weights.token_embedding.data, m.weights.output.data);
  EXPECT_EQ(m.tokenizer.kind, TokenizerSource::Kind::kHfTokenizerJson);
  EXPECT_EQ(m.tokenizer.bos_id, 1);
}

TEST(HfReaderTest, MalformedConfigsAreClearErrors) {
  struct Case {
    std::string config;
    std::string expected_text;
  };
  const Case cases[] = {
      {"{ not json", "malformed JSON"},
      {ConfigWith("hidden_size", nullptr), "missing field 'hidden_size'"},
      {ConfigWith("num_attention_heads", "eight"), "field 'num_attention_heads'"},
      {ConfigWith("architectures", nlohmann::json::array({"GPT2LMHeadModel"})),
       "architecture 'GPT2LMHeadModel'"},
      {ConfigWith("num_key_value_heads", 3), "not a multiple of n_kv_heads"},
      {ConfigWith("hidden_size", -128), "hidden_size"},
      {ConfigWith("rope_scaling", nlohmann::json{{"type", "linear"}}), "rope_scaling"},
  };
  int i = 0;
  for (const Case& c : cases) {
    const absl::StatusOr<LoadedModel> m = ReadHfModel(CopyModel("config" + std::to_string(i++), c.config));
    ASSERT_FALSE(m.ok()) << c.config;
    EXPECT_NE(m.status().message().find(c.expected_text), std::string::npos) << m.status();
    EXPECT_NE(m.status().message().find("config.json"), std::string::npos) << m.status();
  }
}

TEST(HfReaderTest, ShapeMismatchNamesTheTensor) {
  const absl::StatusOr<LoadedModel> m =
      ReadHfModel(CopyModel("shape", ConfigWith("intermediate_size", 385)));
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("mlp.gate_proj.weight"), std::string::npos) << m.status();
  EXPECT_NE(m.status().message().find("expected shape [385, 128], found [384, 128]"),
            std::string::npos)
      << m.status();
}

TEST(HfReaderTest, MissingTensorIsNotFound) {
  const absl::StatusOr<LoadedModel> m =
      ReadHfModel(CopyModel("layers", ConfigWith("num_hidden_layers", 3)));
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(absl::IsNotFound(m.status())) << m.status();
  EXPECT_NE(m.status().message().find("model.layers.2."), std::string::npos) << m.status();
}

// Builds a safetensors file from a header object and a data section.
std::string Safetensors(const nlohmann::json& header, const std::string& data) {
  const std::string text = header.dump();
  const uint64_t n = text.size();
  std::string bytes(8, '\0');
  std::memcpy(bytes.data(), &n, 8);
  return bytes + text + data;
}

TEST(SafetensorsTest, CorruptFilesAreRejected) {
  const std::string original = ReadAll(kModelDir + "/model.safetensors");
  struct Case {
    std::string name;
    std::string bytes;
    std::string expected_text;
  };
  uint64_t huge = 1ull << 40;
  std::string huge_header = original;
  std::memcpy(huge_header.data(), &huge, 8);
  const std::string data(16, '\0');
  const Case cases[] = {
      {"empty", "", "truncated"},
      {"truncated", original.substr(0, original.size() / 2), "outside the data section"},
      {"header_too_long", huge_header, "header length"},
      {"bad_json", std::string("\x02\0\0\0\0\0\0\0{]", 10), "malformed JSON"},
      {"unknown_dtype",
       Safetensors({{"t", {{"dtype", "Q9"}, {"shape", {4}}, {"data_offsets", {0, 16}}}}}, data),
       "unknown dtype 'Q9'"},
      {"size_mismatch",
       Safetensors({{"t", {{"dtype", "F32"}, {"shape", {5}}, {"data_offsets", {0, 16}}}}}, data),
       "needs 20 bytes"},
      {"past_end",
       Safetensors({{"t", {{"dtype", "F32"}, {"shape", {8}}, {"data_offsets", {0, 32}}}}}, data),
       "outside the data section"},
      {"negative_dim",
       Safetensors({{"t", {{"dtype", "F32"}, {"shape", {-4}}, {"data_offsets", {0, 16}}}}}, data),
       "non-negative"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = testing::TempDir() + "/" + c.name + ".safetensors";
    WriteAll(path, c.bytes);
    const auto file = SafetensorsFile::Open(path);
    ASSERT_FALSE(file.ok());
    EXPECT_NE(file.status().message().find(c.expected_text), std::string::npos) << file.status();
    EXPECT_NE(file.status().message().find(path), std::string::npos) << file.status();
  }
  // The whole reader reports the corrupt weights file too.
  EXPECT_FALSE(ReadHfModel(CopyModel("corrupt", "", original.substr(0, 1000))).ok());
}

}  // namespace
}  // namespace engine::model
