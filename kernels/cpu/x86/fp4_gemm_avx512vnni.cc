// AVX-512 VNNI kernels of the W4A4 GEMM (kernels/cpu/fp4_gemm.h) and of activation
// quantization. Compiled with target attributes (not per-file -m flags) so that no inline
// function shared with other translation units is emitted with AVX-512 instructions; the
// driver calls these only when CPUID reports avx512f + avx512bw + avx512vnni.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/x86/fp4_gemm_epilogue_avx512.h"
#include "kernels/cpu/x86/fp4_gemm_kernels.h"

// GCC 12's AVX-512 headers pass _mm512_undefined_*() as the pass-through operand of unmasked
// intrinsics, which -W(maybe-)uninitialized reports once inlined (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#define FP4LM_AVX512VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))

namespace engine::kernels::fp4_gemm_internal {
namespace {

// Register blocking: 3 activation rows x 4 tiles (64 weight rows) = 12 accumulators, plus 8
// unpacked weight registers, 2 broadcasts, the LUT and the nibble mask: 24 of the 32 zmm.
// Unpacking in registers costs two pshufb (port 5) per 128 weights while vpdpbusd (port 0) does
// the work, so the weights stay 4-bit everywhere: decode streams half the bytes of int8, and
// prefill measured as fast as with weights pre-unpacked into an int8 panel (~97% of the
// vpdpbusd peak on Sapphire Rapids, with 4 x 4). Why 3 rows and not 4: with 16 accumulators
// GCC 12 copies accumulators between registers and stores some to the stack in every k-group;
// on Zen 4 that held m = 512 to 0.77-0.83 of the int8 peak, against 0.87-0.94 with 3 x 4
// (fp4_gemm_bench, TinyLlama shapes, 1 thread; 4 x 3 and 6 x 2 read the same as 3 x 4, while
// 2 x 4, 3 x 5 and 3 x 6 were slower). Four tiles stay for decode's four DRAM streams.
constexpr int kRowsPerCall = 3;
constexpr int kTilesPerCall = 4;
// Decode (one activation row) streams four tiles from DRAM at once: with the hardware
// prefetcher alone the kernel read ~66% of the machine's read bandwidth on a 512 MiB weight;
// software prefetch 32 blocks (2 KiB) ahead in each stream brought it to ~80% (fp4_gemm_bench,
// m=1 n=65536 k=16384, 2 threads, Sapphire Rapids). The prefetch goes to L2 (T1), not L1: on
// Zen 4 prefetcht0 held DRAM-sized GEMVs to 25.8 GB/s against 32.5 with prefetcht1 and 29.9
// with none (BM_Fp4GemvCold, median of 5 interleaved runs, 2 threads), and the distance
// mattered little (16-128 blocks: 30.8-32.5). Prefill re-reads each tile from L2 and
// needs none. A stream that runs past the end of its tile prefetches the tile NB further on
// (its successor), not tile b+1, which another stream is already reading; a prefetch past the
// last block only touches a cache line and cannot fault.
constexpr int64_t kPrefetchGroups = 32;

FP4LM_AVX512VNNI inline __m512i BroadcastBytes4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// MR activation rows x NB tiles over all of k. One 64-byte load and two pshufb (code -> Int)
// give 16 rows x 8 k in the VNNI layout: `lo` holds k = 8g .. 8g+3, `hi` k = 8g+4 .. 8g+7.
template <int MR, int NB>
FP4LM_AVX512VNNI void Kernel(const TileTask& t, int64_t row0, int64_t tile0) {
  const __m512i lut =
      _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t.w_lut)));
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const int64_t tile_stride = t.groups * kBlockBytes;
  const uint8_t* w = t.blocks + tile0 * tile_stride;
  const uint8_t* a = t.a + row0 * t.a_stride;
  __m512i acc[MR][NB];
  for (int r = 0; r < MR; ++r) {
    for (int b = 0; b < NB; ++b) acc[r][b] = _mm512_setzero_si512();
  }
  for (int64_t g = 0; g < t.groups; ++g) {
    __m512i lo[NB], hi[NB];
    for (int b = 0; b < NB; ++b) {
      if constexpr (MR == 1) {
        int64_t ahead_group = g + kPrefetchGroups;
        if (ahead_group >= t.groups) ahead_group += (NB - 1) * t.groups;
        const uint8_t* ahead = w + b * tile_stride + ahead_group * kBlockBytes;
        _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T1);
      }
      const __m512i v = _mm512_loadu_si512(w + b * tile_stride + g * kBlockBytes);
      lo[b] = _mm512_shuffle_epi8(lut, _mm512_and_si512(v, low4));
      hi[b] = _mm512_shuffle_epi8(lut, _mm512_and_si512(_mm512_srli_epi16(v, 4), low4));
    }
    for (int r = 0; r < MR; ++r) {
      const __m512i alo = BroadcastBytes4(a + r * t.a_stride + g * kGroupK);
      const __m512i ahi = BroadcastBytes4(a + r * t.a_stride + g * kGroupK + 4);
      for (int b = 0; b < NB; ++b) {
        acc[r][b] = _mm512_dpbusd_epi32(acc[r][b], alo, lo[b]);
        acc[r][b] = _mm512_dpbusd_epi32(acc[r][b], ahi, hi[b]);
      }
    }
  }
  for (int r = 0; r < MR; ++r) {
    for (int b = 0; b < NB; ++b) StoreRow(t, acc[r][b], row0 + r, tile0 + b);
  }
}

