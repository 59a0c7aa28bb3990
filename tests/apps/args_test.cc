// Tests of the fp4lm option parser (apps/fp4lm/args.h): option forms, typed values, the exact
// error messages users see, bounds, required options and the --help text.
#include "fp4lm/args.h"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fp4lm {
namespace {

using ::testing::HasSubstr;

// A parser shaped like `fp4lm generate`, bound to these fields.
struct Fixture {
  std::string model;
  std::string prompt = "hello";
  int32_t n = 128;
  float temp = 0.8f;
  float top_p = 0.95f;
  float repeat_penalty = 1.0f;
  int32_t repeat_last_n = 64;
  uint64_t seed = 0;
  int32_t ctx = 0;
  bool json = false;
  ArgParser parser{"fp4lm generate", "fp4lm generate -m MODEL [options]", "Generates text."};

  Fixture() {
    parser.AddString("model", 'm', &model, "MODEL", "model file").Required();
    parser.AddString("prompt", 'p', &prompt, "PROMPT", "prompt text");
    parser.AddInt("n-predict", 'n', &n, "N", "tokens to generate").AtLeast(0);
    parser.AddFloat("temp", 0, &temp, "T", "temperature").AtLeast(0);
    parser.AddFloat("top-p", 0, &top_p, "P", "nucleus mass").AtLeast(0).AtMost(1);
    parser.AddFloat("repeat-penalty", 0, &repeat_penalty, "R", "penalty").Above(0);
    parser.AddInt("repeat-last-n", 0, &repeat_last_n, "N", "window").AtLeast(-1);
    parser.AddUint64("seed", 's', &seed, "S", "seed");
    parser.AddInt("ctx", 'c', &ctx, "N", "context").AtLeast(0);
    parser.AddFlag("json", 0, &json, "print JSON");
  }

  absl::Status Parse(std::vector<std::string> args) { return parser.Parse(args); }
};

std::string ErrorOf(const absl::Status& status) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  return std::string(status.message());
}

TEST(ArgParserTest, ParsesLongShortAndEqualsForms) {
  Fixture f;
  ASSERT_TRUE(f.Parse({"-m", "model.gguf", "--prompt", "Once upon", "-n=16", "--temp=0", "--top-p",
                       "0.5", "--seed", "+42", "-c", "512", "--json"})
                  .ok());
  EXPECT_EQ(f.model, "model.gguf");
  EXPECT_EQ(f.prompt, "Once upon");
  EXPECT_EQ(f.n, 16);
  EXPECT_EQ(f.temp, 0.0f);
  EXPECT_EQ(f.top_p, 0.5f);
  EXPECT_EQ(f.seed, 42u);
  EXPECT_EQ(f.ctx, 512);
  EXPECT_TRUE(f.json);
  EXPECT_FALSE(f.parser.help_requested());
  EXPECT_TRUE(f.parser.WasSet("top-p"));
  EXPECT_FALSE(f.parser.WasSet("repeat-penalty"));
}

TEST(ArgParserTest, UnsetOptionsKeepTheirDefaults) {
  Fixture f;
  ASSERT_TRUE(f.Parse({"--model", "m"}).ok());
  EXPECT_EQ(f.prompt, "hello");
  EXPECT_EQ(f.n, 128);
  EXPECT_EQ(f.temp, 0.8f);
  EXPECT_EQ(f.seed, 0u);
  EXPECT_FALSE(f.json);
}

TEST(ArgParserTest, ValuesMayLookLikeOptionsOrBeEmpty) {
  Fixture f;
  ASSERT_TRUE(f.Parse({"-m", "m", "--repeat-last-n", "-1", "-p", "", "--prompt=a=b"}).ok());
  EXPECT_EQ(f.repeat_last_n, -1);
  EXPECT_EQ(f.prompt, "a=b");  // the last occurrence wins; only the first '=' splits
  Fixture g;
  ASSERT_TRUE(g.Parse({"-m", "m", "-p", "--temp"}).ok());
  EXPECT_EQ(g.prompt, "--temp");
  Fixture h;
  ASSERT_TRUE(h.Parse({"-m", "m", "-p", ""}).ok());
  EXPECT_EQ(h.prompt, "");
}

