// Helpers shared by the tests: where ../shared and the test data live, status matchers.
#ifndef FP4LM_TESTS_TEST_UTIL_H_
#define FP4LM_TESTS_TEST_UTIL_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace engine::testing {

// The shared/ directory: $FP4LM_SHARED_DIR if set, else ../shared beside the source tree.
std::string SharedPath(const std::string& relative);
// A path under tests/testdata/.
std::string TestDataPath(const std::string& relative);
// A fresh temporary directory for this test (removed by the OS's tmp cleaning, not by us).
std::string TempDir();
bool FileExists(const std::string& path);
// The SmolLM2-135M-Instruct GGUF, if scripts/fetch-model put it in the cache; "" otherwise.
std::string SmolLm2Path();

// Expects `status` to have `code` and a message that contains every one of `words` (errors
// must name the file, the field, what was expected and what was found).
void ExpectError(const absl::Status& status, absl::StatusCode code,
                 const std::vector<std::string>& words);

}  // namespace engine::testing

#define ASSERT_OK(expr)                                 \
  do {                                                  \
    const absl::Status assert_ok_status_ = (expr);      \
    ASSERT_TRUE(assert_ok_status_.ok()) << assert_ok_status_; \
  } while (0)
#define EXPECT_OK(expr)                                 \
  do {                                                  \
    const absl::Status expect_ok_status_ = (expr);      \
    EXPECT_TRUE(expect_ok_status_.ok()) << expect_ok_status_; \
  } while (0)
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL_(ASSERT_OK_CONCAT_(statusor_, __LINE__), lhs, expr)
#define ASSERT_OK_CONCAT_INNER_(a, b) a##b
#define ASSERT_OK_CONCAT_(a, b) ASSERT_OK_CONCAT_INNER_(a, b)
#define ASSERT_OK_AND_ASSIGN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                               \
  ASSERT_TRUE(statusor.ok()) << statusor.status();      \
  lhs = *std::move(statusor)

#endif  // FP4LM_TESTS_TEST_UTIL_H_
