// TextStreamer: never emits half a character, and the concatenation of Push outputs plus Flush
// is exactly Decode of the same tokens. Also the UTF-8 sanitizing rule both of them share.
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/gguf_reader.h"
#include "tests/test_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace engine::tokenizer {
namespace {

using ::engine::testing::SharedPath;
using ::engine::testing::SmolLm2Path;
using ::testing::ElementsAre;

std::string Sanitize(std::string_view bytes) {
  std::string out;
  EXPECT_EQ(AppendSanitizedUtf8(bytes, /*final=*/true, &out), bytes.size());
  return out;
}

TEST(Utf8Test, SanitizeReplacesIllFormedParts) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(Sanitize("abc"), "abc");
  EXPECT_EQ(Sanitize("h\xC3\xA9llo \xF0\x9F\xA6\x99"), "h\xC3\xA9llo \xF0\x9F\xA6\x99");
  EXPECT_EQ(Sanitize("\xC0\x80"), fffd + fffd);                        // C0 is never a lead byte
  EXPECT_EQ(Sanitize("\xE0\x80\x80"), fffd + fffd + fffd);             // overlong three-byte form
  EXPECT_EQ(Sanitize("\xED\xA0\x80"), fffd + fffd + fffd);             // a surrogate
  EXPECT_EQ(Sanitize("\xF4\x90\x80\x80"), fffd + fffd + fffd + fffd);  // > U+10FFFF
  EXPECT_EQ(Sanitize("\xE4\xBD"), fffd);  // cut short: one maximal subpart
  EXPECT_EQ(Sanitize("\xE4\xBDx"), fffd + "x");
  EXPECT_EQ(Sanitize("\xFF"), fffd);

  std::string out;
  EXPECT_EQ(AppendSanitizedUtf8("a\xE4\xBD", /*final=*/false, &out), 1u);  // hold "\xE4\xBD"
  EXPECT_EQ(out, "a");
  EXPECT_EQ(FindInvalidUtf8("ok\xC3"), 2u);
  EXPECT_EQ(FindInvalidUtf8("ok"), std::string_view::npos);
}

std::string StreamAll(const Tokenizer& tok, const std::vector<TokenId>& ids,
                      std::vector<std::string>* pieces = nullptr) {
  TextStreamer streamer(tok);
  std::string text;
  for (TokenId id : ids) {
    auto piece = streamer.Push(id);
    EXPECT_TRUE(piece.ok()) << piece.status();
    if (!piece.ok()) return text;
    EXPECT_EQ(FindInvalidUtf8(*piece), std::string_view::npos);
    if (pieces != nullptr) pieces->push_back(*piece);
    text += *piece;
  }
  const std::string rest = streamer.Flush();
  if (pieces != nullptr) pieces->push_back(rest);
  return text + rest;
}

