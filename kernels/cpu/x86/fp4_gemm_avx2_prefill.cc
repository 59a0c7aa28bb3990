// The AVX2 W4A4 prefill kernel (m >= kAvx2PrefillMinRows on CPUs without VNNI).
//
// Without VNNI every int8 product costs a vpmaddubsw (pairs to int16) and a vpaddw (the pair
// sums chained in int16, widened once per Int16PairChainGroups groups); that pair of
// instructions is the int8 peak kernels/cpu/int8_peak.cc measures. On Zen 3 the loop is bound by
// the number of instructions, not by the multiplier: the former prefill kernel (intrinsics,
// nibbles decoded in the loop, two 4-byte activation broadcasts per row and group) issued 53
// instructions per 12 maddubs against the peak loop's 24, and ran at 0.44-0.56 of the peak.
//
// Here the inner loop has 2.9 instructions per maddubs (peak: 2.2):
// - weights unpacked to int8 once per tile into the thread's panel (UnpackTile), so the loop
//   only loads them: 2 loads per k-group for 6 rows;
// - one 8-byte activation broadcast (vpbroadcastq) per row and group feeds two maddubs, because
//   the panel orders each row's two k-quads side by side (A and B below);
// - 6 rows x 2 sums = 12 accumulators + 2 weight vectors + broadcast + product = 16 ymm, kept
//   in registers by writing the loop in assembly: GCC spilled the sums of the same loop in
//   intrinsics to the stack (and inserted register moves).
// An asm microbenchmark of this loop, data in L1, ran at 0.80-0.95 of the peak loop's rate; the
// whole GEMM (fp4_gemm_bench, m = 512, TinyLlama shapes, one thread) at 0.65-0.76 of the peak.
// Tried and slower (0.56-0.67): k outermost, one chain of the panel kept in L1 while all row
// blocks pass, with the int32 sums of all rows in memory.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/x86/fp4_gemm_epilogue_avx2.h"
#include "kernels/cpu/x86/fp4_gemm_kernels.h"

namespace engine::kernels::fp4_gemm_internal {
namespace {

#define FP4LM_PREFILL_TARGET __attribute__((target("avx2")))

constexpr int kRows = static_cast<int>(kAvx2PrefillRows);

// Panel layout: per half h (weight rows 8h .. 8h + 7 of the tile) and k-group g, 64 bytes at
// panel + (h * groups + g) * 64: vector A = rows (0, 1 | 4, 5) of the half, vector B = rows
// (2, 3 | 6, 7), each row as its 4 + 4 int8 weights of k-quads t % 8 < 4 and t % 8 >= 4. A
// broadcast 8-byte activation group (quad 0, quad 1, quad 0, ...) meets both quads of every
// row in one maddubs, and after widening, _mm256_hadd_epi32(A, B) puts rows 0 .. 7 in order.
FP4LM_PREFILL_TARGET void UnpackTile(const TileTask& t, int64_t tile, uint8_t* panel) {
  const __m256i lut =
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t.w_lut)));
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const uint8_t* w = t.blocks + tile * t.groups * kBlockBytes;
  for (int h = 0; h < 2; ++h) {
    uint8_t* out = panel + h * t.groups * 64;
    for (int64_t g = 0; g < t.groups; ++g) {
      // Lane j (int32) of the half holds row j: quad 0 in the low nibbles, quad 1 in the high.
      const __m256i v =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + g * kBlockBytes + h * 32));
      const __m256i q0 = _mm256_shuffle_epi8(lut, _mm256_and_si256(v, low4));
      const __m256i q1 = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), low4));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + g * 64), _mm256_unpacklo_epi32(q0, q1));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + g * 64 + 32),
                          _mm256_unpackhi_epi32(q0, q1));
    }
  }
}

// The inner loop's registers: ymm0 and ymm1 the group's weight vectors A and B, ymm2 the
// activation broadcast, ymm3 a product; row r's int16 sums against A and B in ymm(4 + 2r) and
// ymm(5 + 2r). Each macro takes (row, sum A, sum B). (One instruction per line, so unformatted.)
// clang-format off
#define FP4LM_ZERO_ROW(r, sa, sb)                    \
  "vpxor %%xmm" #sa ", %%xmm" #sa ", %%xmm" #sa "\n\t" \
  "vpxor %%xmm" #sb ", %%xmm" #sb ", %%xmm" #sb "\n\t"
#define FP4LM_DOT_ROW(r, sa, sb)                  \
  "vpbroadcastq " #r "*8(%[a]), %%ymm2\n\t"       \
  "vpmaddubsw %%ymm0, %%ymm2, %%ymm3\n\t"         \
  "vpmaddubsw %%ymm1, %%ymm2, %%ymm2\n\t"         \
  "vpaddw %%ymm3, %%ymm" #sa ", %%ymm" #sa "\n\t" \
  "vpaddw %%ymm2, %%ymm" #sb ", %%ymm" #sb "\n\t"
// Widens the int16 sums (ymm0 = int16 ones) and adds them to acc[r][A or B][0..7].
#define FP4LM_WIDEN_ROW(r, sa, sb)                                  \
  "vpmaddwd %%ymm0, %%ymm" #sa ", %%ymm" #sa "\n\t"                 \
  "vpaddd 64*" #r "(%[acc]), %%ymm" #sa ", %%ymm" #sa "\n\t"        \
  "vmovdqu %%ymm" #sa ", 64*" #r "(%[acc])\n\t"                     \
  "vpmaddwd %%ymm0, %%ymm" #sb ", %%ymm" #sb "\n\t"                 \
  "vpaddd 64*" #r "+32(%[acc]), %%ymm" #sb ", %%ymm" #sb "\n\t"     \
  "vmovdqu %%ymm" #sb ", 64*" #r "+32(%[acc])\n\t"

