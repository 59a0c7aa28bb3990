#include "kernels/cpu/memory_bandwidth.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace engine::kernels {
namespace {

// The rate must be that of reads that happened: a loop the compiler dropped reads as an absurd
// rate, a slice left unread (a wrong stream split) as a rate far above any memory's. Any machine
// reads more than 100 MB/s, and no two cores 10 TB/s, even from cache.
TEST(MemoryBandwidthTest, ProbeMeasuresAPlausibleRateEveryTime) {
  ThreadPool pool(2);
  ReadBandwidthProbe probe(pool, int64_t{64} << 20);
  for (int i = 0; i < 3; ++i) {
    const double rate = probe.Measure(1);
    EXPECT_GT(rate, 1e8);
    EXPECT_LT(rate, 1e13);
  }
}

// Sizes that do not split into whole 256-byte chunks per thread still give a rate (the slices
// round down, and a tiny buffer is one chunk per thread).
TEST(MemoryBandwidthTest, AwkwardSizes) {
  ThreadPool pool(3);
  for (int64_t bytes : {int64_t{1}, int64_t{1000}, int64_t{(1 << 20) + 77}}) {
    const double rate = MeasureReadBandwidth(pool, bytes, 2);
    EXPECT_GT(rate, 1e6) << bytes;
  }
}

}  // namespace
}  // namespace engine::kernels
