// Exhaustive tests of the three FP4 formats in kernels/core/fp4_format.h. Expected values are the
// LLM-FP4 tables written out by hand (and a brute-force nearest-value search), not our encoder.
#include "kernels/core/fp4_format.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "gtest/gtest.h"
#include "kernels/core/fp4.h"

namespace engine {
namespace {

constexpr Fp4Kind kKinds[] = {Fp4Kind::kE2M1, Fp4Kind::kE3M0, Fp4Kind::kE1M2};

// Magnitudes of codes 0..7, by hand from the format definitions.
constexpr float kSpecMagnitudes[3][8] = {
    {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f},             // E2M1: bias 1
    {0.0f, 0.25f, 0.5f, 1.0f, 2.0f, 4.0f, 8.0f, 16.0f},           // E3M0: 2^(e-3)
    {0.0f, 0.25f, 0.5f, 0.75f, 1.0f, 1.25f, 1.5f, 1.75f},         // E1M2: bias 1
};
constexpr int kSpecInts[3][8] = {
    {0, 1, 2, 3, 4, 6, 8, 12}, {0, 1, 2, 4, 8, 16, 32, 64}, {0, 1, 2, 3, 4, 5, 6, 7}};
constexpr int kSpecIntScale[3] = {2, 4, 4};
constexpr int kSpecIntMax[3] = {12, 64, 7};

int Index(Fp4Kind kind) { return static_cast<int>(kind); }
float SpecValue(Fp4Kind kind, int code) {
  const float mag = kSpecMagnitudes[Index(kind)][code & 7];
  return (code & 8) ? -mag : mag;
}

TEST(Fp4FormatTest, KindValuesMatchTheModelEnum) {
  // model::Fp4Format is {kE2M1 = 0, kE3M0 = 1, kE1M2 = 2}; the engine casts between them.
  EXPECT_EQ(static_cast<int>(Fp4Kind::kE2M1), 0);
  EXPECT_EQ(static_cast<int>(Fp4Kind::kE3M0), 1);
  EXPECT_EQ(static_cast<int>(Fp4Kind::kE1M2), 2);
  EXPECT_TRUE(IsValidFp4Kind(Fp4Kind::kE1M2));
  EXPECT_FALSE(IsValidFp4Kind(static_cast<Fp4Kind>(3)));
}

TEST(Fp4FormatTest, DecodeMatchesSpecTablesIncludingSignOfZero) {
  for (Fp4Kind kind : kKinds) {
    for (int code = 0; code < 16; ++code) {
      const float v = Fp4Decode(kind, static_cast<uint8_t>(code));
      EXPECT_EQ(std::bit_cast<uint32_t>(v), std::bit_cast<uint32_t>(SpecValue(kind, code)))
          << "kind=" << Index(kind) << " code=" << code;
      // Only the low nibble is read.
      EXPECT_EQ(Fp4Decode(kind, static_cast<uint8_t>(code | 0x50)), v);
    }
  }
  EXPECT_EQ(DecodeE3M0(0x5), 4.0f);
  EXPECT_EQ(DecodeE1M2(0xE), -1.5f);
}

TEST(Fp4FormatTest, AllCodesRoundTrip) {
  for (Fp4Kind kind : kKinds) {
    for (int code = 0; code < 16; ++code) {
      const auto c = static_cast<uint8_t>(code);
      EXPECT_EQ(Fp4Encode(kind, Fp4Decode(kind, c)), c) << "kind=" << Index(kind);
    }
  }
}

TEST(Fp4FormatTest, IntegerValuesAreDecodeTimesIntScale) {
  for (Fp4Kind kind : kKinds) {
    const int i = Index(kind);
    EXPECT_EQ(Fp4IntScale(kind), kSpecIntScale[i]);
    EXPECT_EQ(Fp4IntMax(kind), kSpecIntMax[i]);
    EXPECT_EQ(Fp4MaxMagnitude(kind), kSpecMagnitudes[i][7]);
    for (int code = 0; code < 16; ++code) {
      const auto c = static_cast<uint8_t>(code);
      const int expected = (code & 8) ? -kSpecInts[i][code & 7] : kSpecInts[i][code & 7];
      EXPECT_EQ(Fp4Int(kind, c), expected) << "kind=" << i << " code=" << code;
      EXPECT_EQ(kFp4IntTable[i][code], expected);
      EXPECT_EQ(static_cast<float>(Fp4Int(kind, c)),
                Fp4Decode(kind, c) * static_cast<float>(Fp4IntScale(kind)));
    }
  }
}

// Every midpoint between neighbouring magnitudes ties to the even code; one float below goes to
// the lower neighbour, one above to the upper one; the same negated.
TEST(Fp4FormatTest, MidpointsTieToEvenCodeAndNeighboursRoundToNearest) {
  const float inf = std::numeric_limits<float>::infinity();
  for (Fp4Kind kind : kKinds) {
    for (int lo = 0; lo < 7; ++lo) {
      const float a = kSpecMagnitudes[Index(kind)][lo], b = kSpecMagnitudes[Index(kind)][lo + 1];
      const float mid = (a + b) / 2;  // exact: a few significant bits
      const auto below = static_cast<uint8_t>(lo), above = static_cast<uint8_t>(lo + 1);
      const uint8_t tie = (lo % 2 == 0) ? below : above;
      SCOPED_TRACE(::testing::Message() << "kind=" << Index(kind) << " mid=" << mid);
      EXPECT_EQ(Fp4Encode(kind, mid), tie);
      EXPECT_EQ(Fp4Encode(kind, -mid), tie | 0x8);
      EXPECT_EQ(Fp4Encode(kind, std::nextafter(mid, 0.0f)), below);
      EXPECT_EQ(Fp4Encode(kind, std::nextafter(mid, inf)), above);
      EXPECT_EQ(Fp4Encode(kind, -std::nextafter(mid, 0.0f)), below | 0x8);
      EXPECT_EQ(Fp4Encode(kind, -std::nextafter(mid, inf)), above | 0x8);
    }
  }
}

TEST(Fp4FormatTest, ZerosAndTinyValuesKeepTheirSign) {
  const float tiny = std::numeric_limits<float>::denorm_min();
  for (Fp4Kind kind : kKinds) {
    EXPECT_EQ(Fp4Encode(kind, 0.0f), 0x0);
    EXPECT_EQ(Fp4Encode(kind, -0.0f), 0x8);
    EXPECT_EQ(Fp4Encode(kind, tiny), 0x0);
    EXPECT_EQ(Fp4Encode(kind, -tiny), 0x8);
    EXPECT_EQ(Fp4Encode(kind, -0.1f), 0x8);
    EXPECT_EQ(Fp4Int(kind, 0x8), 0);
  }
}

TEST(Fp4FormatTest, SaturatesToMax) {
  const float inf = std::numeric_limits<float>::infinity();
  for (Fp4Kind kind : kKinds) {
    const float max = Fp4MaxMagnitude(kind);
    for (float x : {max, std::nextafter(max, inf), 1.5f * max, 1e30f,
                    std::numeric_limits<float>::max(), inf}) {
      EXPECT_EQ(Fp4Encode(kind, x), 0x7) << "kind=" << Index(kind) << " x=" << x;
      EXPECT_EQ(Fp4Encode(kind, -x), 0xF) << "kind=" << Index(kind) << " x=" << -x;
    }
  }
}

// Documented choice (fp4_format.h): NaN -> 0x7 (+max) whatever its sign, as for E2M1.
TEST(Fp4FormatTest, NanEncodesToPositiveMax) {
  for (Fp4Kind kind : kKinds) {
    for (uint32_t bits : {0x7FC00000u, 0xFFC00000u, 0x7F800001u, 0xFFFFFFFFu, 0x7FA00000u}) {
      EXPECT_EQ(Fp4Encode(kind, std::bit_cast<float>(bits)), 0x7)
          << "kind=" << Index(kind) << " bits=" << bits;
    }
  }
}

// Independent brute force: the nearest spec value, ties to the even code, saturation, sign.
uint8_t NearestCode(Fp4Kind kind, float x) {
  if (std::isnan(x)) return 0x7;
  const double a = std::fabs(static_cast<double>(x));
  int best = 0;
  for (int c = 1; c < 8; ++c) {
    const double d_best = std::fabs(a - kSpecMagnitudes[Index(kind)][best]);
    const double d = std::fabs(a - kSpecMagnitudes[Index(kind)][c]);
    if (d < d_best || (d == d_best && c % 2 == 0)) best = c;
  }
  return static_cast<uint8_t>((std::signbit(x) ? 0x8 : 0x0) | best);
}

TEST(Fp4FormatTest, EncodeIsNearestOnADenseGridAndRandomFloats) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> wide(-40.0f, 40.0f);
  for (Fp4Kind kind : kKinds) {
    for (int i = -20000; i <= 20000; ++i) {
      const float x = static_cast<float>(i) / 1024.0f;  // multiples of 2^-10 hit every midpoint
      ASSERT_EQ(Fp4Encode(kind, x), NearestCode(kind, x)) << "kind=" << Index(kind) << " x=" << x;
    }
    for (int i = 0; i < 200000; ++i) {
      const float x = wide(rng);
      ASSERT_EQ(Fp4Encode(kind, x), NearestCode(kind, x)) << "kind=" << Index(kind) << " x=" << x;
    }
  }
}

TEST(Fp4FormatTest, E2M1IsTheFp4HCodec) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> dist(-8.0f, 8.0f);
  for (int i = 0; i < 200000; ++i) {
    const float x = dist(rng);
    ASSERT_EQ(Fp4Encode(Fp4Kind::kE2M1, x), EncodeE2M1(x)) << "x=" << x;
    const auto bits_x = std::bit_cast<float>(static_cast<uint32_t>(rng()));  // any bit pattern
    ASSERT_EQ(Fp4Encode(Fp4Kind::kE2M1, bits_x), EncodeE2M1(bits_x));
  }
  for (int code = 0; code < 16; ++code) {
    const auto c = static_cast<uint8_t>(code);
    EXPECT_EQ(std::bit_cast<uint32_t>(Fp4Decode(Fp4Kind::kE2M1, c)),
              std::bit_cast<uint32_t>(DecodeE2M1(c)));
    EXPECT_EQ(Fp4Int(Fp4Kind::kE2M1, c), DoubledE2M1(c));
  }
}

}  // namespace
}  // namespace engine
