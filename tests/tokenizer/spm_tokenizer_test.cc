// SentencePiece tokenizers: tokenizer.model through the library, llama2.c tokenizer.bin and
// tok512.bin converted to a ModelProto, against llama.cpp's test vectors, llama2.c's own encoder
// and sentencepiece's own decoder.
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"
#include "tokenizer/spm_processor.h"
#include "tokenizer/tokenizer.h"

namespace engine::tokenizer {
namespace {

using ::engine::testing::SharedPath;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Vector {
  std::string text;
  std::vector<TokenId> ids;
};

// llama.cpp tests/test-tokenizer-0.cpp: inputs separated by "\n__ggml_vocab_test__\n", one line
// of ids per input; tokenized without BOS (add_special = false) and without parsing specials.
std::vector<Vector> ReadVectors() {
  const std::string base = SharedPath("tokenizers/llama-spm-gguf/ggml-vocab-llama-spm.gguf");
  const std::string inp = ReadAll(base + ".inp");
  std::istringstream out(ReadAll(base + ".out"));
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<Vector> vectors;
  size_t pos = 0;
  while (pos < inp.size()) {
    const size_t next = inp.find(sep, pos);
    const size_t end = next == std::string::npos ? inp.size() : next;
    vectors.push_back({inp.substr(pos, end - pos), {}});
    pos = next == std::string::npos ? inp.size() : next + sep.size();
  }
  std::string line;
  for (Vector& v : vectors) {
    if (!std::getline(out, line)) break;
    std::istringstream ids(line);
    for (int id; ids >> id;) v.ids.push_back(id);
  }
  return vectors;
}

std::unique_ptr<Tokenizer> LoadModel() {
  auto t = Tokenizer::FromSentencePieceFile(
      SharedPath("tokenizers/llama2-sentencepiece/tokenizer.model"));
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

constexpr EncodeOptions kNoBos{.add_bos = false, .parse_special = false};

TEST(SpmTokenizerTest, LlamaCppVectorsThroughTokenizerModel) {
  auto tok = LoadModel();
  ASSERT_NE(tok, nullptr);
  const std::vector<Vector> vectors = ReadVectors();
  // The .inp file of llama.cpp's repository holds 46 inputs (the last one ends with the
  // separator, which llama.cpp's reader does not count as an empty 47th input).
  ASSERT_EQ(vectors.size(), 46u);
  for (const Vector& v : vectors) {
    ASSERT_OK_AND_ASSIGN(const std::vector<TokenId> ids, tok->Encode(v.text, kNoBos));
    EXPECT_EQ(ids, v.ids) << "input: '" << v.text << "'";
  }
}

TEST(SpmTokenizerTest, Basics) {
  auto tok = LoadModel();
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->kind(), "sentencepiece");
  EXPECT_EQ(tok->vocab_size(), 32000);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_TRUE(tok->IsEndOfGeneration(2));
  EXPECT_FALSE(tok->IsEndOfGeneration(1));
  EXPECT_FALSE(tok->IsEndOfGeneration(15043));
  EXPECT_TRUE(tok->IsControl(1));
  EXPECT_FALSE(tok->IsControl(15043));
  EXPECT_EQ(tok->FindSpecialToken("<s>"), 1);
  EXPECT_EQ(tok->FindSpecialToken("</s>"), 2);
  EXPECT_EQ(tok->FindSpecialToken("Hello"), -1);

  ASSERT_OK_AND_ASSIGN(auto ids, tok->Encode("Hello world", EncodeOptions{}));
  EXPECT_THAT(ids, ElementsAre(1, 15043, 3186));  // BOS, "▁Hello", "▁world" (from the vectors)
  ASSERT_OK_AND_ASSIGN(std::string text, tok->Decode(ids));
  EXPECT_EQ(text, "Hello world");
  ASSERT_OK_AND_ASSIGN(ids, tok->Encode("", EncodeOptions{}));
  EXPECT_THAT(ids, ElementsAre(1));
}

TEST(SpmTokenizerTest, SpecialTokensOnlyWhenAsked) {
  auto tok = LoadModel();
  ASSERT_NE(tok, nullptr);
  const std::string text = "<s>Hi</s>";
  ASSERT_OK_AND_ASSIGN(auto plain, tok->Encode(text, kNoBos));
  for (TokenId id : plain) {
    EXPECT_NE(id, 1);
    EXPECT_NE(id, 2);
  }
  ASSERT_OK_AND_ASSIGN(std::string round, tok->Decode(plain));
  EXPECT_EQ(round, text);  // the markers stay text

  ASSERT_OK_AND_ASSIGN(auto parsed, tok->Encode(text, {.add_bos = false, .parse_special = true}));
  ASSERT_OK_AND_ASSIGN(auto hi, tok->Encode("Hi", kNoBos));  // dummy prefix after a special
  std::vector<TokenId> expected = {1};
  expected.insert(expected.end(), hi.begin(), hi.end());
  expected.push_back(2);
  EXPECT_EQ(parsed, expected);
}

TEST(SpmTokenizerTest, DecodeMatchesSentencePieceLibrary) {
  // Our Decode is written from the piece table (so TextStreamer can share it); the library's
  // Decode is the reference.
  const std::string bytes = ReadAll(SharedPath("tokenizers/llama2-sentencepiece/tokenizer.model"));
  SpmProcessor library;
  ASSERT_EQ(library.Load(bytes), "");
  auto tok = LoadModel();
  ASSERT_NE(tok, nullptr);
  int checked = 0;
  for (const Vector& v : ReadVectors()) {
    for (bool bos : {false, true}) {
      std::vector<TokenId> ids = v.ids;
      if (bos) ids.insert(ids.begin(), 1);
      ids.push_back(2);
      std::string expected;
      ASSERT_EQ(library.Decode(std::vector<int>(ids.begin(), ids.end()), &expected), "");
      ASSERT_OK_AND_ASSIGN(const std::string got, tok->Decode(ids));
      EXPECT_EQ(got, expected) << "ids of '" << v.text << "'";
      ++checked;
    }
  }
  EXPECT_EQ(checked, 92);
}

TEST(SpmTokenizerTest, ErrorsAreStatuses) {
  auto tok = LoadModel();
  ASSERT_NE(tok, nullptr);
  EXPECT_FALSE(tok->Decode(std::vector<TokenId>{1, 32000}).ok());
  EXPECT_FALSE(tok->Decode(std::vector<TokenId>{-5}).ok());
  EXPECT_FALSE(tok->TokenBytes(-1, 40000).ok());
  const auto bad = tok->Encode(std::string("ab\xC3", 3), EncodeOptions{});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("UTF-8"));