#define FP4LM_ROWS_1(X) X(0, 4, 5)
#define FP4LM_ROWS_2(X) FP4LM_ROWS_1(X) X(1, 6, 7)
#define FP4LM_ROWS_3(X) FP4LM_ROWS_2(X) X(2, 8, 9)
#define FP4LM_ROWS_4(X) FP4LM_ROWS_3(X) X(3, 10, 11)
#define FP4LM_ROWS_5(X) FP4LM_ROWS_4(X) X(4, 12, 13)
#define FP4LM_ROWS_6(X) FP4LM_ROWS_5(X) X(5, 14, 15)

// One chain of `groups` (>= 1) k-groups for MR rows: a at the chain's first group in the
// block's interleaved layout (MR * 8 bytes per group), w at its first group of one panel half.
#define FP4LM_DOT_CHAIN(ROWS, MR)                                                           \
  asm volatile(ROWS(FP4LM_ZERO_ROW)                                                         \
               "1:\n\t"                                                                     \
               "vmovdqu (%[w]), %%ymm0\n\t"                                                 \
               "vmovdqu 32(%[w]), %%ymm1\n\t"                                               \
               ROWS(FP4LM_DOT_ROW)                                                          \
               "add %[a_step], %[a]\n\t"                                                    \
               "add $64, %[w]\n\t"                                                          \
               "dec %[groups]\n\t"                                                          \
               "jnz 1b\n\t"                                                                 \
               "vpcmpeqw %%ymm0, %%ymm0, %%ymm0\n\t"                                        \
               "vpsrlw $15, %%ymm0, %%ymm0\n\t"                                             \
               ROWS(FP4LM_WIDEN_ROW)                                                        \
               : [a] "+r"(a), [w] "+r"(w), [groups] "+r"(groups)                            \
               : [acc] "r"(acc), [a_step] "i"((MR) * 8)                                     \
               : "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6",    \
                 "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15")

// clang-format on

// acc[r][v][j] += the chain's sums of row r against panel vector v (A, B), lane j.
template <int MR>
FP4LM_PREFILL_TARGET void DotChain(const uint8_t* a, const uint8_t* w, int64_t groups,
                                   int32_t* acc) {
  static_assert(MR >= 1 && MR <= kRows);
  if constexpr (MR == 1) {
    FP4LM_DOT_CHAIN(FP4LM_ROWS_1, 1);
  } else if constexpr (MR == 2) {
    FP4LM_DOT_CHAIN(FP4LM_ROWS_2, 2);
  } else if constexpr (MR == 3) {
    FP4LM_DOT_CHAIN(FP4LM_ROWS_3, 3);
  } else if constexpr (MR == 4) {
    FP4LM_DOT_CHAIN(FP4LM_ROWS_4, 4);
  } else if constexpr (MR == 5) {
    FP4LM_DOT_CHAIN(FP4LM_ROWS_5, 5);
  } else {
    FP4LM_DOT_CHAIN(FP4LM_ROWS_6, 6);
  }
}

#undef FP4LM_DOT_CHAIN
#undef FP4LM_ROWS_6
#undef FP4LM_ROWS_5
#undef FP4LM_ROWS_4
#undef FP4LM_ROWS_3
#undef FP4LM_ROWS_2
#undef FP4LM_ROWS_1
#undef FP4LM_WIDEN_ROW
#undef FP4LM_DOT_ROW
#undef FP4LM_ZERO_ROW

using DotChainFn = void (*)(const uint8_t*, const uint8_t*, int64_t, int32_t*);
constexpr DotChainFn kDotChains[kRows + 1] = {nullptr,     DotChain<1>, DotChain<2>, DotChain<3>,
                                              DotChain<4>, DotChain<5>, DotChain<6>};

}  // namespace

FP4LM_PREFILL_TARGET void RunPrefillTilesAvx2(const TileTask& t) {
  const int64_t chain = t.int16_pair_chain_groups;
  for (int64_t tile = t.tile_begin; tile < t.tile_end; ++tile) {
    UnpackTile(t, tile, t.panel);
    for (int64_t row0 = 0; row0 < t.m; row0 += kRows) {
      const auto rows = static_cast<int>(std::min<int64_t>(kRows, t.m - row0));
      const uint8_t* a = t.a + row0 * t.a_stride;
      // Both halves of the tile in turn: the block's activations (rows x k_pad bytes) are
      // still in L1 or L2 for the second.
      for (int h = 0; h < 2; ++h) {
        // Zeroed by vector stores: `= {}` became a rep stosq, 28% of this function's own time.
        alignas(32) int32_t acc[kRows][2][8];
        for (int r = 0; r < rows; ++r) {
          for (int v = 0; v < 2; ++v) {
            _mm256_store_si256(reinterpret_cast<__m256i*>(acc[r][v]), _mm256_setzero_si256());
          }
        }
        const uint8_t* w = t.panel + h * t.groups * 64;
        for (int64_t g0 = 0; g0 < t.groups; g0 += chain) {
          kDotChains[rows](a + g0 * rows * kGroupK, w + g0 * 64, std::min(chain, t.groups - g0),
                           &acc[0][0][0]);
        }
        for (int r = 0; r < rows; ++r) {
          const __m256i sums =
              _mm256_hadd_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(acc[r][0])),
                                _mm256_load_si256(reinterpret_cast<const __m256i*>(acc[r][1])));
          StoreRow8(t, sums, row0 + r, tile * kTileRows + h * 8);
        }
      }
    }
  }
}

#undef FP4LM_PREFILL_TARGET

}  // namespace engine::kernels::fp4_gemm_internal