TEST(ArgParserTest, TypedErrorsNameTheOptionAndQuoteTheText) {
  EXPECT_EQ(ErrorOf(Fixture().Parse({"-m", "m", "--temp", "abc"})),
            "--temp: expected a number, got 'abc'");
  EXPECT_EQ(ErrorOf(Fixture().Parse({"-m", "m", "-n", "4.5"})),
            "-n: expected an integer, got '4.5'");
  EXPECT_EQ(ErrorOf(Fixture().Parse({"-m", "m", "--n-predict=12x"})),
            "--n-predict: expected an integer, got '12x'");
  EXPECT_EQ(ErrorOf(Fixture().Parse({"-m", "m", "--seed", "-1"})),
            "--seed: expected a non-negative integer, got '-1'");
  EXPECT_EQ(ErrorOf(Fixture().Parse({"-m", "m", "--ctx", "99999999999"})),
            "--ctx: '99999999999' is out of range");
  EXPECT_EQ(ErrorOf(Fixture().Parse({"-m", "m", "--temp", "nan"})),
            "--temp: expected a number, got 'nan'");
  EXPECT_EQ(ErrorOf(Fixture().Parse({"-m", "m", "--temp", "inf"})),
            "--temp: expected a number, got 'inf'");
  EXPECT_EQ(ErrorOf(Fixture().Parse({"-m", "m", "--temp", "1e39"})),
            "--temp: '1e39' is out of range");  // finite as a double, not as a float
  EXPECT_EQ(ErrorOf(Fixture().Parse({"-m", "m", "--temp", ""})),
            "--temp: expected a number, got ''");
}

TEST(ArgParserTest, BoundsAreCheckedAndStated) {
  EXPECT_EQ(ErrorOf(Fixture().Parse({"-m", "m", "--top-p", "1.5"})),
            "--top-p: expected a number in [0, 1], got '1.5'");
  EXPECT_EQ(ErrorOf(Fixture().Parse({"-m", "m", "--temp", "-0.1"})),
            "--temp: expected a number >= 0, got '-0.1'");
  EXPECT_EQ(ErrorOf(Fixture().Parse({"-m", "m", "--repeat-penalty", "0"})),
            "--repeat-penalty: expected a number > 0, got '0'");
  EXPECT_EQ(ErrorOf(Fixture().Parse({"-m", "m", "--repeat-last-n", "-2"})),
            "--repeat-last-n: expected an integer >= -1, got '-2'");
  // A rejected value leaves the variable unchanged.
  Fixture f;
  EXPECT_FALSE(f.Parse({"-m", "m", "--top-p", "2"}).ok());
  EXPECT_EQ(f.top_p, 0.95f);
  // The bounds themselves are accepted.
  EXPECT_TRUE(Fixture().Parse({"-m", "m", "--top-p", "1", "--temp", "0", "-n", "0"}).ok());
}

TEST(ArgParserTest, StructuralErrors) {
  EXPECT_EQ(ErrorOf(Fixture().Parse({"-m", "m", "--temp"})), "--temp: missing value T");
  EXPECT_EQ(ErrorOf(Fixture().Parse({"-m", "m", "--tmp", "1"})), "unknown option '--tmp'");
  EXPECT_EQ(ErrorOf(Fixture().Parse({"-m", "m", "-x"})), "unknown option '-x'");
  EXPECT_EQ(ErrorOf(Fixture().Parse({"-m", "m", "-n16"})), "unknown option '-n16'");
  EXPECT_EQ(ErrorOf(Fixture().Parse({"-m", "m", "--tmp=1"})), "unknown option '--tmp'");
  EXPECT_EQ(ErrorOf(Fixture().Parse({"-m", "m", "-x=1"})), "unknown option '-x'");
  EXPECT_EQ(ErrorOf(Fixture().Parse({"-m", "m", "-n=x"})), "-n: expected an integer, got 'x'");
  EXPECT_EQ(ErrorOf(Fixture().Parse({"-m", "m", "stray"})), "unexpected argument 'stray'");
  EXPECT_EQ(ErrorOf(Fixture().Parse({"-m", "m", "-"})), "unexpected argument '-'");
  EXPECT_EQ(ErrorOf(Fixture().Parse({"-m", "m", "--", "-n"})), "unexpected argument '-n'");
  EXPECT_EQ(ErrorOf(Fixture().Parse({"-m", "m", "--json=yes"})),
            "--json: takes no value, got 'yes'");
  EXPECT_EQ(ErrorOf(Fixture().Parse({"-p", "hi"})), "missing required option --model (-m)");
  EXPECT_EQ(ErrorOf(Fixture().Parse({})), "missing required option --model (-m)");
}

