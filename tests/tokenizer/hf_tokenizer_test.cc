// Hugging Face tokenizer.json BPE models: tinystories-656K's (normalizer Prepend "▁" + Replace,
// no pre-tokenizer, byte fallback, Strip decoder) against ids from the `tokenizers` library, and
// small hand-written files for the byte-level and Metaspace paths and for error handling.
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"
#include "tokenizer/tokenizer.h"

namespace engine::tokenizer {
namespace {

using ::engine::testing::SharedPath;
using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::Gt;
using ::testing::HasSubstr;

constexpr EncodeOptions kPlain{.add_bos = false, .parse_special = false};
constexpr EncodeOptions kSpecial{.add_bos = false, .parse_special = true};

std::unique_ptr<Tokenizer> LoadTinyStories() {
  auto t = Tokenizer::FromHfTokenizerJson(SharedPath("models/tinystories-656K/tokenizer.json"));
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

TEST(TinyStoriesTokenizerTest, MatchesHuggingFaceTokenizers) {
  auto tok = LoadTinyStories();
  ASSERT_NE(tok, nullptr);
  // Expected ids: Hugging Face `tokenizers` 0.23.3,
  //   Tokenizer.from_file("tokenizer.json").encode(text, add_special_tokens=False).ids
  // run on this same file in a throwaway script.
  const std::vector<std::pair<std::string, std::vector<TokenId>>> cases = {
      {"Once upon a time, there was a little girl named Lily.",
       {80, 147, 201, 282, 215, 286, 598, 629, 10}},
      {"She liked to play in the park with her dog.", {80, 892, 1083, 238, 834, 628, 604, 10}},
      {"\"Hello!\" said Tom.", {80, 5, 1288, 67, 1528, 380, 10}},
      {"  two  spaces", {80, 80, 80, 1209, 80, 415, 53, 1499}},
      {"a\nb", {85, 3, 54}},
      {"héllo 你好", {141, 0, 113, 139, 0}},  // é and 你好 are <unk> (fused), no byte tokens
      {"", {}},
  };
  for (const auto& [text, expected] : cases) {
    ASSERT_OK_AND_ASSIGN(const auto ids, tok->Encode(text, kPlain));
    EXPECT_EQ(ids, expected) << "text: '" << text << "'";
  }
  // add_special_tokens=True puts <|start_story|> (1) first: the post-processor's template.
  ASSERT_OK_AND_ASSIGN(const auto with_bos, tok->Encode("Hello", EncodeOptions{}));
  EXPECT_THAT(with_bos, ElementsAre(1, 80, 1288, 67));
}

TEST(TinyStoriesTokenizerTest, SpecialTokens) {
  auto tok = LoadTinyStories();
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->kind(), "bpe");
  EXPECT_EQ(tok->vocab_size(), 2048);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);  // from tokenizer_config.json beside tokenizer.json
  EXPECT_TRUE(tok->IsEndOfGeneration(2));
  EXPECT_EQ(tok->FindSpecialToken("<|end_story|>"), 2);
  EXPECT_EQ(tok->FindSpecialToken("<|start_story|>"), 1);

  // Same `tokenizers` run; the added tokens are "normalized", so they match with the "▁"
  // the normalizer puts before them.
  ASSERT_OK_AND_ASSIGN(auto ids, tok->Encode("hi <|end_story|> there", kSpecial));
  EXPECT_THAT(ids, ElementsAre(141, 61, 2, 80, 249, 57));
  ASSERT_OK_AND_ASSIGN(ids, tok->Encode("<|start_story|>Once upon", kSpecial));
  EXPECT_THAT(ids, ElementsAre(1, 147, 201, 189, 111));

  ASSERT_OK_AND_ASSIGN(ids, tok->Encode("hi <|end_story|> there <|start_story|>", kPlain));
  for (TokenId id : ids) {
    EXPECT_NE(id, 1);
    EXPECT_NE(id, 2);
  }
  ASSERT_OK_AND_ASSIGN(const std::string text, tok->Decode(ids));
  EXPECT_EQ(text, "hi <|end_story|> there <|start_story|>");
}

TEST(TinyStoriesTokenizerTest, DecodeDropsSpecialsAndLeadingSpace) {
  auto tok = LoadTinyStories();
  ASSERT_NE(tok, nullptr);
  ASSERT_OK_AND_ASSIGN(auto text, tok->Decode(std::vector<TokenId>{1, 80, 147, 201, 2}));
  EXPECT_EQ(text, "Once ");
  // <unk> is a special added token: invisible, like BOS. (The `tokenizers` library's decode
  // prints special tokens of this file even with skip_special_tokens; we never print them.)
  ASSERT_OK_AND_ASSIGN(text, tok->Decode(std::vector<TokenId>{141, 0, 113, 139, 0}));
  EXPECT_EQ(text, "hllo ");
  // Token 1209 is "two▁"; the Strip decoder removes one leading space only (the `tokenizers`
  // library also gives "  two ").
  ASSERT_OK_AND_ASSIGN(text, tok->Decode(std::vector<TokenId>{80, 80, 80, 1209}));
  EXPECT_EQ(text, "  two ");
}

TEST(TinyStoriesTokenizerTest, TextOnlyHasNoEos) {
  // Without tokenizer_config.json the file does not say which token ends a story.
  std::ifstream in(SharedPath("models/tinystories-656K/tokenizer.json"));
  const std::string json((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_OK_AND_ASSIGN(auto tok, Tokenizer::FromHfTokenizerJsonText(json, "tokenizer.json"));
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), -1);
  HfTokenizerOptions hint;
  hint.eos_id = 2;
  ASSERT_OK_AND_ASSIGN(auto with_hint,
                       Tokenizer::FromHfTokenizerJsonText(json, "tokenizer.json", hint));
  EXPECT_EQ(with_hint->eos_id(), 2);
  EXPECT_TRUE(with_hint->IsEndOfGeneration(2));
}

// A GPT-2 style byte-level file small enough to tokenize by hand.
constexpr char kByteLevelJson[] = R"({
  "added_tokens": [{"id": 13, "content": "<|end|>", "special": true, "normalized": false}],
  "normalizer": null,
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                    "use_regex": true},
  "post_processor": {"type": "ByteLevel"},
  "decoder": {"type": "ByteLevel"},
  "model": {"type": "BPE", "unk_token": null, "byte_fallback": false,
    "vocab": {"h": 0, "e": 1, "l": 2, "o": 3, "Ġ": 4, "w": 5, "r": 6, "d": 7, "he": 8,
              "ll": 9, "hell": 10, "hello": 11, "Ġw": 12, "<|end|>": 13},
    "merges": [["h", "e"], ["l", "l"], ["he", "ll"], ["hell", "o"], ["Ġ", "w"]]}
})";

