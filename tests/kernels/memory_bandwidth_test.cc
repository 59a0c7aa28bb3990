#include "kernels/cpu/memory_bandwidth.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace engine::kernels {
namespace {

// The rate must be that of reads that happened: a loop the compiler dropped leaves only the
// dispatch (microseconds for 64 MiB: over 6 TB/s), while two threads read 64 MiB far below
// 1 TB/s even where it fits in cache; and any machine reads more than 100 MB/s.
TEST(MemoryBandwidthTest, ProbeMeasuresAPlausibleRateEveryTime) {
  ThreadPool pool(2);
  ReadBandwidthProbe probe(pool, int64_t{64} << 20);
  for (int i = 0; i < 3; ++i) {
    const double rate = probe.Measure(1);
    EXPECT_GT(rate, 1e8);
    EXPECT_LT(rate, 1e12);
  }
}

// Sizes that do not split into whole 256-byte chunks per thread still give a rate (the slices
// round down, and a tiny buffer is one chunk per thread). Only > 0: a tiny buffer's time is the
// dispatch, which a loaded machine can stretch without bound.
TEST(MemoryBandwidthTest, AwkwardSizes) {
  ThreadPool pool(3);
  for (int64_t bytes : {int64_t{1}, int64_t{1000}, int64_t{(1 << 20) + 77}}) {
    const double rate = MeasureReadBandwidth(pool, bytes, 2);
    EXPECT_GT(rate, 0.0) << bytes;
  }
}

}  // namespace
}  // namespace engine::kernels
