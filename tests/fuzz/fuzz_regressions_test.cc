// Replays every saved fuzzer input through the entry point of its fuzz target, in the normal
// and the sanitizer test builds: regressions/<target>/ holds the inputs that once crashed a
// reader (each must now give a status, never a crash), corpus/<target>/ the seeds (at least one
// of which must be accepted, so that the fuzzer starts from inputs that reach deep code).
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/fuzz/fuzz_targets.h"
#include "tests/test_util.h"

namespace engine::fuzz {
namespace {

namespace fs = std::filesystem;

fs::path FuzzDir() { return fs::path(FP4LM_SOURCE_DIR) / "tests" / "fuzz"; }

std::vector<fs::path> FilesIn(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code error;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, error)) {
    if (e.is_regular_file() && e.path().filename().string()[0] != '.') files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

absl::Status Replay(const FuzzTarget& target, const fs::path& file) {
  const std::string bytes = Slurp(file);
  return target.run(FuzzInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

class FuzzReplayTest : public ::testing::TestWithParam<FuzzTarget> {};

TEST_P(FuzzReplayTest, RegressionInputsGiveAStatus) {
  const FuzzTarget& target = GetParam();
  for (const fs::path& file : FilesIn(FuzzDir() / "regressions" / std::string(target.name))) {
    SCOPED_TRACE(file.string());
    const absl::Status status = Replay(target, file);
    // An error must say what is wrong; reaching this line at all is the real check.
    if (std::getenv("FP4LM_FUZZ_VERBOSE") != nullptr) std::cerr << file << ": " << status << "\n";
    if (!status.ok()) {
      EXPECT_FALSE(status.message().empty()) << status;
    }
  }
}

TEST_P(FuzzReplayTest, SeedCorpusReplaysAndSomeSeedIsAccepted) {
  const FuzzTarget& target = GetParam();
  const std::vector<fs::path> seeds = FilesIn(FuzzDir() / "corpus" / std::string(target.name));
  ASSERT_FALSE(seeds.empty()) << "no seeds for fuzz target " << target.name;
  int accepted = 0;
  for (const fs::path& file : seeds) {
    const absl::Status status = Replay(target, file);
    if (std::getenv("FP4LM_FUZZ_VERBOSE") != nullptr) std::cerr << file << ": " << status << "\n";
    if (status.ok()) ++accepted;
  }
  EXPECT_GT(accepted, 0) << "no seed of " << target.name << " is a valid input";
}

INSTANTIATE_TEST_SUITE_P(AllTargets, FuzzReplayTest, ::testing::ValuesIn(AllFuzzTargets()),
                         [](const ::testing::TestParamInfo<FuzzTarget>& info) {
                           return std::string(info.param.name);
                         });

TEST(FuzzLayoutTest, EveryDirectoryBelongsToATarget) {
  std::set<std::string> names;
  for (const FuzzTarget& t : AllFuzzTargets()) names.insert(std::string(t.name));
  for (const char* kind : {"corpus", "regressions"}) {
    std::error_code error;
    for (const fs::directory_entry& e : fs::directory_iterator(FuzzDir() / kind, error)) {
      if (e.is_directory()) {
        EXPECT_TRUE(names.contains(e.path().filename().string()))
            << e.path() << " has no fuzz target of that name";
      }
    }
  }
}

}  // namespace
}  // namespace engine::fuzz
