#include "tests/test_util.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace engine::testing {

std::string SharedPath(const std::string& relative) {
  const char* env = std::getenv("FP4LM_SHARED_DIR");
  const std::string root = (env != nullptr && *env != '\0') ? env : FP4LM_SHARED_DIR;
  return absl::StrCat(root, "/", relative);
}

std::string TestDataPath(const std::string& relative) {
  return absl::StrCat(FP4LM_SOURCE_DIR, "/tests/testdata/", relative);
}

std::string TempDir() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = absl::StrCat(::testing::TempDir(), "fp4lm_", getpid(), "_",
                                 info ? info->test_suite_name() : "suite", "_",
                                 info ? info->name() : "test");
  // Parameterized tests have '/' in their names.
  for (size_t i = ::testing::TempDir().size(); i < dir.size(); ++i) {
    if (dir[i] == '/') dir[i] = '_';
  }
  ::mkdir(dir.c_str(), 0755);
  return dir;
}

bool FileExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string SmolLm2Path() {
  const char* env = std::getenv("FP4LM_SMOLLM2_GGUF");
  if (env != nullptr && FileExists(env)) return env;
  const char* cache = std::getenv("FP4LM_CACHE");
  std::string dir;
  if (cache != nullptr && *cache != '\0') {
    dir = cache;
  } else if (const char* home = std::getenv("HOME"); home != nullptr) {
    dir = absl::StrCat(home, "/.cache/fp4lm");
  }
  const std::string path = absl::StrCat(dir, "/models/smollm2-135m-instruct-q4_1.gguf");
  return FileExists(path) ? path : "";
}

void ExpectError(const absl::Status& status, absl::StatusCode code,
                 const std::vector<std::string>& words) {
  EXPECT_EQ(status.code(), code) << status;
  for (const std::string& w : words) {
    EXPECT_NE(std::string(status.message()).find(w), std::string::npos)
        << "expected '" << w << "' in: " << status;
  }
}

}  // namespace engine::testing
