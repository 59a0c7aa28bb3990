// Internal interface between the W4A4 GEMM driver (kernels/cpu/fp4_gemm.cc: repacking,
// dispatch, threading, scalar path) and its per-ISA x86 kernels. Not a public header: the layout
// it describes is PreparedFp4Weight's (kernels/cpu/fp4_gemm.h).
#ifndef FP4LM_KERNELS_CPU_X86_FP4_GEMM_KERNELS_H_
#define FP4LM_KERNELS_CPU_X86_FP4_GEMM_KERNELS_H_

#include <cstdint>
#include <cstring>

namespace engine::kernels::fp4_gemm_internal {

inline constexpr int kTileRows = 16;    // weight rows per tile (one zmm of int32 outputs)
inline constexpr int kGroupK = 8;       // k values per 64-byte block
inline constexpr int kBlockBytes = 64;  // one tile x one k-group

// One thread's share of a GEMM: weight tiles [tile_begin, tile_end) against all m activation
// rows, written to y[:, 16 * tile_begin ...] (clipped to n).
struct TileTask {
  // Unpacked activations: Int(a_kind, code[i, t]) + a_bias as uint8; t in [k, a_stride)
  // holds a_bias (Int 0). Vector paths: row-major, a[i * a_stride + t], a_stride == k_pad.
  // AMX: a_stride is k_pad rounded up to 64, rows to 16, and each 16-row x 64-byte tile is
  // contiguous: a[(i / 16) * 16 * a_stride + (t / 64) * 1024 + (i % 16) * 64 + t % 64].
  // AVX2 prefill (the kAvx2 path at m >= kAvx2PrefillMinRows): a_stride == k_pad, rows in
  // blocks of P = kAvx2PrefillRows (the last one shorter), each block's 8-byte k-groups
  // interleaved row by row: with b = i / P and R = min(P, m - P b) rows in the block,
  // a[P b * a_stride + (t / 8) * R * 8 + (i % P) * 8 + t % 8].
  const uint8_t* a = nullptr;
  int64_t a_stride = 0;
  int64_t m = 0;
  int32_t a_bias = 0;  // Fp4IntMax(a_kind): makes every activation byte non-negative
  // Prepared weight: tile t, group g at blocks + (t * groups + g) * 64.
  const uint8_t* blocks = nullptr;
  int64_t groups = 0;                // k_pad / 8
  const int8_t* w_lut = nullptr;     // Int of the 16 weight codes
  const int32_t* row_sum = nullptr;  // [n_tiles * 16]
  const float* row_scale = nullptr;  // [n_tiles * 16]
  const float* bias = nullptr;       // [n_tiles * 16] or null
  // Epilogue (kernels/ref/w4a4_ref.h): y = ((((float)acc * c) * a_scale) * row_scale) + bias,
  // then y_old + that when accumulating.
  float c = 1.0f;
  float a_scale = 1.0f;
  float* y = nullptr;  // [m, n]
  int64_t n = 0;
  bool accumulate = false;
  int64_t tile_begin = 0;
  int64_t tile_end = 0;
  // AVX2 only: k-groups whose maddubs pair sums one int16 lane holds exactly before it must be
  // widened to int32 (Int16ChainGroups); 0 widens after every maddubs.
  int64_t int16_chain_groups = 0;
  // AVX2 prefill only: the same for single maddubs pair sums (Int16PairChainGroups), >= 1.
  int64_t int16_pair_chain_groups = 0;
  // AMX: this thread's buffer for kAmxPanelTiles weight tiles unpacked to int8
  // (AmxPanelBytes(a_stride) bytes); AVX2 prefill: for one tile unpacked to int8
  // (Avx2PrefillPanelBytes(groups) bytes). 64-byte aligned.
  uint8_t* panel = nullptr;
};

// The AMX kernel reads activations in 16-row x 64-byte tiles: it needs a_stride a multiple of
// 64 (padded with a_bias like k_pad) and the activation buffer readable (any values) up to m
// rounded up to 16 rows; rows past m are computed and discarded.
inline constexpr int64_t kAmxTileK = 64;
inline constexpr int64_t kAmxTileRows = 16;
inline constexpr int kAmxPanelTiles = 2;
inline constexpr int64_t AmxPanelBytes(int64_t a_stride) {
  return kAmxPanelTiles * (a_stride / kAmxTileK) * kAmxTileRows * kAmxTileK;
}

// The AVX2 prefill kernel (fp4_gemm_avx2_prefill.cc) runs from kAvx2PrefillMinRows rows on,
// kAvx2PrefillRows activation rows per pass, on CPUs without VNNI.
inline constexpr int64_t kAvx2PrefillMinRows = 3;
inline constexpr int64_t kAvx2PrefillRows = 6;
inline constexpr int64_t Avx2PrefillPanelBytes(int64_t groups) {
  return groups * kTileRows * kGroupK;
}

// How many k-groups of maddubs pair sums (four products each per int16 lane: a_u8 * w_s8 with
// biased activations <= 2 * a_int_max and |w| <= w_int_max) an int16 lane can add up before any
// sum could leave [-32767, 32767]. 28 for E2M1 x E2M1; 0 for E3M0 x E3M0, whose two pair sums
// of one group alone can reach 32768.
inline constexpr int64_t Int16ChainGroups(int a_int_max, int w_int_max) {
  return 32767 / (4 * 2 * a_int_max * w_int_max);
}
static_assert(Int16ChainGroups(12, 12) == 28 && Int16ChainGroups(64, 64) == 0);

// The same when each int16 lane receives one maddubs pair sum (two products) per k-group, as in
// the AVX2 prefill kernel: 56 for E2M1 x E2M1, and at least 1 for every format pair since one
// pair sum is at most 2 * 128 * 64 = 16384.
inline constexpr int64_t Int16PairChainGroups(int a_int_max, int w_int_max) {
  return 32767 / (2 * 2 * a_int_max * w_int_max);
}
static_assert(Int16PairChainGroups(12, 12) == 56 && Int16PairChainGroups(64, 64) == 1);

void RunTilesAvx512Vnni(const TileTask& task);
void RunTilesAvx2(const TileTask& task);
void RunPrefillTilesAvx2(const TileTask& task);  // m >= kAvx2PrefillMinRows; CPUs with AVX2
void RunTilesAvxVnni(const TileTask& task);
void RunTilesAmx(const TileTask& task);

// One activation row: out[t] = lut[code t] for t < k (k even), out[t] = pad for t in [k, k_pad).
void UnpackActivationRowAvx2(const uint8_t* codes, int64_t k, int64_t k_pad, const uint8_t* lut,
                             uint8_t pad, uint8_t* out);

// The thresholds of the encoders in kernels/core/fp4_format.h (midpoints of neighbouring
// magnitudes), per kind: magnitude code = number of thresholds passed, where a value passes
// threshold i when |v| > th[i] for even i and |v| >= th[i] for odd i (a tie stays on the even
// code). Equivalent to Fp4Encode; tests/kernels/fp4_gemm_test.cc checks the vector paths.
inline constexpr float kEncodeThresholds[3][7] = {
    {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f},           // E2M1
    {0.125f, 0.375f, 0.75f, 1.5f, 3.0f, 6.0f, 12.0f},         // E3M0
    {0.125f, 0.375f, 0.625f, 0.875f, 1.125f, 1.375f, 1.625f}  // E1M2
};

// Scalar form of the vector encoders (for row tails): NaN -> 0x7, sign bit kept.
inline uint8_t EncodeByThresholds(float v, const float* th) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return 0x7;
  float a;
  const uint32_t abs_bits = bits & 0x7fffffffu;
  std::memcpy(&a, &abs_bits, 4);
  int mag = 0;
  for (int i = 0; i < 7; ++i) mag += (i % 2 == 0) ? (a > th[i]) : (a >= th[i]);
  return static_cast<uint8_t>(((bits >> 28) & 0x8u) | static_cast<uint32_t>(mag));
}

// One row of QuantizeActivations: codes of x[0..k) (k even) with the encoder thresholds of a
// kind: mag = sum over i of (i even ? |v| > th[i] : |v| >= th[i]), v = x * inv_scale.
void QuantizeRowAvx512(const float* x, int64_t k, const float* thresholds, float inv_scale,
                       uint8_t* codes);
void QuantizeRowAvx2(const float* x, int64_t k, const float* thresholds, float inv_scale,
                     uint8_t* codes);

}  // namespace engine::kernels::fp4_gemm_internal

#endif  // FP4LM_KERNELS_CPU_X86_FP4_GEMM_KERNELS_H_
