// AMX kernel of the W4A4 GEMM (kernels/cpu/fp4_gemm.h) for prefill: TDPBUSD multiplies a
// 16x64 tile of biased unsigned activation bytes by a 64x16 tile of signed weight Ints into
// 16x16 int32 sums, exactly as vpdpbusd does lane by lane (no saturation), so the result is the
// reference's bit for bit through the same epilogue. The driver calls it only when CPUID and
// the OS grant AMX-INT8 (kernels/core/cpu_features.h).
//
// The weights stay 4-bit in memory: a thread unpacks two 16-row weight tiles (all of k) into an
// int8 panel in the VNNI tile layout, which the PreparedFp4Weight blocks give directly (one
// 64-byte block + two pshufb = two tile rows), then sweeps every activation row over it. The
// panel (2 x k bytes x 16) stays in L2 while m / 32 row pairs pass.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/x86/fp4_gemm_epilogue_avx512.h"
#include "kernels/cpu/x86/fp4_gemm_kernels.h"

#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC bug 105593, as in the VNNI file
#pragma GCC diagnostic ignored "-Wuninitialized"

#define FP4LM_AMX __attribute__((target("avx512f,avx512bw,amx-tile,amx-int8")))

namespace engine::kernels::fp4_gemm_internal {
namespace {

constexpr int64_t kTileBytes = kAmxTileRows * kAmxTileK;  // 1 KiB: one tile register

// GCC's tile intrinsics are asm statements without memory operands: this fence keeps the
// compiler from moving ordinary loads and stores of the panel and the sums across them.
inline void CompilerFence() { __asm__ __volatile__("" ::: "memory"); }

// Palette 1, tiles 0-7 all 16 rows x 64 bytes: C (16x16 int32) = tmm0..3, A = tmm4..5,
// B = tmm6..7.
struct alignas(64) TileConfig {
  uint8_t palette_id = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

FP4LM_AMX void ConfigureTiles() {
  TileConfig config;
  for (int i = 0; i < 8; ++i) {
    config.colsb[i] = kAmxTileK;
    config.rows[i] = kAmxTileRows;
  }
  _tile_loadconfig(&config);
}

// Weight tile `tile` as int8 B tiles: for each 64-k slice kt, 16 rows of 64 bytes where row r
// holds, for each of the 16 weight rows j, Int(w[j, 64 kt + 4 r + b]) at byte 4 j + b. Block g
// gives rows 2 (g % 8) (its low nibbles: k = 8g .. 8g+3) and 2 (g % 8) + 1 (its high nibbles).
// Slices past the weight's k groups are zero (the activations there are a_bias: no sum).
FP4LM_AMX void UnpackWeightTile(const TileTask& t, int64_t tile, int64_t k_tiles, uint8_t* out) {
  const __m512i lut =
      _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t.w_lut)));
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const uint8_t* w = t.blocks + tile * t.groups * kBlockBytes;
  const int64_t groups_per_slice = kAmxTileK / kGroupK;  // 8
  for (int64_t g = 0; g < k_tiles * groups_per_slice; ++g) {
    __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
    if (g < t.groups) {
      const __m512i v = _mm512_loadu_si512(w + g * kBlockBytes);
      lo = _mm512_shuffle_epi8(lut, _mm512_and_si512(v, low4));
      hi = _mm512_shuffle_epi8(lut, _mm512_and_si512(_mm512_srli_epi16(v, 4), low4));
    }
    _mm512_store_si512(out + 2 * g * kAmxTileK, lo);
    _mm512_store_si512(out + (2 * g + 1) * kAmxTileK, hi);
  }
}

// MB row tiles (16 activation rows each) x NB weight tiles over all of k, then the epilogue for
// the rows below m. Tile registers are named by immediates, hence the template.
template <int MB, int NB>
FP4LM_AMX void Kernel(const TileTask& t, int64_t row0, int64_t tile0, int64_t k_tiles) {
  _tile_zero(0);
  if constexpr (NB == 2) _tile_zero(1);
  if constexpr (MB == 2) _tile_zero(2);
  if constexpr (MB == 2 && NB == 2) _tile_zero(3);
  const uint8_t* a0 = t.a + row0 * t.a_stride;
  const uint8_t* a1 = a0 + kAmxTileRows * t.a_stride;
  const uint8_t* b0 = t.panel;
  const uint8_t* b1 = t.panel + k_tiles * kTileBytes;
  for (int64_t kt = 0; kt < k_tiles; ++kt) {
    _tile_loadd(6, b0 + kt * kTileBytes, kAmxTileK);
    if constexpr (NB == 2) _tile_loadd(7, b1 + kt * kTileBytes, kAmxTileK);
    _tile_loadd(4, a0 + kt * kTileBytes, kAmxTileK);
    _tile_dpbusd(0, 4, 6);
    if constexpr (NB == 2) _tile_dpbusd(1, 4, 7);
    if constexpr (MB == 2) {
      _tile_loadd(5, a1 + kt * kTileBytes, kAmxTileK);
      _tile_dpbusd(2, 5, 6);
      if constexpr (NB == 2) _tile_dpbusd(3, 5, 7);
    }
  }
  alignas(64) int32_t sums[4][kAmxTileRows][16];
  _tile_stored(0, sums[0], 64);
  if constexpr (NB == 2) _tile_stored(1, sums[1], 64);
  if constexpr (MB == 2) _tile_stored(2, sums[2], 64);
  if constexpr (MB == 2 && NB == 2) _tile_stored(3, sums[3], 64);
  CompilerFence();
  for (int r = 0; r < MB; ++r) {
    for (int b = 0; b < NB; ++b) {
      for (int64_t i = 0; i < kAmxTileRows; ++i) {
        const int64_t row = row0 + r * kAmxTileRows + i;
        if (row >= t.m) break;
        StoreRow(t, _mm512_load_si512(sums[r * 2 + b][i]), row, tile0 + b);
      }
    }
  }
}

}  // namespace

FP4LM_AMX void RunTilesAmx(const TileTask& t) {
  const int64_t k_tiles = t.a_stride / kAmxTileK;
  ConfigureTiles();
  for (int64_t tile0 = t.tile_begin; tile0 < t.tile_end; tile0 += kAmxPanelTiles) {
    const int64_t nb = std::min<int64_t>(kAmxPanelTiles, t.tile_end - tile0);
    for (int64_t b = 0; b < nb; ++b) {
      UnpackWeightTile(t, tile0 + b, k_tiles, t.panel + b * k_tiles * kTileBytes);
    }
    CompilerFence();
    for (int64_t row0 = 0; row0 < t.m; row0 += 2 * kAmxTileRows) {
      const bool two_rows = t.m - row0 > kAmxTileRows;
      if (nb == 2) {
        two_rows ? Kernel<2, 2>(t, row0, tile0, k_tiles) : Kernel<1, 2>(t, row0, tile0, k_tiles);
      } else {
        two_rows ? Kernel<2, 1>(t, row0, tile0, k_tiles) : Kernel<1, 1>(t, row0, tile0, k_tiles);
      }
    }
    CompilerFence();
  }
  _tile_release();
}

}  // namespace engine::kernels::fp4_gemm_internal