TEST(HfTokenizerJsonTest, ByteLevelByHand) {
  ASSERT_OK_AND_ASSIGN(auto tok, Tokenizer::FromHfTokenizerJsonText(kByteLevelJson, "bl"));
  EXPECT_EQ(tok->bos_id(), -1);
  // "hello" merges h+e, l+l, he+ll, hell+o; " world" is "Ġ"+"w" merged, then o, r, l, d.
  ASSERT_OK_AND_ASSIGN(auto ids, tok->Encode("hello world", EncodeOptions{}));
  EXPECT_THAT(ids, ElementsAre(11, 12, 3, 6, 2, 7));
  ASSERT_OK_AND_ASSIGN(auto text, tok->Decode(ids));
  EXPECT_EQ(text, "hello world");
  ASSERT_OK_AND_ASSIGN(ids, tok->Encode("hello<|end|>", kSpecial));
  EXPECT_THAT(ids, ElementsAre(11, 13));
  EXPECT_TRUE(tok->IsControl(13));
  // Without special parsing, "<", "|", ... have no tokens and no <unk>: dropped.
  ASSERT_OK_AND_ASSIGN(ids, tok->Encode("hello<|end|>", kPlain));
  EXPECT_THAT(ids, ElementsAre(11, 1, 7));
}

constexpr char kMetaspaceJson[] = R"({
  "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always",
                    "split": true},
  "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always",
              "split": true},
  "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": true,
    "vocab": {"<unk>": 0, "▁": 1, "a": 2, "b": 3, "▁a": 4, "▁b": 5, "▁ab": 6},
    "merges": ["▁ a", "▁a b"]}
})";

TEST(HfTokenizerJsonTest, MetaspaceByHand) {
  ASSERT_OK_AND_ASSIGN(auto tok, Tokenizer::FromHfTokenizerJsonText(kMetaspaceJson, "ms"));
  // "ab b" -> "▁ab▁b" -> words "▁ab" (▁+a, then ▁a+b) and "▁b" (no "▁ b" merge).
  ASSERT_OK_AND_ASSIGN(auto ids, tok->Encode("ab b", EncodeOptions{}));
  EXPECT_THAT(ids, ElementsAre(6, 1, 3));
  ASSERT_OK_AND_ASSIGN(auto text, tok->Decode(ids));
  EXPECT_EQ(text, "ab b");
  ASSERT_OK_AND_ASSIGN(ids, tok->Encode("axyb", EncodeOptions{}));
  EXPECT_THAT(ids, ElementsAre(4, 0, 3));  // x and y fused into one <unk>
}

TEST(HfTokenizerJsonTest, ClearErrors) {
  const auto expect_error = [](std::string_view json, absl::StatusCode code,
                               std::string_view fragment) {
    const auto t = Tokenizer::FromHfTokenizerJsonText(json, "test.json");
    ASSERT_FALSE(t.ok()) << json;
    EXPECT_EQ(t.status().code(), code) << t.status();
    EXPECT_THAT(std::string(t.status().message()), HasSubstr(std::string(fragment)));
    EXPECT_THAT(std::string(t.status().message()), HasSubstr("test.json"));
  };
  expect_error("{not json", absl::StatusCode::kInvalidArgument, "JSON");
  expect_error("[]", absl::StatusCode::kInvalidArgument, "JSON");
  expect_error("{}", absl::StatusCode::kInvalidArgument, "model");
  expect_error(R"({"model": {"type": "WordPiece", "vocab": {}}})", absl::StatusCode::kUnimplemented,
               "WordPiece");
  expect_error(R"({"model": {"type": "BPE", "vocab": {"a": "x"}, "merges": []}})",
               absl::StatusCode::kInvalidArgument, "not an integer");
  expect_error(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b c"]}})",
               absl::StatusCode::kInvalidArgument, "two tokens");
  expect_error(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a", "b"]]}})",
               absl::StatusCode::kInvalidArgument, "not in the vocabulary");
  expect_error(R"({"normalizer": {"type": "NFKC"},
                   "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})",
               absl::StatusCode::kUnimplemented, "NFKC");
  expect_error(R"({"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(("},
                   "behavior": "Isolated"},
                   "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})",
               absl::StatusCode::kInvalidArgument, "does not compile");
  expect_error(R"({"model": {"type": "BPE", "vocab": {"a": 99999999}, "merges": []}})",
               absl::StatusCode::kInvalidArgument, "out of range");
  EXPECT_EQ(Tokenizer::FromHfTokenizerJson("/nonexistent/tokenizer.json").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace engine::tokenizer
