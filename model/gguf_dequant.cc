// Block decoders transcribed from ggml-quants.c dequantize_row_*; the arithmetic (int to float,
// then the same multiplications and additions in the same order) is kept so results match
// ggml's scalar path bit for bit. Blocks are read byte-wise: GGUF data has no alignment
// guarantee beyond the block's own packing.
#include "model/gguf_dequant.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "kernels/core/half.h"

namespace engine::model::gguf {
namespace {

uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
float LoadHalf(const uint8_t* p) { return F16ToF32(LoadU16(p)); }

// block_q4_0 { half d; uint8 qs[16]; }: x = (nibble - 8) * d; low nibbles are elements 0..15,
// high nibbles 16..31.
void DequantQ4_0(const uint8_t* b, float* y) {
  const float d = LoadHalf(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    const int x0 = (qs[j] & 0x0F) - 8;
    const int x1 = (qs[j] >> 4) - 8;
    y[j] = x0 * d;
    y[j + 16] = x1 * d;
  }
}

// block_q4_1 { half d; half m; uint8 qs[16]; }: x = nibble * d + m.
void DequantQ4_1(const uint8_t* b, float* y) {
  const float d = LoadHalf(b);
  const float m = LoadHalf(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    const int x0 = qs[j] & 0x0F;
    const int x1 = qs[j] >> 4;
    y[j] = x0 * d + m;
    y[j + 16] = x1 * d + m;
  }
}

// block_q5_0 { half d; uint8 qh[4]; uint8 qs[16]; }: bit j of qh (little-endian u32) is the
// fifth bit of element j; x = (q5 - 16) * d.
void DequantQ5_0(const uint8_t* b, float* y) {
  const float d = LoadHalf(b);
  uint32_t qh;
  std::memcpy(&qh, b + 2, 4);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < 16; ++j) {
    const uint8_t xh_0 = ((qh >> (j + 0)) << 4) & 0x10;
    const uint8_t xh_1 = ((qh >> (j + 12))) & 0x10;
    const int32_t x0 = ((qs[j] & 0x0F) | xh_0) - 16;
    const int32_t x1 = ((qs[j] >> 4) | xh_1) - 16;
    y[j] = x0 * d;
    y[j + 16] = x1 * d;
  }
}

// block_q5_1 { half d; half m; uint8 qh[4]; uint8 qs[16]; }: x = q5 * d + m.
void DequantQ5_1(const uint8_t* b, float* y) {
  const float d = LoadHalf(b);
  const float m = LoadHalf(b + 2);
  uint32_t qh;
  std::memcpy(&qh, b + 4, 4);
  const uint8_t* qs = b + 8;
  for (int j = 0; j < 16; ++j) {
    const uint8_t xh_0 = ((qh >> (j + 0)) << 4) & 0x10;
    const uint8_t xh_1 = ((qh >> (j + 12))) & 0x10;
    const int x0 = (qs[j] & 0x0F) | xh_0;
    const int x1 = (qs[j] >> 4) | xh_1;
    y[j] = x0 * d + m;
    y[j + 16] = x1 * d + m;
  }
}

// block_q8_0 { half d; int8 qs[32]; }: x = q * d.
void DequantQ8_0(const uint8_t* b, float* y) {
  const float d = LoadHalf(b);
  const int8_t* qs = reinterpret_cast<const int8_t*>(b + 2);
  for (int j = 0; j < 32; ++j) y[j] = qs[j] * d;
}

// The 6-bit scale and min of sub-block j of a Q4_K/Q5_K super-block (12 packed bytes).
void GetScaleMinK4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
  }
}

