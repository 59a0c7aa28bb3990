// The llama2.c reader on the real stories260K checkpoint and on corrupt copies of it.
#include "model/llama2c_reader.h"

#include <fstream>
#include <iterator>

#include "gtest/gtest.h"
#include "model/model_loader.h"
#include "tests/test_util.h"

namespace engine::model {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string WriteTemp(const std::string& name, const std::string& bytes) {
  const std::string path = testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

const std::string& Stories260K() {
  static const std::string path = testing::SharedPath("models/stories260K/stories260K.bin");
  return path;
}

TEST(Llama2cReaderTest, ReadsStories260K) {
  ASSERT_OK_AND_ASSIGN(LoadedModel m, ReadLlama2cModel(Stories260K()));
  const ModelConfig& c = m.config;
  EXPECT_EQ(c.model_dim, 64);
  EXPECT_EQ(c.ffn_dim, 172);
  EXPECT_EQ(c.n_layers, 5);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.max_seq_len, 512);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_EQ(c.rope_style, RopeStyle::kInterleaved);
  EXPECT_EQ(m.weights.output.data, m.weights.token_embedding.data);
  EXPECT_EQ(m.tokenizer.kind, TokenizerSource::Kind::kLlama2cFile);
  EXPECT_NE(m.tokenizer.path.find("tok512.bin"), std::string::npos);
  // Format detection by content.
  ASSERT_OK_AND_ASSIGN(LoadedModel detected, LoadModelFile(Stories260K()));
  EXPECT_EQ(detected.format, ModelFormat::kLlama2c);
}

TEST(Llama2cReaderTest, RejectsTruncatedFilesAtEveryRegion) {
  const std::string bytes = ReadAll(Stories260K());
  for (size_t keep : {size_t{0}, size_t{3}, size_t{27}, size_t{28}, size_t{1000},
                      bytes.size() / 2, bytes.size() - 4, bytes.size() - 1}) {
    SCOPED_TRACE(keep);
    const std::string path = WriteTemp("truncated.bin", bytes.substr(0, keep));
    const absl::StatusOr<LoadedModel> m = ReadLlama2cModel(path);
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.status().message().find(path), std::string::npos) << m.status();
    // Detection refuses it too: its header no longer matches its size.
    EXPECT_FALSE(LoadModelFile(path).ok());
  }
}

TEST(Llama2cReaderTest, RejectsTrailingDataAndImplausibleHeaders) {
  std::string bytes = ReadAll(Stories260K());
  const absl::StatusOr<LoadedModel> trailing =
      ReadLlama2cModel(WriteTemp("trailing.bin", bytes + "xxxx"));
  ASSERT_FALSE(trailing.ok());
  EXPECT_TRUE(absl::IsDataLoss(trailing.status())) << trailing.status();

  // n_kv_heads (the 5th int32) larger than n_heads.
  std::string bad = bytes;
  const int32_t kv_heads = 16;
  std::memcpy(&bad[16], &kv_heads, 4);
  const absl::StatusOr<LoadedModel> m = ReadLlama2cModel(WriteTemp("badheader.bin", bad));
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(m.status())) << m.status();
  EXPECT_NE(m.status().message().find("n_kv_heads=16"), std::string::npos) << m.status();
}

TEST(ModelLoaderTest, UnknownFormatAndMissingFileAreClearErrors) {
  const absl::StatusOr<LoadedModel> unknown =
      LoadModelFile(WriteTemp("garbage.bin", "this is not a model"));
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("unrecognised model format"), std::string::npos);
  const absl::StatusOr<LoadedModel> missing = LoadModelFile("/nonexistent/model.gguf");
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
}

}  // namespace
}  // namespace engine::model
