// Block dequantization against the block definitions of ggml-common.h: every type is checked
// on hand-built blocks with literal, hand-computed values and, over random blocks, against a
// per-element formula written here independently of the decoder's loop structure.
#include "model/gguf_dequant.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/core/half.h"
#include "tests/test_util.h"

namespace engine::model::gguf {
namespace {

constexpr uint32_t T(GgmlType t) { return static_cast<uint32_t>(t); }

void PutHalf(uint8_t* p, float v) {
  const uint16_t h = F32ToF16(v);
  ASSERT_EQ(F16ToF32(h), v) << "test value must be exact in binary16";
  std::memcpy(p, &h, 2);
}

float GetHalf(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return F16ToF32(h);
}

std::vector<float> Decode(GgmlType type, const std::vector<uint8_t>& bytes, size_t n) {
  std::vector<float> out(n, std::nanf(""));
  const absl::Status s = Dequantize(T(type), bytes, out);
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

// Random blocks: every byte random, then the half-precision scales replaced by finite values.
std::vector<uint8_t> RandomBlocks(GgmlType type, int blocks, std::mt19937& rng,
                                  std::vector<size_t> half_offsets) {
  const GgmlTypeTraits tr = GgmlTypeInfo(T(type));
  std::vector<uint8_t> bytes(static_cast<size_t>(blocks * tr.type_size));
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> scale(-2.0f, 2.0f);
  for (int i = 0; i < blocks; ++i) {
    for (size_t off : half_offsets) {
      const uint16_t h = F32ToF16(scale(rng));
      std::memcpy(&bytes[static_cast<size_t>(i * tr.type_size) + off], &h, 2);
    }
  }
  return bytes;
}

TEST(GgufDequantTest, TypeTableMatchesGgmlCommon) {
  EXPECT_EQ(GgmlTypeInfo(T(GgmlType::kQ4_0)).type_size, 18);
  EXPECT_EQ(GgmlTypeInfo(T(GgmlType::kQ5_0)).type_size, 22);
  EXPECT_EQ(GgmlTypeInfo(T(GgmlType::kQ5_1)).type_size, 24);
  EXPECT_EQ(GgmlTypeInfo(T(GgmlType::kQ8_0)).type_size, 34);
  EXPECT_EQ(GgmlTypeInfo(T(GgmlType::kQ6_K)).block_size, 256);
  EXPECT_EQ(std::string(GgmlTypeInfo(3).name), "Q4_1");
  EXPECT_EQ(GgmlTypeInfo(5).name, nullptr);
  EXPECT_TRUE(CanDequantize(T(GgmlType::kQ6_K)));
  EXPECT_FALSE(CanDequantize(T(GgmlType::kQ2_K)));
  EXPECT_FALSE(CanDequantize(99));
}

TEST(GgufDequantTest, F32IsCopied) {
  const std::vector<float> v = {1.5f, -0.0f, 3e38f, -7.25f};
  std::vector<uint8_t> bytes(16);
  std::memcpy(bytes.data(), v.data(), 16);
  const std::vector<float> out = Decode(GgmlType::kF32, bytes, 4);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(std::memcmp(&out[i], &v[i], 4), 0);
}

TEST(GgufDequantTest, F16LiteralValues) {
  // 1.0, -2.0, 65504 (max), 2^-24 (smallest subnormal), 1/3 rounded, -0.
  const uint16_t h[] = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x3555, 0x8000};
  std::vector<uint8_t> bytes(sizeof(h));
  std::memcpy(bytes.data(), h, sizeof(h));
  const std::vector<float> out = Decode(GgmlType::kF16, bytes, 6);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_EQ(out[2], 65504.0f);
  EXPECT_EQ(out[3], std::ldexp(1.0f, -24));
  EXPECT_EQ(out[4], 0.333251953125f);
  EXPECT_TRUE(out[5] == 0.0f && std::signbit(out[5]));
}

TEST(GgufDequantTest, BF16LiteralValues) {
  const uint16_t h[] = {0x3F80, 0xC0A0, 0x4049, 0x0000};  // 1, -5, 3.140625, 0
  std::vector<uint8_t> bytes(sizeof(h));
  std::memcpy(bytes.data(), h, sizeof(h));
  const std::vector<float> out = Decode(GgmlType::kBF16, bytes, 4);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -5.0f);
  EXPECT_EQ(out[2], 3.140625f);
  EXPECT_EQ(out[3], 0.0f);
}

// ---- Q8_0: { half d; int8 qs[32] }, x = qs * d ----

TEST(GgufDequantTest, Q8_0Literal) {
  std::vector<uint8_t> b(34, 0);
  PutHalf(&b[0], 0.5f);
  b[2] = static_cast<uint8_t>(-128);
  b[3] = 127;
  b[4] = 3;
  b[33] = static_cast<uint8_t>(-1);
  const std::vector<float> y = Decode(GgmlType::kQ8_0, b, 32);
  EXPECT_EQ(y[0], -64.0f);
  EXPECT_EQ(y[1], 63.5f);
  EXPECT_EQ(y[2], 1.5f);
  EXPECT_EQ(y[5], 0.0f);
  EXPECT_EQ(y[31], -0.5f);
}

TEST(GgufDequantTest, Q8_0Formula) {
  std::mt19937 rng(1);
  const int blocks = 5;
  const std::vector<uint8_t> b = RandomBlocks(GgmlType::kQ8_0, blocks, rng, {0});
  const std::vector<float> y = Decode(GgmlType::kQ8_0, b, blocks * 32);
  for (int e = 0; e < blocks * 32; ++e) {
    const uint8_t* blk = &b[static_cast<size_t>(e / 32 * 34)];
    const float expected = static_cast<float>(static_cast<int8_t>(blk[2 + e % 32])) * GetHalf(blk);
    ASSERT_EQ(y[e], expected) << "element " << e;
  }
}

// ---- Q4_0: { half d; uint8 qs[16] }, element j < 16 is the low nibble of qs[j], element
// j + 16 the high nibble; x = (q - 8) * d ----

TEST(GgufDequantTest, Q4_0Literal) {
  std::vector<uint8_t> b(36, 0x88);  // two blocks; nibble 8 decodes to 0
  PutHalf(&b[0], 0.5f);
  b[2] = 0x1F;   // element 0: 15 -> 3.5; element 16: 1 -> -3.5
  b[17] = 0x70;  // element 15: 0 -> -4; element 31: 7 -> -0.5
  PutHalf(&b[18], -2.0f);
  b[20] = 0x9A;  // element 32: 10 -> -4; element 48: 9 -> -2
  const std::vector<float> y = Decode(GgmlType::kQ4_0, b, 64);
  EXPECT_EQ(y[0], 3.5f);
  EXPECT_EQ(y[16], -3.5f);
  EXPECT_EQ(y[15], -4.0f);
  EXPECT_EQ(y[31], -0.5f);
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_EQ(y[32], -4.0f);
  EXPECT_EQ(y[48], -2.0f);
}

TEST(GgufDequantTest, Q4_0Formula) {
  std::mt19937 rng(2);
  const int blocks = 7;
  const std::vector<uint8_t> b = RandomBlocks(GgmlType::kQ4_0, blocks, rng, {0});
  const std::vector<float> y = Decode(GgmlType::kQ4_0, b, blocks * 32);
  for (int e = 0; e < blocks * 32; ++e) {
    const uint8_t* blk = &b[static_cast<size_t>(e / 32 * 18)];
    const int k = e % 32;
    const int q = k < 16 ? (blk[2 + k] & 0xF) : (blk[2 + k - 16] >> 4);
    ASSERT_EQ(y[e], static_cast<float>(q - 8) * GetHalf(blk)) << "element " << e;
  }
}

// ---- Q4_1: { half d; half m; uint8 qs[16] }, x = q * d + m ----

TEST(GgufDequantTest, Q4_1Literal) {
  std::vector<uint8_t> b(20, 0);
  PutHalf(&b[0], 0.25f);
  PutHalf(&b[2], -1.0f);
  b[4] = 0xF0;  // element 0: 0 -> -1; element 16: 15 -> 2.75
  b[5] = 0x48;  // element 1: 8 -> 1; element 17: 4 -> 0
  const std::vector<float> y = Decode(GgmlType::kQ4_1, b, 32);
  EXPECT_EQ(y[0], -1.0f);
  EXPECT_EQ(y[16], 2.75f);
  EXPECT_EQ(y[1], 1.0f);
  EXPECT_EQ(y[17], 0.0f);
  EXPECT_EQ(y[31], -1.0f);
}

TEST(GgufDequantTest, Q4_1Formula) {
  std::mt19937 rng(3);
  const int blocks = 6;
  const std::vector<uint8_t> b = RandomBlocks(GgmlType::kQ4_1, blocks, rng, {0, 2});
  const std::vector<float> y = Decode(GgmlType::kQ4_1, b, blocks * 32);
  for (int e = 0; e < blocks * 32; ++e) {
    const uint8_t* blk = &b[static_cast<size_t>(e / 32 * 20)];
    const int k = e % 32;
    const int q = k < 16 ? (blk[4 + k] & 0xF) : (blk[4 + k - 16] >> 4);
    const float scaled = static_cast<float>(q) * GetHalf(blk);
    ASSERT_EQ(y[e], scaled + GetHalf(blk + 2)) << "element " << e;
  }
}

// ---- Q5_0 / Q5_1: qh (u32, little-endian) bit k is the fifth bit of element k ----

int Q5Value(const uint8_t* qh_bytes, const uint8_t* qs, int k) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  const int low = k < 16 ? (qs[k] & 0xF) : (qs[k - 16] >> 4);
  return low | static_cast<int>((qh >> k) & 1u) << 4;
}

