// Exhaustive tests of the E2M1 codec in kernels/core/fp4.h. The expected values are the OCP MX
// E2M1 table written out by hand, not taken from our own encoder.
#include "kernels/core/fp4.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace engine {
namespace {

// OCP MX spec, table of E2M1 values, codes 0..15.
constexpr float kSpecValues[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                   -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

TEST(Fp4CodecTest, DecodeMatchesSpecTableIncludingSignOfZero) {
  for (int code = 0; code < 16; ++code) {
    const float v = DecodeE2M1(static_cast<uint8_t>(code));
    EXPECT_EQ(v, kSpecValues[code]) << "code=" << code;
    EXPECT_EQ(std::signbit(v), code >= 8) << "code=" << code;
  }
}

TEST(Fp4CodecTest, DecodeIgnoresHighNibble) {
  for (int code = 0; code < 16; ++code) {
    EXPECT_EQ(std::bit_cast<uint32_t>(DecodeE2M1(static_cast<uint8_t>(code | 0xA0))),
              std::bit_cast<uint32_t>(kSpecValues[code]));
  }
}

TEST(Fp4CodecTest, DecodeEncodeRoundTripsAllCodes) {
  for (int code = 0; code < 16; ++code) {
    const auto c = static_cast<uint8_t>(code);
    EXPECT_EQ(EncodeE2M1(DecodeE2M1(c)), c) << "code=" << code;  // incl. -0 (0x8)
  }
}

TEST(Fp4CodecTest, DoubledTableIsTwiceDecode) {
  constexpr int kSpecDoubled[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
  for (int code = 0; code < 16; ++code) {
    const auto c = static_cast<uint8_t>(code);
    EXPECT_EQ(DoubledE2M1(c), kSpecDoubled[code]) << "code=" << code;
    EXPECT_EQ(static_cast<float>(DoubledE2M1(c)), 2.0f * DecodeE2M1(c)) << "code=" << code;
    EXPECT_EQ(kE2M1Doubled[code], kSpecDoubled[code]) << "code=" << code;
  }
}

// Each midpoint between neighbouring magnitudes, and the code its tie must go to: the
// neighbour with mantissa bit 0 (codes 0, 2, 4, 6 are "even").
struct Midpoint {
  float value;
  uint8_t below;  // code of the lower neighbour
  uint8_t above;  // code of the upper neighbour
  uint8_t tie;    // code the exact midpoint encodes to
};
constexpr Midpoint kMidpoints[] = {
    {0.25f, 0x0, 0x1, 0x0}, {0.75f, 0x1, 0x2, 0x2}, {1.25f, 0x2, 0x3, 0x2},
    {1.75f, 0x3, 0x4, 0x4}, {2.5f, 0x4, 0x5, 0x4},  {3.5f, 0x5, 0x6, 0x6},
    {5.0f, 0x6, 0x7, 0x6},
};

TEST(Fp4CodecTest, MidpointsRoundToEvenCodeBothSigns) {
  for (const Midpoint& m : kMidpoints) {
    EXPECT_EQ(m.tie & 0x1, 0) << "table error at " << m.value;
    EXPECT_EQ(EncodeE2M1(m.value), m.tie) << "x=" << m.value;
    EXPECT_EQ(EncodeE2M1(-m.value), m.tie | 0x8) << "x=" << -m.value;
  }
}

TEST(Fp4CodecTest, JustBelowAndAboveEachMidpointRoundToNearest) {
  for (const Midpoint& m : kMidpoints) {
    const float below = std::nextafter(m.value, 0.0f);
    const float above = std::nextafter(m.value, std::numeric_limits<float>::infinity());
    EXPECT_EQ(EncodeE2M1(below), m.below) << "x=" << below;
    EXPECT_EQ(EncodeE2M1(above), m.above) << "x=" << above;
    EXPECT_EQ(EncodeE2M1(-below), m.below | 0x8) << "x=" << -below;
    EXPECT_EQ(EncodeE2M1(-above), m.above | 0x8) << "x=" << -above;
  }
}

TEST(Fp4CodecTest, ZerosAndTinyValuesKeepTheirSign) {
  EXPECT_EQ(EncodeE2M1(0.0f), 0x0);
  EXPECT_EQ(EncodeE2M1(-0.0f), 0x8);
  EXPECT_EQ(EncodeE2M1(std::numeric_limits<float>::denorm_min()), 0x0);
  EXPECT_EQ(EncodeE2M1(-std::numeric_limits<float>::denorm_min()), 0x8);
  EXPECT_EQ(EncodeE2M1(0.1f), 0x0);
  EXPECT_EQ(EncodeE2M1(-0.1f), 0x8);
}

TEST(Fp4CodecTest, SaturatesToSix) {
  const float inf = std::numeric_limits<float>::infinity();
  for (float x : {6.0f, 7.0f, 100.0f, 1e30f, std::numeric_limits<float>::max(), inf}) {
    EXPECT_EQ(EncodeE2M1(x), 0x7) << "x=" << x;
    EXPECT_EQ(EncodeE2M1(-x), 0xF) << "x=" << -x;
  }
  EXPECT_EQ(kE2M1Max, DecodeE2M1(0x7));
}

// Documented choice (fp4.h): NaN -> +6 (0x7) whatever its sign, as NVIDIA's satfinite cvt does.
TEST(Fp4CodecTest, NanEncodesToPositiveMax) {
  const float qnan = std::numeric_limits<float>::quiet_NaN();
  const float snan = std::numeric_limits<float>::signaling_NaN();
  EXPECT_EQ(kE2M1NanCode, 0x7);
  EXPECT_EQ(EncodeE2M1(qnan), 0x7);
  EXPECT_EQ(EncodeE2M1(-qnan), 0x7);
  EXPECT_EQ(EncodeE2M1(snan), 0x7);
  EXPECT_EQ(EncodeE2M1(std::bit_cast<float>(0xFFFFFFFFu)), 0x7);  // negative NaN, all bits set
  EXPECT_EQ(EncodeE2M1(std::bit_cast<float>(0x7F800001u)), 0x7);  // smallest-payload NaN
}

// Brute force over a dense grid: the encoder returns a nearest value, and on exact ties the
// even code. Independent of the threshold chain: it compares distances to the spec table.
TEST(Fp4CodecTest, EncodeIsNearestOnADenseGrid) {
  for (int i = -8000; i <= 8000; ++i) {
    const float x = static_cast<float>(i) / 1000.0f;  // [-8, 8] in steps of 0.001
    const uint8_t code = EncodeE2M1(x);
    const float err = std::fabs(DecodeE2M1(code) - x);
    for (int other = 0; other < 16; ++other) {
      if (std::signbit(kSpecValues[other]) != std::signbit(x)) continue;
      EXPECT_LE(err, std::fabs(kSpecValues[other] - x)) << "x=" << x << " code=" << int{code};
    }
    EXPECT_EQ(code & 0x8, std::signbit(x) ? 0x8 : 0x0) << "x=" << x;
  }
}

TEST(Fp4CodecTest, PackPutsEvenElementInLowNibble) {
  EXPECT_EQ(PackE2M1x2(0x1, 0x2), 0x21);
  EXPECT_EQ(PackE2M1x2(0xF, 0x0), 0x0F);
  EXPECT_EQ(PackE2M1x2(0x0, 0xF), 0xF0);
  EXPECT_EQ(PackE2M1x2(0x13, 0x24), 0x43);  // stray high bits of the inputs are dropped
  for (int even = 0; even < 16; ++even) {
    for (int odd = 0; odd < 16; ++odd) {
      const uint8_t byte = PackE2M1x2(static_cast<uint8_t>(even), static_cast<uint8_t>(odd));
      EXPECT_EQ(UnpackE2M1Low(byte), even);
      EXPECT_EQ(UnpackE2M1High(byte), odd);
    }
  }
}

TEST(Fp4CodecTest, E2M1AtReadsElementsInOrder) {
  // Elements 0..6 = codes 1..7 -> bytes {0x21, 0x43, 0x65, 0x07}.
  const std::vector<uint8_t> packed = {0x21, 0x43, 0x65, 0x07};
  for (int64_t i = 0; i < 7; ++i) EXPECT_EQ(E2M1At(packed.data(), i), i + 1) << "i=" << i;
  EXPECT_EQ(E2M1At(packed.data(), 7), 0x0);
}

}  // namespace
}  // namespace engine