// block_q4_K { half d; half dmin; uint8 scales[12]; uint8 qs[128]; }: 8 sub-blocks of 32,
// x = d * sc * q - dmin * m. Each 32 bytes of qs hold two sub-blocks (low nibbles, then high).
void DequantQ4_K(const uint8_t* b, float* y) {
  const float d = LoadHalf(b);
  const float min = LoadHalf(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* q = b + 16;
  int is = 0;
  uint8_t sc, m;
  for (int j = 0; j < kQK_K; j += 64) {
    GetScaleMinK4(is + 0, scales, &sc, &m);
    const float d1 = d * sc;
    const float m1 = min * m;
    GetScaleMinK4(is + 1, scales, &sc, &m);
    const float d2 = d * sc;
    const float m2 = min * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
    q += 32;
    is += 2;
  }
}

// block_q5_K { half d; half dmin; uint8 scales[12]; uint8 qh[32]; uint8 qs[128]; }: as Q4_K
// with a fifth bit from qh (bit 2c of qh[l] for the low sub-block of chunk c, 2c+1 for high).
void DequantQ5_K(const uint8_t* b, float* y) {
  const float d = LoadHalf(b);
  const float min = LoadHalf(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* ql = b + 48;
  int is = 0;
  uint8_t sc, m;
  uint8_t u1 = 1, u2 = 2;
  for (int j = 0; j < kQK_K; j += 64) {
    GetScaleMinK4(is + 0, scales, &sc, &m);
    const float d1 = d * sc;
    const float m1 = min * m;
    GetScaleMinK4(is + 1, scales, &sc, &m);
    const float d2 = d * sc;
    const float m2 = min * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    ql += 32;
    is += 2;
    u1 <<= 2;
    u2 <<= 2;
  }
}

// block_q6_K { uint8 ql[128]; uint8 qh[64]; int8 scales[16]; half d; }: 16 sub-blocks of 16,
// x = d * scale * (q6 - 32).
void DequantQ6_K(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = LoadHalf(b + 208);
  for (int n = 0; n < kQK_K; n += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int8_t q1 = static_cast<int8_t>((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int8_t q2 = static_cast<int8_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int8_t q3 = static_cast<int8_t>((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int8_t q4 = static_cast<int8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l + 0] = d * sc[is + 0] * q1;
      y[l + 32] = d * sc[is + 2] * q2;
      y[l + 64] = d * sc[is + 4] * q3;
      y[l + 96] = d * sc[is + 6] * q4;
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

using BlockFn = void (*)(const uint8_t* block, float* out);

BlockFn BlockDecoder(uint32_t type) {
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::kQ4_0:
      return DequantQ4_0;
    case GgmlType::kQ4_1:
      return DequantQ4_1;
    case GgmlType::kQ5_0:
      return DequantQ5_0;
    case GgmlType::kQ5_1:
      return DequantQ5_1;
    case GgmlType::kQ8_0:
      return DequantQ8_0;
    case GgmlType::kQ4_K:
      return DequantQ4_K;
    case GgmlType::kQ5_K:
      return DequantQ5_K;
    case GgmlType::kQ6_K:
      return DequantQ6_K;
    default:
      return nullptr;
  }
}

bool IsPlainFloat(uint32_t type) {
  const auto t = static_cast<GgmlType>(type);
  return t == GgmlType::kF32 || t == GgmlType::kF16 || t == GgmlType::kBF16;
}

}  // namespace

bool CanDequantize(uint32_t type) { return IsPlainFloat(type) || BlockDecoder(type) != nullptr; }

absl::Status Dequantize(uint32_t type, std::span<const uint8_t> src, std::span<float> dst) {
  const GgmlTypeTraits traits = GgmlTypeInfo(type);
  if (!CanDequantize(type)) {
    return absl::UnimplementedError(absl::StrCat("no FP32 decoder for ggml type ",
                                                 traits.name != nullptr ? traits.name : "unknown",
                                                 " (type ", type, ")"));
  }
  const uint64_t n = dst.size();
  if (n % static_cast<uint64_t>(traits.block_size) != 0 ||
      n / traits.block_size * traits.type_size != src.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        traits.name, ": ", n, " elements need ", n / traits.block_size * traits.type_size,
        " bytes in whole blocks of ", traits.block_size, ", got ", src.size(), " bytes"));
  }
  const uint8_t* s = src.data();
  float* y = dst.data();
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::kF32:
      if (n > 0) std::memcpy(y, s, n * sizeof(float));
      return absl::OkStatus();
    case GgmlType::kF16:
      for (uint64_t i = 0; i < n; ++i) y[i] = F16ToF32(LoadU16(s + 2 * i));
      return absl::OkStatus();
    case GgmlType::kBF16:
      for (uint64_t i = 0; i < n; ++i) y[i] = Bf16ToF32(LoadU16(s + 2 * i));
      return absl::OkStatus();
    default:
      break;
  }
  const BlockFn decode = BlockDecoder(type);
  const uint64_t blocks = n / traits.block_size;
  for (uint64_t i = 0; i < blocks; ++i) {
    decode(s + i * traits.type_size, y + i * traits.block_size);
  }
  return absl::OkStatus();
}

}  // namespace engine::model::gguf