  EXPECT_EQ(Tokenizer::FromSentencePieceFile("/nonexistent/tokenizer.model").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_FALSE(Tokenizer::FromSentencePieceBytes("not a model", "junk").ok());
  EXPECT_FALSE(Tokenizer::FromSentencePieceBytes("", "empty").ok());
}

// ---- llama2.c tokenizer.bin ----

TEST(Llama2cTokenizerTest, SameIdsAsTokenizerModel) {
  // tokenizer.bin is the LLaMA vocabulary exported by llama2.c: converted to a ModelProto it
  // must tokenize exactly like the original tokenizer.model.
  ASSERT_OK_AND_ASSIGN(auto bin,
                       Tokenizer::FromLlama2cFile(
                           SharedPath("tokenizers/llama2-sentencepiece/tokenizer.bin"), 32000));
  auto model = LoadModel();
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(bin->bos_id(), 1);
  EXPECT_EQ(bin->eos_id(), 2);
  for (const Vector& v : ReadVectors()) {
    ASSERT_OK_AND_ASSIGN(auto ids, bin->Encode(v.text, kNoBos));
    EXPECT_EQ(ids, v.ids) << "input: '" << v.text << "'";
  }
  std::istringstream wiki(ReadAll(SharedPath("data/wikitext2/wiki.test.raw")));
  std::string line;
  for (int n = 0; n < 500 && std::getline(wiki, line); ++n) {
    ASSERT_OK_AND_ASSIGN(auto a, bin->Encode(line, EncodeOptions{}));
    ASSERT_OK_AND_ASSIGN(auto b, model->Encode(line, EncodeOptions{}));
    ASSERT_EQ(a, b) << "line " << n;
  }
}

// llama2.c run.c encode(), transcribed: dummy-prefix token " ", code points or byte fallback
// (+3), then repeatedly merge the adjacent pair whose concatenation has the highest score
// (leftmost on ties).
class Llama2cReference {
 public:
  Llama2cReference(const std::string& bytes, int vocab_size) {
    size_t off = 4;
    const auto read_i32 = [&] {
      int32_t v;
      std::memcpy(&v, bytes.data() + off, 4);
      off += 4;
      return v;
    };
    for (int i = 0; i < vocab_size; ++i) {
      float score;
      std::memcpy(&score, bytes.data() + off, 4);
      off += 4;
      const int32_t len = read_i32();
      vocab_.push_back(bytes.substr(off, len));
      off += len;
      scores_.push_back(score);
      lookup_.emplace(vocab_.back(), i);  // first wins, like a sorted bsearch over unique keys
    }
  }
  std::vector<TokenId> Encode(const std::string& text, bool bos) const {
    std::vector<TokenId> tokens;
    if (bos) tokens.push_back(1);
    if (!text.empty()) tokens.push_back(Find(" "));
    std::string buf;
    for (size_t i = 0; i < text.size(); ++i) {
      const unsigned char c = text[i];
      if ((c & 0xC0) != 0x80) buf.clear();
      buf.push_back(static_cast<char>(c));
      if (i + 1 < text.size() && (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80 &&
          buf.size() < 4) {
        continue;
      }
      const int id = Find(buf);
      if (id != -1) {
        tokens.push_back(id);
      } else {
        for (unsigned char b : buf) tokens.push_back(b + 3);
      }
      buf.clear();
    }
    while (true) {
      float best_score = -1e10f;
      int best_id = -1, best_idx = -1;
      for (size_t i = 0; i + 1 < tokens.size(); ++i) {
        const int id = Find(vocab_[tokens[i]] + vocab_[tokens[i + 1]]);
        if (id != -1 && scores_[id] > best_score) {
          best_score = scores_[id];
          best_id = id;
          best_idx = static_cast<int>(i);
        }
      }
      if (best_idx == -1) break;
      tokens[best_idx] = best_id;
      tokens.erase(tokens.begin() + best_idx + 1);
    }
    return tokens;
  }

 private:
  int Find(const std::string& s) const {
    const auto it = lookup_.find(s);
    return it == lookup_.end() ? -1 : it->second;
  }
  std::vector<std::string> vocab_;
  std::vector<float> scores_;
  std::unordered_map<std::string, int> lookup_;
};

TEST(Llama2cTokenizerTest, Tok512MatchesLlama2cEncoder) {
  const std::string path = SharedPath("models/stories260K/tok512.bin");
  const std::string bytes = ReadAll(path);
  ASSERT_OK_AND_ASSIGN(auto tok, Tokenizer::FromLlama2cFile(path, 512));
  const Llama2cReference reference(bytes, 512);
  std::vector<std::string> texts = {"Once upon a time, there was a little girl named Lily.",
                                    "héllo wörld 你好 🦙", "  two  spaces\nand a newline",
                                    ""};
  // A deterministic wikitext subset: the first 200 paragraphs of 100..600 bytes (llama2.c's
  // encoder is quadratic, so not the long ones).
  std::istringstream wiki(ReadAll(SharedPath("data/wikitext2/wiki.test.raw")));
  std::string line;
  while (texts.size() < 204 && std::getline(wiki, line)) {
    if (line.size() >= 100 && line.size() <= 600) texts.push_back(line);
  }
  ASSERT_EQ(texts.size(), 204u);
  for (const std::string& t : texts) {
    ASSERT_OK_AND_ASSIGN(auto ids, tok->Encode(t, EncodeOptions{}));
    ASSERT_EQ(ids, reference.Encode(t, /*bos=*/true)) << "text: '" << t << "'";
  }
}

TEST(Llama2cTokenizerTest, RejectsBadFiles) {
  const std::string good = ReadAll(SharedPath("models/stories260K/tok512.bin"));
  // Wrong vocab size: bytes left over, or running out of bytes.
  EXPECT_THAT(std::string(Tokenizer::FromLlama2cBytes(good, 511, "t").status().message()),
              HasSubstr("bytes left"));
  EXPECT_FALSE(Tokenizer::FromLlama2cBytes(good, 513, "t").ok());
  EXPECT_FALSE(Tokenizer::FromLlama2cBytes(good, 100, "t").ok());
  // Truncated anywhere.
  for (size_t cut :
       {size_t{0}, size_t{2}, size_t{4}, size_t{10}, good.size() / 2, good.size() - 1}) {
    const auto t = Tokenizer::FromLlama2cBytes(std::string_view(good).substr(0, cut), 512, "cut");
    EXPECT_FALSE(t.ok()) << cut;
  }
  // A token length larger than what remains.
  std::string corrupt = good;
  const int32_t huge = 1 << 30;
  std::memcpy(corrupt.data() + 4 + 4, &huge, 4);  // length of token 0
  const auto t = Tokenizer::FromLlama2cBytes(corrupt, 512, "corrupt");
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("token 0"));
}

}  // namespace
}  // namespace engine::tokenizer
