#include "engine/bench_model.h"

#include <memory>

#include "gtest/gtest.h"

namespace engine::bench {
namespace {

// A prompt token's linear work: every decoder weight once, which is every parameter but the
// embedding table, a separate head (computed once per prompt, not per token) and the norms.
TEST(BenchModelTest, LinearMacsPerTokenIsTheDecoderWeightCount) {
  absl::StatusOr<model::ModelConfig> c = ShapeConfig("smollm2-135m");
  ASSERT_TRUE(c.ok()) << c.status();
  absl::StatusOr<std::unique_ptr<BenchModel>> m =
      BenchModel::CreateRandom(*c, LinearType::kW4A4, 0);
  ASSERT_TRUE(m.ok()) << m.status();
  const int64_t table = int64_t{c->vocab_size} * c->model_dim;
  const int64_t norms = int64_t{2 * c->n_layers + 1} * c->model_dim;
  EXPECT_EQ((*m)->LinearMacsPerToken(),
            c->ParameterCount() - table * (c->tied_embeddings ? 1 : 2) - norms);
  // 30 x (2 x 576^2 + 2 x 576 x 192 + 3 x 576 x 1536), by hand.
  EXPECT_EQ((*m)->LinearMacsPerToken(), 106'168'320);
}

}  // namespace
}  // namespace engine::bench