TEST(GgufDequantTest, Q5_0Literal) {
  std::vector<uint8_t> b(22, 0);
  PutHalf(&b[0], 0.125f);
  const uint32_t qh = (1u << 0) | (1u << 17) | (1u << 31);
  std::memcpy(&b[2], &qh, 4);
  b[6] = 0x0F;   // element 0: 15 | 16 = 31 -> 15 * 0.125; element 16: 0 -> -16 * 0.125
  b[7] = 0x30;   // element 1: 0 -> -2; element 17: 3 | 16 = 19 -> 0.375
  b[21] = 0x10;  // element 31: 1 | 16 = 17 -> 0.125
  const std::vector<float> y = Decode(GgmlType::kQ5_0, b, 32);
  EXPECT_EQ(y[0], 1.875f);
  EXPECT_EQ(y[16], -2.0f);
  EXPECT_EQ(y[1], -2.0f);
  EXPECT_EQ(y[17], 0.375f);
  EXPECT_EQ(y[31], 0.125f);
}

TEST(GgufDequantTest, Q5_0Formula) {
  std::mt19937 rng(4);
  const int blocks = 6;
  const std::vector<uint8_t> b = RandomBlocks(GgmlType::kQ5_0, blocks, rng, {0});
  const std::vector<float> y = Decode(GgmlType::kQ5_0, b, blocks * 32);
  for (int e = 0; e < blocks * 32; ++e) {
    const uint8_t* blk = &b[static_cast<size_t>(e / 32 * 22)];
    const int q = Q5Value(blk + 2, blk + 6, e % 32);
    ASSERT_EQ(y[e], static_cast<float>(q - 16) * GetHalf(blk)) << "element " << e;
  }
}

