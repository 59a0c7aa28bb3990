// The building blocks under the tokenizers: PCRE2 wrapper, pre-tokenizer split behaviours and
// llama.cpp `pre` regexes, GPT-2 byte mapping, special-token splitting, ModelProto codec.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/special_tokens.h"
#include "tokenizer/spm_model_proto.h"
#include "tokenizer/unicode_regex.h"

namespace engine::tokenizer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

TEST(UnicodeRegexTest, CompileErrorIsStatus) {
  const auto bad = UnicodeRegex::Compile("(\\p{L}");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("does not compile"));
}

TEST(UnicodeRegexTest, UnicodeClassesAndLookahead) {
  ASSERT_OK_AND_ASSIGN(const UnicodeRegex letters, UnicodeRegex::Compile("\\p{L}+"));
  ASSERT_OK_AND_ASSIGN(auto m, letters.FindAll("héllo, wörld 你好!"));
  // Byte offsets: "héllo" is 6 bytes, "wörld" starts at 8, "你好" at 15.
  EXPECT_THAT(m, ElementsAre(Pair(0, 6), Pair(8, 14), Pair(15, 21)));
  ASSERT_OK_AND_ASSIGN(const UnicodeRegex trailing, UnicodeRegex::Compile("\\s+(?!\\S)"));
  ASSERT_OK_AND_ASSIGN(m, trailing.FindAll("a   b  "));
  EXPECT_THAT(m, ElementsAre(Pair(1, 3), Pair(5, 7)));  // the space before "b" is left over
  ASSERT_OK_AND_ASSIGN(const UnicodeRegex empty, UnicodeRegex::Compile("x*"));
  ASSERT_OK_AND_ASSIGN(m, empty.FindAll("ééxx"));  // empty matches step whole characters
  EXPECT_THAT(m, ElementsAre(Pair(4, 6)));
  EXPECT_FALSE(letters.FindAll("ab\xFF").ok());  // invalid UTF-8 is an error, not a crash
}

std::vector<std::string> Words(const PreTokenizer& p, std::string_view text, bool first = true) {
  std::vector<std::string> words;
  const absl::Status s = p.Run(text, first, &words);
  EXPECT_TRUE(s.ok()) << s;
  return words;
}

TEST(PreTokenizerTest, SplitBehaviours) {
  // The example of Hugging Face's SplitDelimiterBehavior documentation.
  const auto split = [](SplitBehavior b) {
    PreTokenizer p;
    p.AddRegexSplit(*UnicodeRegex::Compile("-"), b, /*invert=*/false);
    return Words(p, "the-final--countdown");
  };
  EXPECT_THAT(split(SplitBehavior::kRemoved), ElementsAre("the", "final", "countdown"));
  EXPECT_THAT(split(SplitBehavior::kIsolated),
              ElementsAre("the", "-", "final", "-", "-", "countdown"));
  EXPECT_THAT(split(SplitBehavior::kMergedWithPrevious),
              ElementsAre("the-", "final-", "-", "countdown"));
  EXPECT_THAT(split(SplitBehavior::kMergedWithNext),
              ElementsAre("the", "-final", "-", "-countdown"));
  EXPECT_THAT(split(SplitBehavior::kContiguous),
              ElementsAre("the", "-", "final", "--", "countdown"));
}

TEST(PreTokenizerTest, GgufPreNames) {
  bool ignore_merges = true;
  ASSERT_OK_AND_ASSIGN(const PreTokenizer gpt2, PreTokenizerForGgufPre("gpt2", &ignore_merges));
  EXPECT_FALSE(ignore_merges);
  EXPECT_THAT(Words(gpt2, "Hello world's 123  x\n"),
              ElementsAre("Hello", " world", "'s", " 123", " ", " x", "\n"));
  ASSERT_OK_AND_ASSIGN(const PreTokenizer smollm, PreTokenizerForGgufPre("smollm", &ignore_merges));
  EXPECT_THAT(Words(smollm, "a 12 don't"), ElementsAre("a", " ", "1", "2", " don", "'t"));
  ASSERT_OK_AND_ASSIGN(const PreTokenizer llama3,
                       PreTokenizerForGgufPre("llama-bpe", &ignore_merges));
  EXPECT_TRUE(ignore_merges);
  // Digits in groups of three; case-insensitive contractions; newlines kept together.
  EXPECT_THAT(Words(llama3, "I'VE 12345\n\nok"),
              ElementsAre("I", "'VE", " ", "123", "45", "\n\n", "ok"));
  ASSERT_OK_AND_ASSIGN(const PreTokenizer qwen2, PreTokenizerForGgufPre("qwen2", &ignore_merges));
  EXPECT_FALSE(ignore_merges);
  EXPECT_THAT(Words(qwen2, "ab 123"), ElementsAre("ab", " ", "1", "2", "3"));
  ASSERT_OK_AND_ASSIGN(const PreTokenizer fallback,
                       PreTokenizerForGgufPre("some-new-model", &ignore_merges));
  EXPECT_THAT(Words(fallback, "a b"), ElementsAre("a", " b"));
}

