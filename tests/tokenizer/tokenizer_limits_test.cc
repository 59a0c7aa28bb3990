// Tokenizer files under the limits of issue 7: a vocabulary size the file cannot hold, token ids
// that claim far more tokens than the file has, components nested without bound, pieces the
// sentencepiece library cannot index, and paths that are not regular files all give clear
// errors before any allocation or recursion the file could choose.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"
#include "tokenizer/spm_convert.h"
#include "tokenizer/spm_model_proto.h"
#include "tokenizer/tokenizer.h"

namespace engine::tokenizer {
namespace {

using ::testing::HasSubstr;

using testing::ExpectError;

std::string Tok512() {
  std::ifstream in(testing::SharedPath("models/stories260K/tok512.bin"), std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(TokenizerLimitsTest, Llama2cVocabularyLargerThanTheFileIsRefusedBeforeAllocating) {
  const std::string bytes = Tok512();
  ASSERT_GT(bytes.size(), 4000u);
  ASSERT_OK(Llama2cToSpmModel(bytes, 512, "tok512.bin").status());
  // 4M tokens need at least 36 MiB of records; the file has 6 KiB.
  ExpectError(Llama2cToSpmModel(bytes, 1 << 22, "tok512.bin").status(),
              absl::StatusCode::kDataLoss,
              {"tok512.bin", "vocabulary of 4194304 tokens needs at least 37748736 bytes"});
}

TEST(TokenizerLimitsTest, TokenizerJsonIdsMustBeDense) {
  const std::string sparse =
      R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 16000000}, "merges": []}})";
  ExpectError(Tokenizer::FromHfTokenizerJsonText(sparse, "t.json").status(),
              absl::StatusCode::kInvalidArgument,
              {"t.json", "model.vocab", "ids go up to 16000000 for only 2 tokens"});
  const std::string sparse_added =
      R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
          "added_tokens": [{"id": 9000000, "content": "<x>", "special": true}]})";
  EXPECT_EQ(Tokenizer::FromHfTokenizerJsonText(sparse_added, "t.json").status().code(),
            absl::StatusCode::kInvalidArgument);
  // A gap after the model's vocabulary, as some files have, is fine.
  const std::string gap =
      R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []},
          "added_tokens": [{"id": 300, "content": "<x>", "special": true}]})";
  EXPECT_OK(Tokenizer::FromHfTokenizerJsonText(gap, "t.json").status());
}

TEST(TokenizerLimitsTest, TokenizerJsonSequencesHaveADepthLimit) {
  auto nested = [](const char* kind, const char* list, int depth) {
    std::string open, close;
    for (int i = 0; i < depth; ++i) {
      absl::StrAppend(&open, R"({"type": "Sequence", ")", list, R"(": [)");
      close += "]}";
    }
    return absl::StrCat(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, ")",
                        kind, R"(": )", open, "null", close, "}");
  };
  for (const auto& [kind, list] : {std::pair{"normalizer", "normalizers"},
                                   std::pair{"pre_tokenizer", "pretokenizers"},
                                   std::pair{"decoder", "decoders"},
                                   std::pair{"post_processor", "processors"}}) {
    SCOPED_TRACE(kind);
    EXPECT_OK(Tokenizer::FromHfTokenizerJsonText(nested(kind, list, 3), "t.json").status());
    // 100000 levels would overflow the stack of a recursive parser.
    ExpectError(Tokenizer::FromHfTokenizerJsonText(nested(kind, list, 100000), "t.json").status(),
                absl::StatusCode::kInvalidArgument, {kind, "nested deeper than 16"});
  }
}

TEST(TokenizerLimitsTest, TokenizerJsonWithoutVocabOrMergesIsAnError) {
  ExpectError(Tokenizer::FromHfTokenizerJsonText(R"({"model": {"type": "BPE", "merges": []}})",
                                                 "t.json")
                  .status(),
              absl::StatusCode::kInvalidArgument, {"missing object field 'vocab'"});
  ExpectError(Tokenizer::FromHfTokenizerJsonText(R"({"model": {"type": "BPE", "vocab": {}}})",
                                                 "t.json")
                  .status(),
              absl::StatusCode::kInvalidArgument, {"missing array field 'merges'"});
}

TEST(TokenizerLimitsTest, SentencePiecePiecesMustBeIndexable) {
  SpmModelProto m;
  m.model_type = kSpmUnigram;
  m.pieces = {{"<unk>", 0.0f, kSpmUnknown}, {"<s>", 0.0f, kSpmControl}, {"</s>", 0.0f, kSpmControl},
              {std::string("a\0b", 3), -1.0f, kSpmNormal}};
  m.vocab_size = 4;
  ExpectError(Tokenizer::FromSentencePieceBytes(SerializeSpmModelProto(m), "x.model").status(),
              absl::StatusCode::kInvalidArgument, {"x.model", "piece 3 contains a NUL byte"});
  m.pieces[3].piece = "ab";
  EXPECT_OK(Tokenizer::FromSentencePieceBytes(SerializeSpmModelProto(m), "x.model").status());
}

TEST(TokenizerLimitsTest, ManySpecialTokensLoadQuickly) {
  // The special-token table used to be re-sorted on every insertion: 100k added tokens (a
  // 3 MB file) took minutes to load. Now it is well under a second (the bound is loose for
  // sanitizer builds on a busy machine).
  std::string added;
  constexpr int kCount = 100000;
  for (int i = 0; i < kCount; ++i) {
    absl::StrAppend(&added, i == 0 ? "" : ",", R"({"id": )", i + 1, R"(, "content": "<t)", i,
                    R"(>", "special": true})");
  }
  const std::string json = absl::StrCat(
      R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "added_tokens": [)", added,
      "]}");
  const auto start = std::chrono::steady_clock::now();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Tokenizer> tok,
                       Tokenizer::FromHfTokenizerJsonText(json, "many.json"));
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 30.0);
  ASSERT_OK_AND_ASSIGN(
      const std::vector<TokenId> ids,
      tok->Encode("<t99999>a<t5><t50>", {.add_bos = false, .parse_special = true}));
  EXPECT_EQ(ids, (std::vector<TokenId>{kCount, 0, 6, 51}));
}

TEST(TokenizerLimitsTest, TokenizerFilesMustBeRegularFiles) {
  const std::string dir = testing::TempDir();
  const std::string fifo = dir + "/tokenizer.json";
  std::remove(fifo.c_str());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  ExpectError(Tokenizer::FromHfTokenizerJson(fifo).status(), absl::StatusCode::kInvalidArgument,
              {"not a regular file"});
  ExpectError(Tokenizer::FromSentencePieceFile(fifo).status(), absl::StatusCode::kInvalidArgument,
              {"not a regular file"});
  ExpectError(Tokenizer::FromLlama2cFile(fifo, 512).status(), absl::StatusCode::kInvalidArgument,
              {"not a regular file"});
  std::remove(fifo.c_str());
  EXPECT_EQ(Tokenizer::FromHfTokenizerJson(dir + "/missing.json").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace engine::tokenizer
