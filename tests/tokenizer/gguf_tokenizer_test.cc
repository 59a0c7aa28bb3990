// Tokenizers built from GGUF vocabularies read by model::ReadGgufVocab: the LLaMA SentencePiece
// vocabulary (llama.cpp's test vectors) and SmolLM2's byte-level BPE (ids derived independently
// with Hugging Face `tokenizers`).
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/gguf_reader.h"
#include "tests/test_util.h"
#include "tokenizer/tokenizer.h"

namespace engine::tokenizer {
namespace {

using ::engine::testing::SharedPath;
using ::engine::testing::SmolLm2Path;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

// What the engine does: copy model::GgufVocab into the tokenizer's plain-type spec.
GgufVocabSpec ToSpec(const model::GgufVocab& v) {
  GgufVocabSpec s;
  s.model = v.model;
  s.pre = v.pre;
  s.tokens = v.tokens;
  s.scores = v.scores;
  s.token_types = v.token_types;
  s.merges = v.merges;
  s.bos_id = v.bos_id;
  s.eos_id = v.eos_id;
  s.unk_id = v.unk_id;
  s.pad_id = v.pad_id;
  s.add_bos = v.add_bos;
  s.add_space_prefix = v.add_space_prefix;
  return s;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

constexpr EncodeOptions kPlain{.add_bos = false, .parse_special = false};

// ---- LLaMA SentencePiece vocabulary in GGUF ----

TEST(GgufLlamaTokenizerTest, LlamaCppVectors) {
  const std::string base = SharedPath("tokenizers/llama-spm-gguf/ggml-vocab-llama-spm.gguf");
  ASSERT_OK_AND_ASSIGN(const model::GgufVocab vocab, model::ReadGgufVocab(base));
  ASSERT_OK_AND_ASSIGN(auto tok, Tokenizer::FromGguf(ToSpec(vocab)));
  EXPECT_EQ(tok->kind(), "sentencepiece");
  EXPECT_EQ(tok->vocab_size(), 32000);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);

  // Same reading as llama.cpp's tests/test-tokenizer-0.cpp: no BOS, no special parsing.
  const std::string inp = ReadAll(base + ".inp");
  std::istringstream out(ReadAll(base + ".out"));
  const std::string sep = "\n__ggml_vocab_test__\n";
  int checked = 0;
  for (size_t pos = 0; pos < inp.size();) {
    const size_t next = inp.find(sep, pos);
    const size_t end = next == std::string::npos ? inp.size() : next;
    const std::string text = inp.substr(pos, end - pos);
    pos = next == std::string::npos ? inp.size() : next + sep.size();
    std::string line;
    ASSERT_TRUE(std::getline(out, line));
    std::vector<TokenId> expected;
    std::istringstream ids(line);
    for (int id; ids >> id;) expected.push_back(id);
    ASSERT_OK_AND_ASSIGN(const auto got, tok->Encode(text, kPlain));
    EXPECT_EQ(got, expected) << "input: '" << text << "'";
    ASSERT_OK_AND_ASSIGN(const std::string decoded, tok->Decode(got));
    EXPECT_EQ(decoded, text);
    ++checked;
  }
  EXPECT_EQ(checked, 46);
}

TEST(GgufLlamaTokenizerTest, SameAsTokenizerModelOnWikitext) {
  ASSERT_OK_AND_ASSIGN(
      const model::GgufVocab vocab,
      model::ReadGgufVocab(SharedPath("tokenizers/llama-spm-gguf/ggml-vocab-llama-spm.gguf")));
  ASSERT_OK_AND_ASSIGN(auto gguf, Tokenizer::FromGguf(ToSpec(vocab)));
  ASSERT_OK_AND_ASSIGN(auto spm, Tokenizer::FromSentencePieceFile(SharedPath(
                                     "tokenizers/llama2-sentencepiece/tokenizer.model")));
  std::istringstream wiki(ReadAll(SharedPath("data/wikitext2/wiki.test.raw")));
  std::string line;
  for (int n = 0; n < 1000 && std::getline(wiki, line); ++n) {
    ASSERT_OK_AND_ASSIGN(auto a, gguf->Encode(line, EncodeOptions{}));
    ASSERT_OK_AND_ASSIGN(auto b, spm->Encode(line, EncodeOptions{}));
    ASSERT_EQ(a, b) << "line " << n;
  }
}

TEST(GgufLlamaTokenizerTest, RejectsBadVocabularies) {
  GgufVocabSpec spec;
  spec.model = "llama";
  EXPECT_FALSE(Tokenizer::FromGguf(spec).ok());  // no tokens
  spec.tokens = {"<unk>", "<s>", "</s>", "a", "b", "ab"};
  spec.token_types = {2, 3, 3, 1, 1, 9};
  const auto bad_type = Tokenizer::FromGguf(spec);
  ASSERT_FALSE(bad_type.ok());
  EXPECT_THAT(std::string(bad_type.status().message()), HasSubstr("token type 9"));
  spec.token_types = {2, 3, 3, 1, 1, 1};
  spec.scores = {0, 0};
  EXPECT_FALSE(Tokenizer::FromGguf(spec).ok());  // scores size mismatch
  spec.scores = {0, 0, 0, -1, -2, -3};
  spec.bos_id = 7;
  EXPECT_FALSE(Tokenizer::FromGguf(spec).ok());  // bos out of range
  spec.bos_id = 1;
  spec.eos_id = 2;
  spec.tokens[4] = "a";
  const auto dup = Tokenizer::FromGguf(spec);
  ASSERT_FALSE(dup.ok());
  EXPECT_THAT(std::string(dup.status().message()), HasSubstr("both"));
  spec.tokens[4] = "b";
  ASSERT_OK_AND_ASSIGN(auto tiny, Tokenizer::FromGguf(spec));
  ASSERT_OK_AND_ASSIGN(auto ids, tiny->Encode("ab", kPlain));
  // The dummy prefix "▁" has no piece and there is no byte fallback: it becomes <unk>.
  EXPECT_THAT(ids, ElementsAre(0, 5));
  spec.model = "t5";
  EXPECT_EQ(Tokenizer::FromGguf(spec).status().code(), absl::StatusCode::kUnimplemented);
}

// ---- SmolLM2 byte-level BPE ----

class SmolLm2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = SmolLm2Path();
    if (path.empty()) {
      GTEST_SKIP() << "SmolLM2-135M-Instruct GGUF not in ~/.cache/fp4lm/models "
                      "(scripts/fetch-model); skipping its tokenizer tests";
    }
    auto vocab = model::ReadGgufVocab(path);
    ASSERT_TRUE(vocab.ok()) << vocab.status();
    EXPECT_EQ(vocab->model, "gpt2");
    EXPECT_EQ(vocab->pre, "smollm");
    auto tok = Tokenizer::FromGguf(ToSpec(*vocab));
    ASSERT_TRUE(tok.ok()) << tok.status();
    tok_ = *std::move(tok);
  }
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(SmolLm2Test, MatchesIndependentReference) {
  // Expected ids: Hugging Face `tokenizers` 0.23 BPE built from this GGUF's own
  // tokenizer.ggml.tokens + merges, with SmolLM2's pre-tokenizer (Sequence[Digits(individual),
  // ByteLevel(add_prefix_space=false)]) -- independent of our code. "Hello world! 123" and
  // "  multiple   spaces" also agree with ids published for SmolLM2 elsewhere.
  const std::vector<std::pair<std::string, std::vector<TokenId>>> cases = {
      {"Hello world", {19556, 905}},
      {"12345", {33, 34, 35, 36, 37}},
      {"Hello, world! How are you?", {19556, 28, 905, 17, 1073, 359, 346, 47}},
      {"don't", {12420, 982}},
      {"I'll they're", {57, 3060, 502, 2316}},
      {"a  b   c", {81, 216, 278, 256, 265}},
      {"line1\nline2\n\nend", {1311, 33, 198, 1311, 34, 198, 198, 486}},
      {"héllo wörld 你好", {88, 2756, 31394, 267, 29989, 400, 216, 18645, 250, 48392, 138}},
      {" leading", {2899}},
      {"Hello world! 123", {19556, 905, 17, 216, 33, 34, 35}},
      {"  multiple   spaces", {216, 2701, 256, 5600}},
  };
  for (const auto& [text, expected] : cases) {
    ASSERT_OK_AND_ASSIGN(const auto ids, tok_->Encode(text, EncodeOptions{}));
    EXPECT_EQ(ids, expected) << "text: '" << text << "'";
    ASSERT_OK_AND_ASSIGN(const std::string decoded, tok_->Decode(ids));
    EXPECT_EQ(decoded, text);
  }
}

TEST_F(SmolLm2Test, ChatMlSpecialTokens) {
  EXPECT_EQ(tok_->kind(), "bpe");
  EXPECT_EQ(tok_->vocab_size(), 49152);
  EXPECT_EQ(tok_->bos_id(), 1);
  EXPECT_EQ(tok_->eos_id(), 2);
  EXPECT_EQ(tok_->FindSpecialToken("<|im_start|>"), 1);
  EXPECT_EQ(tok_->FindSpecialToken("<|im_end|>"), 2);
  EXPECT_EQ(tok_->FindSpecialToken("<|endoftext|>"), 0);
  EXPECT_EQ(tok_->FindSpecialToken("user"), -1);
  EXPECT_TRUE(tok_->IsEndOfGeneration(2));
  EXPECT_TRUE(tok_->IsEndOfGeneration(0));
  EXPECT_FALSE(tok_->IsEndOfGeneration(1));

  const std::string chat = "<|im_start|>user\nhi<|im_end|>";
  // add_bos_token is false in this GGUF, so no BOS even when asked.
  ASSERT_OK_AND_ASSIGN(const auto parsed,
                       tok_->Encode(chat, {.add_bos = true, .parse_special = true}));
  EXPECT_THAT(parsed, ElementsAre(1, 4093, 198, 6004, 2));  // same reference as above
  ASSERT_OK_AND_ASSIGN(const auto plain, tok_->Encode(chat, EncodeOptions{}));
  EXPECT_GT(plain.size(), 5u);
  for (const TokenId id : plain) EXPECT_GT(id, 16) << "special id from plain text";
  ASSERT_OK_AND_ASSIGN(const std::string plain_text, tok_->Decode(plain));
  EXPECT_EQ(plain_text, chat);
  ASSERT_OK_AND_ASSIGN(const std::string parsed_text, tok_->Decode(parsed));
  EXPECT_EQ(parsed_text, "user\nhi");  // control tokens are invisible
}

TEST_F(SmolLm2Test, WikitextRoundTrip) {
  std::istringstream wiki(ReadAll(SharedPath("data/wikitext2/wiki.test.raw")));
  std::string line;
  int lines = 0;
  while (std::getline(wiki, line)) {
    ASSERT_OK_AND_ASSIGN(const auto ids, tok_->Encode(line, EncodeOptions{}));
    ASSERT_OK_AND_ASSIGN(const std::string back, tok_->Decode(ids));
    ASSERT_EQ(back, line) << "line " << lines;
    ++lines;
  }
  EXPECT_EQ(lines, 4358);
}

TEST(GgufBpeTokenizerTest, RejectsBadVocabularies) {
  GgufVocabSpec spec;
  spec.model = "gpt2";
  spec.pre = "gpt2";
  spec.tokens = {"a", "b", "ab"};
  EXPECT_THAT(std::string(Tokenizer::FromGguf(spec).status().message()), HasSubstr("merges"));
  spec.merges = {"a b", "ab"};
  EXPECT_THAT(std::string(Tokenizer::FromGguf(spec).status().message()), HasSubstr("merges[1]"));
  spec.merges = {"a c"};
  EXPECT_THAT(std::string(Tokenizer::FromGguf(spec).status().message()),
              HasSubstr("not in the vocabulary"));
  spec.merges = {"a b"};
  spec.token_types = {1, 1};
  EXPECT_FALSE(Tokenizer::FromGguf(spec).ok());
  spec.token_types = {1, 1, 1};
  spec.eos_id = 3;
  EXPECT_FALSE(Tokenizer::FromGguf(spec).ok());
  spec.eos_id = -1;
  ASSERT_OK_AND_ASSIGN(auto tok, Tokenizer::FromGguf(spec));
  ASSERT_OK_AND_ASSIGN(const auto ids, tok->Encode("abba", EncodeOptions{}));
  EXPECT_THAT(ids, ElementsAreArray({2, 1, 0}));  // "ab" merged; "b", "a" alone
}

}  // namespace
}  // namespace engine::tokenizer
