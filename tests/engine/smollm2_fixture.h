// A test fixture that loads SmolLM2-135M-Instruct once per test suite (loading dequantizes
// ~135M weights) and skips every test with a clear reason when the file is absent.
#ifndef FP4LM_TESTS_ENGINE_SMOLLM2_FIXTURE_H_
#define FP4LM_TESTS_ENGINE_SMOLLM2_FIXTURE_H_

#include <memory>

#include "engine/engine.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace engine::testing {

class SmolLm2Fixture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string path = SmolLm2Path();
    if (path.empty()) return;
    absl::StatusOr<std::unique_ptr<Model>> m = Model::Load({.path = path});
    load_status_ = m.status();
    if (m.ok()) model_ = std::move(*m);
  }
  static void TearDownTestSuite() { model_.reset(); }
  void SetUp() override {
    if (SmolLm2Path().empty()) {
      GTEST_SKIP() << "SmolLM2-135M-Instruct not found: run scripts/fetch-model "
                      "(or set FP4LM_SMOLLM2_GGUF)";
    }
    ASSERT_TRUE(load_status_.ok()) << load_status_;
  }
  static Model& model() { return *model_; }

 private:
  static inline std::unique_ptr<Model> model_;
  static inline absl::Status load_status_;
};

}  // namespace engine::testing

#endif  // FP4LM_TESTS_ENGINE_SMOLLM2_FIXTURE_H_