TEST(PreTokenizerTest, Metaspace) {
  PreTokenizer p;
  p.AddMetaspace("\xE2\x96\x81", PrependScheme::kFirst, /*split=*/true);
  EXPECT_THAT(Words(p, "hi there"), ElementsAre("▁hi", "▁there"));
  EXPECT_THAT(Words(p, "hi there", /*first=*/false), ElementsAre("hi", "▁there"));
  EXPECT_THAT(Words(p, " x"), ElementsAre("▁x"));  // no second ▁ when one is already there
}

TEST(ByteLevelTest, Gpt2Mapping) {
  EXPECT_EQ(ByteLevelEncode(" "), "Ġ");
  EXPECT_EQ(ByteLevelEncode("\n"), "Ċ");
  EXPECT_EQ(ByteLevelEncode("a!~"), "a!~");
  EXPECT_EQ(ByteLevelEncode("\xC3\xA9"), "Ã©");  // é's two bytes, each mapped
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  std::string back;
  ASSERT_TRUE(ByteLevelDecode(ByteLevelEncode(all), &back));
  EXPECT_EQ(back, all);
  back.clear();
  EXPECT_FALSE(ByteLevelDecode("你", &back));
}

TEST(SpecialTokenMatcherTest, LongestLeftmost) {
  SpecialTokenMatcher m;
  m.Add("<s>", 1);
  m.Add("<s><s>", 7);
  m.Add("</s>", 2);
  const auto f = m.Split("a<s><s>b</s><s>");
  ASSERT_EQ(f.size(), 5u);
  EXPECT_EQ(f[0].text, "a");
  EXPECT_EQ(f[0].id, -1);
  EXPECT_EQ(f[1].id, 7);
  EXPECT_EQ(f[2].text, "b");
  EXPECT_EQ(f[3].id, 2);
  EXPECT_EQ(f[4].id, 1);
  SpecialTokenMatcher strip;
  strip.Add("<m>", 5, /*lstrip=*/true, /*rstrip=*/true);
  const auto g = strip.Split("a  <m>  b");
  ASSERT_EQ(g.size(), 3u);
  EXPECT_EQ(g[0].text, "a");
  EXPECT_EQ(g[2].text, "b");
}

TEST(SpmModelProtoTest, RoundTripAndErrors) {
  SpmModelProto m;
  m.pieces = {{"<unk>", 0.0f, kSpmUnknown}, {"<s>", 0.0f, kSpmControl}, {"▁a", -1.5f, kSpmNormal}};
  m.model_type = kSpmBpe;
  m.vocab_size = 3;
  m.byte_fallback = true;
  m.pad_id = -1;
  m.eos_id = 7;
  m.normalizer_name = "identity";
  m.add_dummy_prefix = false;
  m.remove_extra_whitespaces = false;
  const std::string bytes = SerializeSpmModelProto(m);
  ASSERT_OK_AND_ASSIGN(SpmModelProto back, ParseSpmModelProto(bytes, "mem"));
  ASSERT_EQ(back.pieces.size(), 3u);
  EXPECT_EQ(back.pieces[2].piece, "▁a");
  EXPECT_EQ(back.pieces[2].score, -1.5f);
  EXPECT_EQ(back.pieces[1].type, kSpmControl);
  EXPECT_EQ(back.model_type, kSpmBpe);
  EXPECT_TRUE(back.byte_fallback);
  EXPECT_EQ(back.pad_id, -1);
  EXPECT_EQ(back.eos_id, 7);
  EXPECT_EQ(back.normalizer_name, "identity");
  EXPECT_FALSE(back.add_dummy_prefix);
  EXPECT_FALSE(back.remove_extra_whitespaces);

  std::string patched = bytes;
  ASSERT_OK(PatchPieceType(back, 2, kSpmUserDefined, &patched));
  ASSERT_OK_AND_ASSIGN(const SpmModelProto again, ParseSpmModelProto(patched, "mem"));
  EXPECT_EQ(again.pieces[2].type, kSpmUserDefined);

  for (size_t cut = 1; cut < bytes.size(); cut += 7) {
    const auto truncated = ParseSpmModelProto(std::string_view(bytes).substr(0, cut), "cut");
    if (truncated.ok()) continue;  // a cut on a field boundary is a valid (shorter) message
    EXPECT_EQ(truncated.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(std::string(truncated.status().message()), HasSubstr("cut"));
  }
  EXPECT_FALSE(ParseSpmModelProto("\x0A\xFF\xFF\xFF\xFF\x0F", "huge length").ok());
  EXPECT_FALSE(ParseSpmModelProto("", "empty").ok());
  EXPECT_FALSE(ParseSpmModelProto("\x0B", "group").ok());
}

}  // namespace
}  // namespace engine::tokenizer