std::unique_ptr<Tokenizer> LlamaModel() {
  auto t = Tokenizer::FromSentencePieceFile(
      SharedPath("tokenizers/llama2-sentencepiece/tokenizer.model"));
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

TEST(TextStreamerTest, ByteFallbackCharacterEmittedWhenComplete) {
  auto tok = LlamaModel();
  ASSERT_NE(tok, nullptr);
  // From llama.cpp's vectors: " 🦙" is "▁" + the byte pieces F0 9F A6 99 (ids 243 162 169 156);
  // 7251 is "▁hi" and 29991 "!" in the vocabulary (looked up with the Python gguf package).
  ASSERT_OK_AND_ASSIGN(const auto ids, tok->Encode("hi 🦙!", EncodeOptions{}));
  ASSERT_THAT(ids, ElementsAre(1, 7251, 29871, 243, 162, 169, 156, 29991));
  std::vector<std::string> pieces;
  const std::string streamed = StreamAll(*tok, ids, &pieces);
  EXPECT_THAT(pieces, ElementsAre("", "hi", " ", "", "", "", "\xF0\x9F\xA6\x99", "!", ""));
  ASSERT_OK_AND_ASSIGN(const std::string decoded, tok->Decode(ids));
  EXPECT_EQ(streamed, decoded);
  EXPECT_EQ(decoded, "hi 🦙!");
}

TEST(TextStreamerTest, LeadingSpaceDroppedOnlyForFirstVisiblePiece) {
  auto tok = LlamaModel();
  ASSERT_NE(tok, nullptr);
  ASSERT_OK_AND_ASSIGN(const auto ids, tok->Encode(" Hello world", EncodeOptions{}));
  ASSERT_THAT(ids, ElementsAre(1, 29871, 15043, 3186));  // BOS "▁" "▁Hello" "▁world"
  EXPECT_EQ(StreamAll(*tok, ids), " Hello world");
  // A BOS in the middle does not restart the text.
  const std::vector<TokenId> two = {1, 15043, 2, 1, 3186};
  ASSERT_OK_AND_ASSIGN(const std::string decoded, tok->Decode(two));
  EXPECT_EQ(decoded, "Hello world");
  EXPECT_EQ(StreamAll(*tok, two), decoded);
}

TEST(TextStreamerTest, FlushReplacesIncompleteTail) {
  auto tok = LlamaModel();
  ASSERT_NE(tok, nullptr);
  // "你" is E4 BD A0: push only the first two byte pieces (<0xE4> = 3 + 0xE4).
  const std::vector<TokenId> ids = {1, 15043, 3 + 0xE4, 3 + 0xBD};
  std::vector<std::string> pieces;
  const std::string streamed = StreamAll(*tok, ids, &pieces);
  EXPECT_THAT(pieces, ElementsAre("", "Hello", "", "", "\xEF\xBF\xBD"));
  ASSERT_OK_AND_ASSIGN(const std::string decoded, tok->Decode(ids));
  EXPECT_EQ(streamed, decoded);
  // A byte that can never start a character is replaced at once, not held.
  TextStreamer streamer(*tok);
  ASSERT_OK_AND_ASSIGN(const std::string bad, streamer.Push(3 + 0xFF));
  EXPECT_EQ(bad, "\xEF\xBF\xBD");
  EXPECT_EQ(streamer.Flush(), "");
  EXPECT_FALSE(streamer.Push(99999).ok());
}

// Push + Flush == Decode on real text for every tokenizer kind.
void ExpectStreamEqualsDecode(const Tokenizer& tok, int max_lines) {
  std::ifstream in(SharedPath("data/wikitext2/wiki.test.raw"));
  std::string line;
  for (int n = 0; n < max_lines && std::getline(in, line); ++n) {
    ASSERT_OK_AND_ASSIGN(const auto ids, tok.Encode(line + "\n", EncodeOptions{}));
    ASSERT_OK_AND_ASSIGN(const std::string decoded, tok.Decode(ids));
    ASSERT_EQ(StreamAll(tok, ids), decoded) << "line " << n;
    ASSERT_EQ(decoded, line + "\n") << "line " << n;
  }
}

TEST(TextStreamerTest, StreamEqualsDecodeSentencePiece) {
  auto tok = LlamaModel();
  ASSERT_NE(tok, nullptr);
  ExpectStreamEqualsDecode(*tok, 500);
  ASSERT_OK_AND_ASSIGN(
      auto tok512, Tokenizer::FromLlama2cFile(SharedPath("models/stories260K/tok512.bin"), 512));
  ExpectStreamEqualsDecode(*tok512, 500);
}

TEST(TextStreamerTest, StreamEqualsDecodeTinyStories) {
  ASSERT_OK_AND_ASSIGN(auto tok, Tokenizer::FromHfTokenizerJson(
                                     SharedPath("models/tinystories-656K/tokenizer.json")));
  // Whole stories-like text inside the vocabulary (wikitext has characters it lacks).
  const std::string text =
      "Once upon a time, there was a little girl named Lily.\n\"Hi!\" she said.";
  ASSERT_OK_AND_ASSIGN(const auto ids, tok->Encode(text, EncodeOptions{}));
  EXPECT_EQ(StreamAll(*tok, ids), text);
}

TEST(TextStreamerTest, SmolLm2ByteLevelCharacters) {
  const std::string path = SmolLm2Path();
  if (path.empty()) GTEST_SKIP() << "SmolLM2-135M-Instruct GGUF not cached (scripts/fetch-model)";
  ASSERT_OK_AND_ASSIGN(const model::GgufVocab v, model::ReadGgufVocab(path));
  GgufVocabSpec spec;
  spec.model = v.model;
  spec.pre = v.pre;
  spec.tokens = v.tokens;
  spec.scores = v.scores;
  spec.token_types = v.token_types;
  spec.merges = v.merges;
  spec.bos_id = v.bos_id;
  spec.eos_id = v.eos_id;
  spec.unk_id = v.unk_id;
  spec.pad_id = v.pad_id;
  spec.add_bos = v.add_bos;
  spec.add_space_prefix = v.add_space_prefix;
  ASSERT_OK_AND_ASSIGN(auto tok, Tokenizer::FromGguf(spec));
  // "你好" is E4 BD A0 E5 A5 BD; its tokens are "ä½" (E4 BD), "ł" (A0), "å¥" (E5 A5), "½" (BD)
  // (ids from the independent reference in gguf_tokenizer_test.cc).
  std::vector<std::string> pieces;
  const std::string streamed = StreamAll(*tok, {1, 18645, 250, 48392, 138, 2}, &pieces);
  EXPECT_THAT(pieces, ElementsAre("", "", "你", "", "好", "", ""));
  EXPECT_EQ(streamed, "你好");
  ExpectStreamEqualsDecode(*tok, 500);
}

}  // namespace
}  // namespace engine::tokenizer
