// decode(encode(line)) == line for every line of WikiText-2's test file (4358 lines), for each
// tokenizer we load from a file. SmolLM2's GGUF tokenizer has the same check in
// gguf_tokenizer_test.cc (it needs the GGUF reader and a cached model).
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/test_util.h"
#include "tokenizer/tokenizer.h"

namespace engine::tokenizer {
namespace {

using ::engine::testing::SharedPath;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> WikitextLines() {
  std::istringstream wiki(ReadAll(SharedPath("data/wikitext2/wiki.test.raw")));
  std::vector<std::string> lines;
  for (std::string line; std::getline(wiki, line);) lines.push_back(line);
  return lines;
}

void ExpectRoundTrip(const Tokenizer& tok) {
  const std::vector<std::string> lines = WikitextLines();
  ASSERT_EQ(lines.size(), 4358u);
  size_t tokens = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    ASSERT_OK_AND_ASSIGN(const auto ids, tok.Encode(lines[i], EncodeOptions{}));
    ASSERT_OK_AND_ASSIGN(const std::string back, tok.Decode(ids));
    ASSERT_EQ(back, lines[i]) << "line " << i;
    tokens += ids.size();
  }
  EXPECT_GT(tokens, 200000u);  // the file is ~1.3 MB: the lines were really tokenized
}

TEST(RoundTripTest, TokenizerModel) {
  ASSERT_OK_AND_ASSIGN(auto tok, Tokenizer::FromSentencePieceFile(SharedPath(
                                     "tokenizers/llama2-sentencepiece/tokenizer.model")));
  ExpectRoundTrip(*tok);
}

TEST(RoundTripTest, Llama2TokenizerBin) {
  ASSERT_OK_AND_ASSIGN(auto tok,
                       Tokenizer::FromLlama2cFile(
                           SharedPath("tokenizers/llama2-sentencepiece/tokenizer.bin"), 32000));
  ExpectRoundTrip(*tok);
}

TEST(RoundTripTest, Stories260KTok512) {
  // 512 pieces with byte fallback: everything outside them goes through <0xNN> pieces.
  ASSERT_OK_AND_ASSIGN(
      auto tok, Tokenizer::FromLlama2cFile(SharedPath("models/stories260K/tok512.bin"), 512));
  ExpectRoundTrip(*tok);
}

TEST(RoundTripTest, TinyStoriesTokenizerJson) {
  // This vocabulary has no byte tokens: characters outside it become <unk>, which decodes to
  // nothing. So the expected text is the line without those characters, computed here from the
  // vocabulary in the JSON file (a character is known if it is a token on its own; a space is
  // "▁" after the normalizer).
  const std::string path = SharedPath("models/tinystories-656K/tokenizer.json");
  const auto json = nlohmann::json::parse(ReadAll(path), nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(json.is_discarded());
  ASSERT_TRUE(json.contains("model") && json["model"].contains("vocab"));
  const auto& vocab = json["model"]["vocab"];
  ASSERT_OK_AND_ASSIGN(auto tok, Tokenizer::FromHfTokenizerJson(path));

  const std::vector<std::string> lines = WikitextLines();
  ASSERT_EQ(lines.size(), 4358u);
  size_t dropped = 0, kept = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    std::string expected;
    for (size_t pos = 0; pos < line.size();) {
      size_t n = 1;
      const unsigned char c = line[pos];
      if (c >= 0xF0)
        n = 4;
      else if (c >= 0xE0)
        n = 3;
      else if (c >= 0xC0)
        n = 2;
      const std::string ch = line.substr(pos, n);
      pos += n;
      if (vocab.contains(ch == " " ? std::string("\xE2\x96\x81") : ch)) {
        expected += ch;
        ++kept;
      } else {
        ++dropped;
      }
    }
    ASSERT_OK_AND_ASSIGN(const auto ids, tok->Encode(line, EncodeOptions{}));
    ASSERT_OK_AND_ASSIGN(const std::string back, tok->Decode(ids));
    ASSERT_EQ(back, expected) << "line " << i << ": " << line;
  }
  EXPECT_GT(kept, 1000000u);
  EXPECT_GT(dropped, 0u);  // the file does have characters outside this small vocabulary
}

}  // namespace
}  // namespace engine::tokenizer
