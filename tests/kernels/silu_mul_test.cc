#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/core/cpu_features.h"
#include "kernels/cpu/ops_cpu.h"
#include "kernels/cpu/x86/silu_mul_avx512.h"

namespace engine::kernels::silu_internal {
namespace {

// The AVX-512 path must equal the scalar loop bit for bit (NaN for NaN), or the fast engine's
// greedy output could drift from what the scalar path gives.
void ExpectBitIdentical(const std::vector<float>& gate, const std::vector<float>& up) {
  const int64_t n = static_cast<int64_t>(gate.size());
  std::vector<float> want(gate.size()), got(gate.size(), -1.0f);
  SiluMulScalar(gate.data(), up.data(), want.data(), n);
  SiluMulAvx512(gate.data(), up.data(), got.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(want[i])) {
      ASSERT_TRUE(std::isnan(got[i])) << "gate " << gate[i] << " up " << up[i];
    } else {
      ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
          << "gate " << gate[i] << " (bits " << std::hex << std::bit_cast<uint32_t>(gate[i])
          << ") up " << up[i] << ": " << got[i] << " != " << want[i];
    }
  }
}

bool Runnable() { return kHaveSiluMulAvx512 && DetectCpuFeatures().avx512f; }

constexpr const char* kSkipReason =
    "the AVX-512 SiluMul needs avx512f and glibc (it reproduces glibc's expf)";

// Every float whose exp takes glibc's normal branch (|x| < 88) with a stride of 7 through the
// bit patterns (about 300 million values over both signs), against up = 1: a wrong constant,
// a rounding step out of glibc's order or a bad table lookup shows up in the last bit somewhere.
TEST(SiluMulTest, Avx512MatchesScalarAcrossTheNormalRange) {
  if (!Runnable()) GTEST_SKIP() << kSkipReason;
  constexpr uint32_t kEnd = 0x42b00000;  // 88.0f: glibc's slow branch from here on
  constexpr uint32_t kStride = 7;
  std::vector<float> gate, up;
  gate.reserve(1 << 20);
  for (uint32_t sign : {0u, 0x80000000u}) {
    for (uint32_t bits = 0; bits < kEnd; bits += kStride) {
      gate.push_back(std::bit_cast<float>(bits | sign));
      if (gate.size() == (1u << 20) || bits + kStride >= kEnd) {
        up.assign(gate.size(), 1.0f);
        ExpectBitIdentical(gate, up);
        if (HasFatalFailure()) return;
        gate.clear();
      }
    }
  }
}

// The slow lanes (|gate| >= 88, infinities, NaN) mixed into vectors of normal ones, random up
// values, and lengths with every tail from 0 to 15.
TEST(SiluMulTest, Avx512MatchesScalarOnSpecialValuesAndTails) {
  if (!Runnable()) GTEST_SKIP() << kSkipReason;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> normal(-20.0f, 20.0f);
  std::uniform_real_distribution<float> wide(-120.0f, 120.0f);
  const float special[] = {88.0f,
                           -88.0f,
                           88.72f,
                           -103.5f,
                           -104.0f,
                           150.0f,
                           -150.0f,
                           0.0f,
                           -0.0f,
                           std::numeric_limits<float>::denorm_min(),
                           std::numeric_limits<float>::infinity(),
                           -std::numeric_limits<float>::infinity(),
                           std::numeric_limits<float>::quiet_NaN(),
                           std::numeric_limits<float>::max(),
                           -std::numeric_limits<float>::max()};
  std::vector<int64_t> lengths = {0, 1, 15, 100, 1000, 4099};
  for (int64_t n = 32; n < 48; ++n) lengths.push_back(n);  // every tail, 0 to 15
  for (int64_t n : lengths) {
    std::vector<float> gate(static_cast<size_t>(n)), up(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const int pick = static_cast<int>(rng() % 8);
      gate[i] = pick == 0   ? special[rng() % std::size(special)]
                : pick == 1 ? wide(rng)
                            : normal(rng);
      up[i] = normal(rng);
    }
    ExpectBitIdentical(gate, up);
    if (HasFatalFailure()) return;
  }
}

// The run-time check the dispatch relies on holds with this process's libm.
TEST(SiluMulTest, RunTimeCheckAgrees) {
  if (!Runnable()) GTEST_SKIP() << kSkipReason;
  EXPECT_TRUE(SiluMulAvx512AgreesWithScalar());
}

// The public entry point takes the same path: its result equals the scalar loop too.
TEST(SiluMulTest, SiluMulEqualsTheScalarLoop) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> dist(-30.0f, 30.0f);
  std::vector<float> gate(777), up(777), want(777), got(777);
  for (size_t i = 0; i < gate.size(); ++i) {
    gate[i] = dist(rng);
    up[i] = dist(rng);
  }
  SiluMulScalar(gate.data(), up.data(), want.data(), 777);
  SiluMul(gate.data(), up.data(), got.data(), 777);
  for (size_t i = 0; i < gate.size(); ++i) {
    ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i])) << i;
  }
}

}  // namespace
}  // namespace engine::kernels::silu_internal