using KernelFn = void (*)(const TileTask&, int64_t, int64_t);

template <int MR>
constexpr KernelFn kByTiles[kTilesPerCall + 1] = {nullptr, Kernel<MR, 1>, Kernel<MR, 2>,
                                                  Kernel<MR, 3>, Kernel<MR, 4>};
constexpr const KernelFn* kKernels[kRowsPerCall + 1] = {nullptr, kByTiles<1>, kByTiles<2>,
                                                        kByTiles<3>};

}  // namespace

void RunTilesAvx512Vnni(const TileTask& t) {
  // Tiles outermost: a 64-row weight block (64 * k / 2 bytes) stays in L2 while every activation
  // row passes over it; for decode (m = 1) each weight byte is read exactly once.
  for (int64_t tile0 = t.tile_begin; tile0 < t.tile_end; tile0 += kTilesPerCall) {
    const int64_t nb = std::min<int64_t>(kTilesPerCall, t.tile_end - tile0);
    for (int64_t row0 = 0; row0 < t.m; row0 += kRowsPerCall) {
      kKernels[std::min<int64_t>(kRowsPerCall, t.m - row0)][nb](t, row0, tile0);
    }
  }
}

FP4LM_AVX512VNNI void QuantizeRowAvx512(const float* x, int64_t k, const float* thresholds,
                                        float inv_scale, uint8_t* codes) {
  const __m512 inv = _mm512_set1_ps(inv_scale);
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
  const __m512i one = _mm512_set1_epi32(1);
  __m512 th[7];
  for (int i = 0; i < 7; ++i) th[i] = _mm512_set1_ps(thresholds[i]);
  int64_t j = 0;
  for (; j + 16 <= k; j += 16) {
    // The same float product as the reference, then the threshold chain as a count of passed
    // thresholds (ties go to the even code: `>` past even codes, `>=` past odd ones).
    const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + j), inv);
    const __m512i bits = _mm512_castps_si512(v);
    const __m512 a = _mm512_castsi512_ps(_mm512_and_si512(bits, abs_mask));
    __m512i mag = _mm512_setzero_si512();
    // (Two loops keep the compare predicates immediate constants for unoptimized builds.)
    for (int i = 0; i < 7; i += 2) {
      mag = _mm512_mask_add_epi32(mag, _mm512_cmp_ps_mask(a, th[i], _CMP_GT_OQ), mag, one);
    }
    for (int i = 1; i < 7; i += 2) {
      mag = _mm512_mask_add_epi32(mag, _mm512_cmp_ps_mask(a, th[i], _CMP_GE_OQ), mag, one);
    }
    const __m512i sign = _mm512_and_si512(_mm512_srli_epi32(bits, 28), _mm512_set1_epi32(0x8));
    __m512i code = _mm512_or_si512(mag, sign);
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    code = _mm512_mask_mov_epi32(code, nan, _mm512_set1_epi32(0x7));
    // Pairs (2i, 2i+1) share a 64-bit lane: low byte = code[2i] | code[2i+1] << 4.
    const __m512i packed = _mm512_or_si512(code, _mm512_srli_epi64(code, 28));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(codes + j / 2), _mm512_cvtepi64_epi8(packed));
  }
  for (; j < k; j += 2) {
    const uint8_t even = EncodeByThresholds(x[j] * inv_scale, thresholds);
    const uint8_t odd = EncodeByThresholds(x[j + 1] * inv_scale, thresholds);
    codes[j / 2] = static_cast<uint8_t>(even | (odd << 4));
  }
}

}  // namespace engine::kernels::fp4_gemm_internal
