#include "kernels/cpu/int8_peak.h"

#include <string>

#include "gtest/gtest.h"
#include "kernels/core/cpu_features.h"

namespace engine::kernels {
namespace {

// The rate must be that of instructions that ran: an optimized-away loop reads as an absurd
// rate, a missing path as zero. Any AVX2 core does far more than 1 GOP/s of int8 and no CPU
// 100 TOP/s on its vector units.
TEST(Int8PeakTest, MeasuresThePathTheKernelsUse) {
  ThreadPool pool(1);
  const Int8Peak peak = MeasureInt8DotPeak(pool, 1);
  const CpuFeatures f = DetectCpuFeatures();
  if (!f.avx2) {
    EXPECT_EQ(peak.ops_per_second, 0);
    EXPECT_EQ(std::string(peak.instruction), "none");
    return;
  }
  EXPECT_GT(peak.ops_per_second, 1e9);
  EXPECT_LT(peak.ops_per_second, 1e14);
  const std::string expected = f.avx512f && f.avx512vnni ? "avx512vnni"
                               : f.avxvnni               ? "avxvnni"
                                                         : "avx2";
  EXPECT_EQ(std::string(peak.instruction).substr(0, expected.size()), expected);
}

TEST(Int8PeakTest, CountsEveryThread) {
  ThreadPool pool(2);
  EXPECT_GT(MeasureInt8DotPeak(pool, 1).ops_per_second, DetectCpuFeatures().avx2 ? 1e9 : -1);
}

}  // namespace
}  // namespace engine::kernels