TEST(ArgParserTest, HelpStopsParsingAndSkipsRequiredCheck) {
  for (const char* flag : {"-h", "--help"}) {
    Fixture f;
    EXPECT_TRUE(f.Parse({"--temp", "0.5", flag, "--bogus"}).ok()) << flag;
    EXPECT_TRUE(f.parser.help_requested());
  }
  // A parse after a help request starts afresh.
  Fixture f;
  ASSERT_TRUE(f.Parse({"-h"}).ok());
  EXPECT_FALSE(f.Parse({"-p", "x"}).ok());
  EXPECT_FALSE(f.parser.help_requested());
}

TEST(ArgParserTest, HelpListsOptionsDefaultsAndRequired) {
  Fixture f;
  const std::string help = f.parser.Help();
  EXPECT_THAT(help, HasSubstr("usage: fp4lm generate -m MODEL [options]\n"));
  EXPECT_THAT(help, HasSubstr("Generates text."));
  EXPECT_THAT(help, HasSubstr("-m, --model MODEL"));
  EXPECT_THAT(help, HasSubstr("model file (required)"));
  EXPECT_THAT(help, HasSubstr("--temp T"));
  EXPECT_THAT(help, HasSubstr("temperature (default: 0.8)"));
  EXPECT_THAT(help, HasSubstr("nucleus mass (default: 0.95)"));
  EXPECT_THAT(help, HasSubstr("prompt text (default: hello)"));
  EXPECT_THAT(help, HasSubstr("-s, --seed S"));
  EXPECT_THAT(help, HasSubstr("-h, --help"));
  EXPECT_THAT(help, ::testing::Not(HasSubstr("print JSON (default")));
  // Help columns line up: every description starts in the same column.
  size_t column = std::string::npos;
  size_t start = help.find("options:\n") + 9;
  while (start < help.size()) {
    const size_t end = help.find('\n', start);
    const std::string line = help.substr(start, end - start);
    const size_t gap = line.find("  ", line.find_first_not_of(' '));
    ASSERT_NE(gap, std::string::npos) << line;
    const size_t desc = line.find_first_not_of(' ', gap);
    if (column == std::string::npos) column = desc;
    EXPECT_EQ(desc, column) << line;
    start = end + 1;
  }
}

TEST(ParseNumberTest, WholeStringOnly) {
  EXPECT_EQ(*ParseInt64("-17"), -17);
  EXPECT_EQ(*ParseInt64("+17"), 17);
  EXPECT_EQ(*ParseUint64("18446744073709551615"), std::numeric_limits<uint64_t>::max());
  EXPECT_THAT(ErrorOf(ParseUint64("18446744073709551616").status()), HasSubstr("out of range"));
  EXPECT_DOUBLE_EQ(*ParseFiniteDouble("2.5e-3"), 2.5e-3);
  EXPECT_DOUBLE_EQ(*ParseFiniteDouble(".5"), 0.5);
  for (const char* bad : {"", " 1", "1 ", "0x10", "1,5", "--1", "+", "+-1", "1e"}) {
    EXPECT_FALSE(ParseInt64(bad).ok()) << bad;
    EXPECT_FALSE(ParseFiniteDouble(bad).ok()) << bad;
  }
  EXPECT_FALSE(ParseFiniteDouble("-inf").ok());
  EXPECT_FALSE(ParseFiniteDouble("1e400").ok());
}

}  // namespace
}  // namespace fp4lm