TEST(GgufDequantTest, Q5_1LiteralAndFormula) {
  std::vector<uint8_t> lit(24, 0);
  PutHalf(&lit[0], 0.5f);
  PutHalf(&lit[2], 1.0f);
  const uint32_t qh = 1u << 20;
  std::memcpy(&lit[4], &qh, 4);
  lit[8 + 4] = 0x2F;  // element 4: 15 -> 8.5; element 20: 2 | 16 = 18 -> 10
  const std::vector<float> ly = Decode(GgmlType::kQ5_1, lit, 32);
  EXPECT_EQ(ly[4], 8.5f);
  EXPECT_EQ(ly[20], 10.0f);
  EXPECT_EQ(ly[0], 1.0f);

  std::mt19937 rng(5);
  const int blocks = 6;
  const std::vector<uint8_t> b = RandomBlocks(GgmlType::kQ5_1, blocks, rng, {0, 2});
  const std::vector<float> y = Decode(GgmlType::kQ5_1, b, blocks * 32);
  for (int e = 0; e < blocks * 32; ++e) {
    const uint8_t* blk = &b[static_cast<size_t>(e / 32 * 24)];
    const int q = Q5Value(blk + 4, blk + 8, e % 32);
    const float scaled = static_cast<float>(q) * GetHalf(blk);
    ASSERT_EQ(y[e], scaled + GetHalf(blk + 2)) << "element " << e;
  }
}

