// The CUDA FP4 unpack kernel against the host codec, and our host encoder against NVIDIA's own
// E2M1 conversion (cuda_fp4.h) run on the device. Skips without a GPU or a CUDA build, unless
// ENGINE_REQUIRE_CUDA=1 (the GPU CI job), which turns the skip into a failure.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/core/fp4.h"
#include "kernels/cuda/cuda_device.h"
#include "tests/test_util.h"

namespace engine::kernels {
namespace {

bool RequireCuda() {
  const char* env = std::getenv("ENGINE_REQUIRE_CUDA");
  return env != nullptr && std::strcmp(env, "1") == 0;
}

class CudaFp4Test : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<CudaDeviceInfo> info = QueryCudaDevice();
    if (!info.ok()) {
      if (RequireCuda()) FAIL() << "ENGINE_REQUIRE_CUDA=1 but " << info.status();
      GTEST_SKIP() << info.status();
    }
    RecordProperty("cuda_device", absl::StrCat(info->name, " (sm_", info->sm_major,
                                               info->sm_minor, ")"));
  }
};

std::vector<float> HostUnpack(const std::vector<uint8_t>& packed, int64_t n, float scale) {
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[i] = DecodeE2M1(E2M1At(packed.data(), i)) * scale;
  return out;
}

TEST_F(CudaFp4Test, UnpackEqualsHostDecodeTimesScaleExactly) {
  constexpr uint32_t kSeed = 20240611;
  std::mt19937 rng(kSeed);
  std::uniform_int_distribution<int> byte_dist(0, 255);
  // The odd sizes leave a half-used last byte and exercise the scalar tail of the vector path.
  for (const int64_t n : {int64_t{1}, int64_t{2}, int64_t{31}, int64_t{1000}, int64_t{(1 << 20) + 3}}) {
    for (const float scale : {1.0f, 0.37f, -3.0e-3f}) {
      SCOPED_TRACE(absl::StrCat("n=", n, " scale=", scale, " seed=", kSeed));
      std::vector<uint8_t> packed(static_cast<size_t>((n + 1) / 2));
      for (uint8_t& b : packed) b = static_cast<uint8_t>(byte_dist(rng));
      ASSERT_OK_AND_ASSIGN(std::vector<float> device, CudaUnpackFp4ForTest(packed, n, scale));
      const std::vector<float> host = HostUnpack(packed, n, scale);
      ASSERT_EQ(device.size(), host.size());
      int64_t mismatches = 0;
      for (size_t i = 0; i < host.size(); ++i) {
        // Bitwise, so -0.0 vs +0.0 would count.
        uint32_t d, h;
        std::memcpy(&d, &device[i], 4);
        std::memcpy(&h, &host[i], 4);
        if (d != h && mismatches++ < 10) {
          ADD_FAILURE() << "i=" << i << " device=" << device[i] << " host=" << host[i];
        }
      }
      EXPECT_EQ(mismatches, 0);
    }
  }
}

TEST_F(CudaFp4Test, UnpackRejectsShortInput) {
  const std::vector<uint8_t> packed(3);
  EXPECT_EQ(CudaUnpackFp4ForTest(packed, 7, 1.0f).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CudaUnpackFp4ForTest(packed, -1, 1.0f).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// DESIGN.md B.5: our packer equals the cuda_fp4.h conversion for pairs from the midpoint set.
// This pins both the rounding rules and the nibble order against an implementation we did not
// write.
TEST_F(CudaFp4Test, HostEncoderMatchesNvidiaConversion) {
  std::vector<float> values = {0.0f, -0.0f, 6.0f, 7.0f, 1e30f,
                               std::numeric_limits<float>::infinity(),
                               std::numeric_limits<float>::quiet_NaN(),
                               -std::numeric_limits<float>::quiet_NaN(),
                               std::numeric_limits<float>::denorm_min(), 0.1f};
  for (const float mid : {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f}) {
    for (const float x : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 100.0f)}) {
      values.push_back(x);
    }
  }
  for (int code = 0; code < 16; ++code) values.push_back(DecodeE2M1(static_cast<uint8_t>(code)));
  const size_t base = values.size();
  for (size_t i = 0; i < base; ++i) values.push_back(-values[i]);
  // All ordered pairs, so each value sits in both the low and the high nibble.
  std::vector<float> pairs;
  for (const float a : values) {
    for (const float b : values) {
      pairs.push_back(a);
      pairs.push_back(b);
    }
  }
  ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> nv, CudaPackFp4ForTest(pairs));
  ASSERT_EQ(nv.size(), pairs.size() / 2);
  int64_t mismatches = 0;
  for (size_t i = 0; i < nv.size(); ++i) {
    const uint8_t ours = PackE2M1x2(EncodeE2M1(pairs[2 * i]), EncodeE2M1(pairs[2 * i + 1]));
    if (ours != nv[i] && mismatches++ < 10) {
      ADD_FAILURE() << "pair (" << pairs[2 * i] << ", " << pairs[2 * i + 1] << "): ours=0x"
                    << std::hex << int{ours} << " nvidia=0x" << int{nv[i]};
    }
  }
  EXPECT_EQ(mismatches, 0);
}

}  // namespace
}  // namespace engine::kernels
