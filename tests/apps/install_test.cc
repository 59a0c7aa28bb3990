// `cmake --install` of libengine, used the way another program would: install into a temporary
// prefix, build apps/example out of tree with find_package(fp4lm) (and again with pkg-config),
// run it on stories260K and check its greedy tokens and logits against the float64 reference
// of shared/models/stories260K/golden_greedy.json. One test, since it configures and compiles.
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/test_util.h"

namespace {

using ::engine::testing::FileExists;
using ::engine::testing::SharedPath;
using ::testing::HasSubstr;
using ::testing::Not;

// Runs `command` under sh with stderr merged into stdout; returns its exit status.
int RunShell(const std::string& command, std::string* output) {
  output->clear();
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[4096];
  for (size_t n; (n = fread(buffer, 1, sizeof(buffer), pipe)) > 0;) output->append(buffer, n);
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool OnPath(const std::string& program) {
  std::string ignored;
  return RunShell("command -v " + program, &ignored) == 0;
}

std::string Quote(const std::string& s) { return "'" + s + "'"; }

// "tokens: 1 2 3" -> {1, 2, 3}
std::vector<int> TokensLine(const std::string& output) {
  std::vector<int> tokens;
  const size_t at = output.find("\ntokens:");
  if (at == std::string::npos) return tokens;
  std::istringstream line(output.substr(at + 8, output.find('\n', at + 1) - at - 8));
  for (int t; line >> t;) tokens.push_back(t);
  return tokens;
}

// Checks one run of the example against the reference.
void CheckEmbedOutput(const std::string& output, const nlohmann::json& golden, int n) {
  EXPECT_THAT(output, HasSubstr(std::string("version ") + engine::Version() + "\n"));
  const std::vector<int> tokens = TokensLine(output);
  ASSERT_EQ(tokens.size(), static_cast<size_t>(n)) << output;
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(tokens[i], golden["greedy_tokens"][i + 1].get<int>()) << "token " << i;
  }
  const size_t at = output.find("after BOS: argmax ");
  ASSERT_NE(at, std::string::npos) << output;
  int argmax = -1;
  double logit = 0.0;
  ASSERT_EQ(std::sscanf(output.c_str() + at, "after BOS: argmax %d logit %lf", &argmax, &logit), 2);
  EXPECT_EQ(argmax, golden["greedy_tokens"][1].get<int>());
  const double expected = golden["logits_first16_positions"][0][argmax].get<double>();
  EXPECT_NEAR(logit, expected, 1e-3 * std::max(1.0, std::fabs(expected)));
}

TEST(InstallTest, InstalledPackageBuildsAndRunsTheExample) {
  if (!OnPath("cmake")) GTEST_SKIP() << "cmake is not on PATH: cannot install or build out of tree";
  const std::string model = SharedPath("models/stories260K/stories260K.bin");
  if (!FileExists(model)) GTEST_SKIP() << "missing " << model;
  std::ifstream golden_file(SharedPath("models/stories260K/golden_greedy.json"));
  const nlohmann::json golden = nlohmann::json::parse(golden_file, nullptr, false);
  ASSERT_FALSE(golden.is_discarded());
  ASSERT_TRUE(golden.contains("greedy_tokens") && golden["greedy_tokens"].is_array());
  ASSERT_TRUE(golden.contains("logits_first16_positions"));

  const std::string dir = engine::testing::TempDir();
  const std::string prefix = dir + "/prefix";
  std::string out;
  ASSERT_EQ(
      RunShell("cmake --install " + Quote(FP4LM_BINARY_DIR) + " --prefix " + Quote(prefix), &out),
      0)
      << out;

  // What the install holds: the library, two public headers, the CMake package, pkg-config.
  const std::string libdir = prefix + "/" + FP4LM_INSTALL_LIBDIR;
  const std::string include = prefix + "/include/fp4lm/engine";
  for (const std::string& f :
       {libdir + "/libfp4lm_engine.so", include + "/engine.h", include + "/options.h",
        libdir + "/cmake/fp4lm/fp4lmConfig.cmake", libdir + "/cmake/fp4lm/fp4lmConfigVersion.cmake",
        libdir + "/cmake/fp4lm/fp4lmTargets.cmake", libdir + "/pkgconfig/fp4lm.pc"}) {
    EXPECT_TRUE(FileExists(f)) << f;
  }
  ASSERT_EQ(RunShell("ls " + Quote(include), &out), 0);
  EXPECT_EQ(out, "engine.h\noptions.h\n");
  // The public headers include only the standard library, Abseil and each other.
  ASSERT_EQ(RunShell("cat " + Quote(include) + "/*.h | grep '^#include'", &out), 0);
  std::istringstream includes(out);
  for (std::string line; std::getline(includes, line);) {
    EXPECT_TRUE(line.find('<') != std::string::npos || line.find("\"absl/") != std::string::npos ||
                line.find("\"engine/") != std::string::npos)
        << line;
    EXPECT_THAT(line, Not(HasSubstr("sentencepiece")));
    EXPECT_THAT(line, Not(HasSubstr("cuda")));
    EXPECT_THAT(line, Not(HasSubstr("kernels")));
  }
  // The library exports the API and nothing of its internals.
  if (OnPath("nm")) {
    ASSERT_EQ(RunShell("nm -D -C --defined-only " + Quote(libdir + "/libfp4lm_engine.so"), &out),
              0);
    EXPECT_THAT(out, HasSubstr("engine::Model::Load("));
    EXPECT_THAT(out, HasSubstr("engine::Session::Generate("));
    EXPECT_THAT(out, HasSubstr("engine::ChatTemplate::Create("));
    EXPECT_THAT(out, HasSubstr("engine::Version()"));
    EXPECT_THAT(out, Not(HasSubstr("engine::tokenizer::")));
    EXPECT_THAT(out, Not(HasSubstr("engine::kernels::")));
    EXPECT_THAT(out, Not(HasSubstr("engine::model::")));
    EXPECT_THAT(out, Not(HasSubstr("sentencepiece")));
  }

  // find_package(fp4lm) -> fp4lm::engine, out of tree.
  const int n = 20;
  const std::string build = dir + "/build-example";
  const std::string generator = OnPath("ninja") ? " -G Ninja" : "";
  ASSERT_EQ(RunShell("cmake -S " + Quote(std::string(FP4LM_SOURCE_DIR) + "/apps/example") + " -B " +
                         Quote(build) + generator +
                         " -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=" + Quote(prefix),
                     &out),
            0)
      << out;
  ASSERT_EQ(RunShell("cmake --build " + Quote(build), &out), 0) << out;
  ASSERT_EQ(RunShell(Quote(build + "/embed") + " " + Quote(model) + " " + std::to_string(n), &out),
            0)
      << out;
  CheckEmbedOutput(out, golden, n);

  // pkg-config fp4lm, with the compiler CMake used.
  if (OnPath("pkg-config")) {
    const std::string pc = "PKG_CONFIG_PATH=" + Quote(libdir + "/pkgconfig") + " pkg-config";
    ASSERT_EQ(RunShell(pc + " --modversion fp4lm", &out), 0) << out;
    EXPECT_EQ(out, std::string(engine::Version()) + "\n");
    const std::string binary = dir + "/embed_pc";
    ASSERT_EQ(RunShell(std::string(FP4LM_CXX_COMPILER) + " -std=c++20 -O1 " +
                           Quote(std::string(FP4LM_SOURCE_DIR) + "/apps/example/embed.cc") +
                           " -o " + Quote(binary) + " $(" + pc +
                           " --cflags --libs fp4lm) -Wl,-rpath," + Quote(libdir),
                       &out),
              0)
        << out;
    ASSERT_EQ(RunShell(Quote(binary) + " " + Quote(model) + " " + std::to_string(n), &out), 0)
        << out;
    CheckEmbedOutput(out, golden, n);
  }
}

}  // namespace
