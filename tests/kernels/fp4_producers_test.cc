// The fused producers (kernels/cpu/fp4_producers.h) must write exactly the codes of their
// unfused form — the FP32 op over the whole [m, dim] tensor, then QuantizeActivations — on
// every format, thread count and awkward shape (EXPECT_EQ on the bytes).
#include "kernels/cpu/fp4_producers.h"

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/fp4_gemm.h"
#include "kernels/cpu/ops_cpu.h"

namespace engine::kernels {
namespace {

constexpr Fp4Kind kKinds[] = {Fp4Kind::kE2M1, Fp4Kind::kE3M0, Fp4Kind::kE1M2};
constexpr int64_t kRows[] = {1, 3, 17, 64};
constexpr int64_t kDims[] = {2, 6, 30, 130, 576};

std::vector<float> RandomFloats(int64_t n, float scale, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

std::vector<uint8_t> Quantized(const std::vector<float>& x, int64_t m, int64_t dim, Fp4Kind kind,
                               float inv_scale) {
  std::vector<uint8_t> codes(static_cast<size_t>(m * dim / 2));
  QuantizeActivations(x.data(), m, dim, kind, inv_scale, codes.data());
  return codes;
}

class Fp4ProducersTest : public ::testing::TestWithParam<int> {
 protected:
  ThreadPool pool_{GetParam()};
};

TEST_P(Fp4ProducersTest, RmsNormToFp4EqualsRmsNormThenQuantize) {
  std::mt19937 rng(1);
  for (Fp4Kind kind : kKinds) {
    for (int64_t m : kRows) {
      for (int64_t dim : kDims) {
        const std::vector<float> x = RandomFloats(m * dim, 3.0f, rng);
        const std::vector<float> gamma = RandomFloats(dim, 1.0f, rng);
        const float inv_scale = 1.7f;
        std::vector<float> normed(x.size());
        RmsNorm(x.data(), gamma.data(), normed.data(), m, dim, 1e-5f);
        std::vector<uint8_t> fused(x.size() / 2, 0xAB);
        RmsNormToFp4(pool_, x.data(), gamma.data(), m, dim, 1e-5f,
                     {.kind = kind, .inv_scale = inv_scale, .codes = fused.data()});
        EXPECT_EQ(fused, Quantized(normed, m, dim, kind, inv_scale))
            << "kind " << int(kind) << " m " << m << " dim " << dim;
      }
    }
  }
}

TEST_P(Fp4ProducersTest, SiluMulToFp4EqualsSiluMulThenQuantize) {
  std::mt19937 rng(2);
  for (Fp4Kind kind : kKinds) {
    for (int64_t m : kRows) {
      for (int64_t dim : kDims) {
        const std::vector<float> gate = RandomFloats(m * dim, 4.0f, rng);
        const std::vector<float> up = RandomFloats(m * dim, 2.0f, rng);
        const float inv_scale = 0.6f;
        std::vector<float> hidden(gate.size());
        SiluMul(gate.data(), up.data(), hidden.data(), m * dim);
        std::vector<uint8_t> fused(gate.size() / 2, 0xAB);
        SiluMulToFp4(pool_, gate.data(), up.data(), m, dim,
                     {.kind = kind, .inv_scale = inv_scale, .codes = fused.data()});
        EXPECT_EQ(fused, Quantized(hidden, m, dim, kind, inv_scale))
            << "kind " << int(kind) << " m " << m << " dim " << dim;
      }
    }
  }
}

TEST_P(Fp4ProducersTest, QuantizeToFp4EqualsQuantizeActivations) {
  std::mt19937 rng(3);
  for (Fp4Kind kind : kKinds) {
    for (int64_t m : kRows) {
      for (int64_t dim : kDims) {
        const std::vector<float> x = RandomFloats(m * dim, 5.0f, rng);
        std::vector<uint8_t> fused(x.size() / 2, 0xAB);
        QuantizeToFp4(pool_, x.data(), m, dim,
                      {.kind = kind, .inv_scale = 0.9f, .codes = fused.data()});
        EXPECT_EQ(fused, Quantized(x, m, dim, kind, 0.9f))
            << "kind " << int(kind) << " m " << m << " dim " << dim;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, Fp4ProducersTest, ::testing::Values(1, 2, 3),
                         [](const auto& info) { return "threads" + std::to_string(info.param); });

}  // namespace
}  // namespace engine::kernels