// ---- K-quants. Scales/mins of Q4_K/Q5_K are 8 six-bit pairs packed in 12 bytes; the packer
// below is the one in ggml's quantize_row_q4_K_ref, the decoder under test uses
// get_scale_min_k4, so a round trip checks both against each other. ----

void PackScalesK4(const int sc[8], const int mn[8], uint8_t out[12]) {
  std::memset(out, 0, 12);
  for (int j = 0; j < 8; ++j) {
    const uint8_t ls = static_cast<uint8_t>(sc[j]), lm = static_cast<uint8_t>(mn[j]);
    if (j < 4) {
      out[j] = ls;
      out[j + 4] = lm;
    } else {
      out[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      out[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
      out[j - 0] |= static_cast<uint8_t>((lm >> 4) << 6);
    }
  }
}

// Element e of a 256-element Q4_K/Q5_K super-block belongs to sub-block s = e / 32; sub-blocks
// 2c and 2c+1 share qs[32c .. 32c+31] (low and high nibbles).
int K4LowBits(const uint8_t* qs, int e) {
  const int s = e / 32, l = e % 32;
  const uint8_t byte = qs[(s / 2) * 32 + l];
  return s % 2 == 0 ? (byte & 0xF) : (byte >> 4);
}

TEST(GgufDequantTest, Q4_KLiteral) {
  std::vector<uint8_t> b(144, 0);
  PutHalf(&b[0], 1.0f);  // d
  PutHalf(&b[2], 1.0f);  // dmin
  // Sub-block 0: scale 2, min 1. Sub-block 5: scale 37, min 50 (both need the high bits).
  // Hand packing: scales[0]=2, scales[4]=1; scales[9] = (37&15) | (50&15)<<4 = 0x25,
  // scales[1] |= (37>>4)<<6 = 0x80, scales[5] |= (50>>4)<<6 = 0xC0.
  b[4 + 0] = 2;
  b[4 + 4] = 1;
  b[4 + 9] = 0x25;
  b[4 + 1] = 0x80;
  b[4 + 5] = 0xC0;
  uint8_t* qs = &b[16];
  qs[0] = 0x07;   // element 0 (sub-block 0): 2 * 7 - 1 = 13; element 32 (sub-block 1): 0
  qs[64] = 0xA0;  // element 128 (sub-block 4): 0 * 0 - 0; element 160 (sub-block 5): 37*10 - 50
  qs[65] = 0x0F;  // element 129 (sub-block 4, scale 0, min 0): 0; element 161: 0 - 50
  const std::vector<float> y = Decode(GgmlType::kQ4_K, b, 256);
  EXPECT_EQ(y[0], 13.0f);
  EXPECT_EQ(y[1], -1.0f);
  EXPECT_EQ(y[32], 0.0f);
  EXPECT_EQ(y[128], 0.0f);
  EXPECT_EQ(y[160], 320.0f);
  EXPECT_EQ(y[161], -50.0f);
}

TEST(GgufDequantTest, Q4_KFormula) {
  std::mt19937 rng(6);
  const int blocks = 3;
  std::vector<uint8_t> b = RandomBlocks(GgmlType::kQ4_K, blocks, rng, {0, 2});
  std::vector<int> sc(8 * blocks), mn(8 * blocks);
  for (int i = 0; i < blocks; ++i) {
    for (int s = 0; s < 8; ++s) {
      sc[i * 8 + s] = static_cast<int>(rng() % 64);
      mn[i * 8 + s] = static_cast<int>(rng() % 64);
    }
    PackScalesK4(&sc[i * 8], &mn[i * 8], &b[static_cast<size_t>(i * 144 + 4)]);
  }
  const std::vector<float> y = Decode(GgmlType::kQ4_K, b, blocks * 256);
  for (int e = 0; e < blocks * 256; ++e) {
    const int i = e / 256, k = e % 256, s = k / 32;
    const uint8_t* blk = &b[static_cast<size_t>(i * 144)];
    const float d = GetHalf(blk) * static_cast<float>(sc[i * 8 + s]);
    const float m = GetHalf(blk + 2) * static_cast<float>(mn[i * 8 + s]);
    ASSERT_EQ(y[e], d * static_cast<float>(K4LowBits(blk + 16, k)) - m) << "element " << e;
  }
}

// Q5_K: the fifth bit of element e (sub-block s) is bit s of qh[e % 32].
TEST(GgufDequantTest, Q5_KLiteralAndFormula) {
  std::vector<uint8_t> lit(176, 0);
  PutHalf(&lit[0], 0.5f);
  PutHalf(&lit[2], 2.0f);
  const int lsc[8] = {4, 0, 0, 0, 0, 0, 0, 20};
  const int lmn[8] = {1, 0, 0, 0, 0, 0, 0, 3};
  PackScalesK4(lsc, lmn, &lit[4]);
  lit[16 + 3] = 0x80;       // qh[3] bit 7: fifth bit of element 7*32 + 3 = 227
  lit[48 + 3] = 0x02;       // element 3: 2 -> 0.5*4*2 - 2*1 = 2
  lit[48 + 96 + 3] = 0x50;  // element 227: 5 | 16 = 21 -> 0.5*20*21 - 2*3 = 204
  const std::vector<float> ly = Decode(GgmlType::kQ5_K, lit, 256);
  EXPECT_EQ(ly[3], 2.0f);
  EXPECT_EQ(ly[227], 204.0f);
  EXPECT_EQ(ly[0], -2.0f);

  std::mt19937 rng(7);
  const int blocks = 3;
  std::vector<uint8_t> b = RandomBlocks(GgmlType::kQ5_K, blocks, rng, {0, 2});
  std::vector<int> sc(8 * blocks), mn(8 * blocks);
  for (int i = 0; i < blocks; ++i) {
    for (int s = 0; s < 8; ++s) {
      sc[i * 8 + s] = static_cast<int>(rng() % 64);
      mn[i * 8 + s] = static_cast<int>(rng() % 64);
    }
    PackScalesK4(&sc[i * 8], &mn[i * 8], &b[static_cast<size_t>(i * 176 + 4)]);
  }
  const std::vector<float> y = Decode(GgmlType::kQ5_K, b, blocks * 256);
  for (int e = 0; e < blocks * 256; ++e) {
    const int i = e / 256, k = e % 256, s = k / 32;
    const uint8_t* blk = &b[static_cast<size_t>(i * 176)];
    const int q = K4LowBits(blk + 48, k) + (((blk[16 + k % 32] >> s) & 1) << 4);
    const float d = GetHalf(blk) * static_cast<float>(sc[i * 8 + s]);
    const float m = GetHalf(blk + 2) * static_cast<float>(mn[i * 8 + s]);
    ASSERT_EQ(y[e], d * static_cast<float>(q) - m) << "element " << e;
  }
}

// Q6_K: { uint8 ql[128]; uint8 qh[64]; int8 scales[16]; half d }. Element e: half n = e/128,
// r = e%128, quarter t = r/32, l = r%32; low 4 bits from ql[64n + 32(t&1) + l] (low nibble for
// t < 2, high for t >= 2), high 2 bits from qh[32n + l] >> 2t, scale scales[8n + 2t + l/16];
// x = d * scale * (q - 32).
float Q6Expected(const uint8_t* blk, int e) {
  const int n = e / 128, r = e % 128, t = r / 32, l = r % 32;
  const uint8_t low_byte = blk[64 * n + 32 * (t & 1) + l];
  const int low = t < 2 ? (low_byte & 0xF) : (low_byte >> 4);
  const int high = (blk[128 + 32 * n + l] >> (2 * t)) & 3;
  const int scale = static_cast<int8_t>(blk[192 + 8 * n + 2 * t + l / 16]);
  return GetHalf(blk + 208) * static_cast<float>(scale) *
         static_cast<float>((low | high << 4) - 32);
}

TEST(GgufDequantTest, Q6_KLiteral) {
  std::vector<uint8_t> b(210, 0);
  PutHalf(&b[208], 0.5f);
  b[192 + 0] = 3;
  b[192 + 2] = static_cast<uint8_t>(-2);
  b[192 + 4] = 1;
  b[0] = 0xF5;        // element 0 low 5; element 64 low 15
  b[128] = 0b110010;  // element 0 high 2, element 32 high 0, element 64 high 3
  const std::vector<float> y = Decode(GgmlType::kQ6_K, b, 256);
  EXPECT_EQ(y[0], 7.5f);    // 0.5 * 3 * (5 + 32 - 32)
  EXPECT_EQ(y[32], 32.0f);  // 0.5 * -2 * (0 - 32)
  EXPECT_EQ(y[64], 15.5f);  // 0.5 * 1 * (63 - 32)
  EXPECT_EQ(y[96], 0.0f);   // scale 6 is 0
}

TEST(GgufDequantTest, Q6_KFormula) {
  std::mt19937 rng(8);
  const int blocks = 3;
  const std::vector<uint8_t> b = RandomBlocks(GgmlType::kQ6_K, blocks, rng, {208});
  const std::vector<float> y = Decode(GgmlType::kQ6_K, b, blocks * 256);
  for (int e = 0; e < blocks * 256; ++e) {
    ASSERT_EQ(y[e], Q6Expected(&b[static_cast<size_t>(e / 256 * 210)], e % 256)) << "element " << e;
  }
}

TEST(GgufDequantTest, SizeMismatchAndUnsupportedTypesAreErrors) {
  std::vector<uint8_t> bytes(18, 0);
  std::vector<float> out(32);
  EXPECT_TRUE(Dequantize(T(GgmlType::kQ4_0), bytes, out).ok());
  std::vector<float> wrong(16);
  EXPECT_EQ(Dequantize(T(GgmlType::kQ4_0), bytes, wrong).code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<uint8_t> short_bytes(17, 0);
  EXPECT_EQ(Dequantize(T(GgmlType::kQ4_0), short_bytes, out).code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<uint8_t> q2k(84, 0);
  std::vector<float> out256(256);
  const absl::Status s = Dequantize(T(GgmlType::kQ2_K), q2k, out256);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(std::string(s.message()).find("Q2_K"), std::string::npos) << s;
  EXPECT_EQ(Dequantize(77, bytes, out).code(), absl::StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace engine::model::gguf
