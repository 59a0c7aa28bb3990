// W4A16 GEMM (w4a16_gemm.h) over PreparedFp4Weight's repacked blocks: run-time ISA dispatch,
// the AVX-512 kernel (vpermps table decode), the AVX2 kernel (pshufb decode to Int, then
// int -> float) and the scalar path.
#include "kernels/cpu/w4a16_gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/core/cpu_features.h"
#include "kernels/core/fp4_format.h"
#include "kernels/core/status_macros.h"
#include "kernels/cpu/x86/fp4_gemm_kernels.h"

// GCC 12's AVX-512 headers pass _mm512_undefined_*() as the pass-through operand of unmasked
// intrinsics, which -W(maybe-)uninitialized reports once they are inlined here (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#define FP4LM_W4A16_AVX512 __attribute__((target("avx512f,fma")))
#define FP4LM_W4A16_AVX2 __attribute__((target("avx2,fma")))
#define FP4LM_ALWAYS_INLINE inline __attribute__((always_inline))

namespace engine::kernels {
namespace {

// The prepared layout (fp4_gemm.h): tile t (16 rows), k-group g (8 k) is the 64-byte block at
// blocks + (t * groups + g) * 64; the 32-bit lane j is row 16t + j, and its nibble at bit
// 8 * (q % 4) + 4 * (q / 4) is the code of k = 8g + q.
using fp4_gemm_internal::kBlockBytes;
using fp4_gemm_internal::kGroupK;
using fp4_gemm_internal::kTileRows;

constexpr int NibbleShift(int q) { return 8 * (q % 4) + 4 * (q / 4); }

// Activation rows per kernel call: each decoded block feeds up to this many rows.
constexpr int kMaxMr = 8;
// A thread walks its tiles in blocks of about this many weight bytes (L2-resident) and passes
// every chunk of activation rows over one block before the next.
constexpr int64_t kBlockBudgetBytes = 256 * 1024;

// One thread's share: tiles [tile_begin, tile_end) against all m activation rows.
struct Task {
  const float* x = nullptr;        // [m, k]
  int64_t m = 0;
  int64_t k = 0;
  const uint8_t* blocks = nullptr;
  int64_t groups = 0;              // padded_k / 8
  const float* row_scale = nullptr;  // [n_tiles * 16]
  const float* bias = nullptr;       // [n_tiles * 16] or null
  float* y = nullptr;              // [m, n]
  int64_t n = 0;
  bool accumulate = false;
  int64_t tile_begin = 0;
  int64_t tile_end = 0;
  alignas(64) float lut[16] = {};  // Fp4Decode(kind, code)
  int8_t int_lut[16] = {};         // Fp4Int(kind, code) = Decode * IntScale
  float inv_int_scale = 1.0f;      // 1 / IntScale: exact, a power of two
};

// ---- AVX-512 ------------------------------------------------------------------------------------
//
// One 64-byte block = 16 rows as 16 int32 lanes. vpermps reads only the low 4 bits of each index
// lane, so (block >> NibbleShift(q)) indexes the 16-float decode table directly: 2 instructions
// decode the 16 rows of one k. acc[s][r][b]: S interleaved sums per output (for m = 1 a single
// FMA chain per tile would be latency-bound), MR activation rows, NB tiles.

FP4LM_W4A16_AVX512 inline __mmask16 ColumnMask(int64_t remaining) {
  return remaining >= 16 ? __mmask16(0xffff) : __mmask16((1u << remaining) - 1);
}

// k = 8g + q for q < nq (nq = 8 but in the last group of a k that is not a multiple of 8; the
// activations past k are never read).
template <int MR, int NB, int S>
FP4LM_W4A16_AVX512 FP4LM_ALWAYS_INLINE void GroupAvx512(__m512 lut, const uint8_t* const* w,
                                                        const float* x, int64_t k, int64_t g,
                                                        int nq, __m512 (&acc)[S][MR][NB]) {
  __m512i v[NB];
  for (int b = 0; b < NB; ++b) v[b] = _mm512_loadu_si512(w[b] + g * kBlockBytes);
#pragma GCC unroll 8
  for (int q = 0; q < kGroupK; ++q) {
    if (q >= nq) break;
    __m512 d[NB];
    for (int b = 0; b < NB; ++b) {
      const __m512i idx = q == 0 ? v[b] : _mm512_srli_epi32(v[b], NibbleShift(q));
      d[b] = _mm512_permutexvar_ps(idx, lut);
    }
    for (int r = 0; r < MR; ++r) {
      const __m512 xv = _mm512_set1_ps(x[r * k + g * kGroupK + q]);
      for (int b = 0; b < NB; ++b) acc[q % S][r][b] = _mm512_fmadd_ps(xv, d[b], acc[q % S][r][b]);
    }
  }
}

// Decode (one activation row) streams NB tiles from DRAM at once and prefetches each stream
// kPrefetchGroups blocks (2 KiB) ahead into L2, as the W4A4 decode kernel does
// (kernels/cpu/x86/fp4_gemm_avx512vnni.cc, where the distance and the hint were measured). A
// stream past the end of its tile prefetches the tile NB further on, its successor; a prefetch
// past the last block only touches a cache line and cannot fault.
constexpr int64_t kPrefetchGroups = 32;

template <int NB>
FP4LM_W4A16_AVX512 FP4LM_ALWAYS_INLINE void PrefetchAheadAvx512(const uint8_t* const* w,
                                                                int64_t g, int64_t groups) {
  int64_t ahead_group = g + kPrefetchGroups;
  if (ahead_group >= groups) ahead_group += (NB - 1) * groups;
  for (int b = 0; b < NB; ++b) {
    _mm_prefetch(reinterpret_cast<const char*>(w[b] + ahead_group * kBlockBytes), _MM_HINT_T1);
  }
}

// MR activation rows from row0 x NB tiles from tile0; tiles at or past tile_end repeat the last
// one and are not stored.
template <int MR, int NB, int S>
FP4LM_W4A16_AVX512 void KernelAvx512(const Task& t, int64_t row0, int64_t tile0,
                                     int64_t tile_end) {
  const __m512 lut = _mm512_load_ps(t.lut);
  const int64_t tile_stride = t.groups * kBlockBytes;
  const uint8_t* w[NB];
  for (int b = 0; b < NB; ++b) w[b] = t.blocks + std::min(tile0 + b, tile_end - 1) * tile_stride;
  const float* x = t.x + row0 * t.k;
  __m512 acc[S][MR][NB];
  for (int s = 0; s < S; ++s) {
    for (int r = 0; r < MR; ++r) {
      for (int b = 0; b < NB; ++b) acc[s][r][b] = _mm512_setzero_ps();
    }
  }
  const int64_t full_groups = t.k / kGroupK;
  for (int64_t g = 0; g < full_groups; ++g) {
    if constexpr (MR == 1) PrefetchAheadAvx512<NB>(w, g, t.groups);
    GroupAvx512<MR, NB, S>(lut, w, x, t.k, g, kGroupK, acc);
  }
  if (t.k % kGroupK != 0) {
    GroupAvx512<MR, NB, S>(lut, w, x, t.k, full_groups, static_cast<int>(t.k % kGroupK), acc);
  }
  // Epilogue: acc * row_scale (+ bias) (+ y_old).
  const int64_t nb = std::min<int64_t>(NB, tile_end - tile0);
  for (int b = 0; b < nb; ++b) {
    const int64_t col0 = (tile0 + b) * kTileRows;
    const __mmask16 mask = ColumnMask(t.n - col0);
    const __m512 scale = _mm512_loadu_ps(t.row_scale + col0);
    for (int r = 0; r < MR; ++r) {
      __m512 sum = acc[0][r][b];
      if constexpr (S == 2) sum = _mm512_add_ps(sum, acc[1][r][b]);
      __m512 value = _mm512_mul_ps(sum, scale);
      if (t.bias != nullptr) value = _mm512_add_ps(value, _mm512_loadu_ps(t.bias + col0));
      float* y = t.y + (row0 + r) * t.n + col0;
      if (t.accumulate) value = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, y), value);
      _mm512_mask_storeu_ps(y, mask, value);
    }
  }
}

using KernelFn = void (*)(const Task&, int64_t, int64_t, int64_t);

struct KernelChoice {
  KernelFn fn;
  int tiles;  // NB
};

// By activation rows: one row gets 4 tiles x 2 interleaved sums (8 independent FMA chains),
// 2..4 rows 4 tiles, 5..8 rows 2 tiles (at most 16 accumulators + 2 blocks + 2 decoded).
constexpr KernelChoice kAvx512Kernels[kMaxMr + 1] = {
    {nullptr, 0},
    {KernelAvx512<1, 4, 2>, 4},
    {KernelAvx512<2, 4, 1>, 4},
    {KernelAvx512<3, 4, 1>, 4},
    {KernelAvx512<4, 4, 1>, 4},
    {KernelAvx512<5, 2, 1>, 2},
    {KernelAvx512<6, 2, 1>, 2},
    {KernelAvx512<7, 2, 1>, 2},
    {KernelAvx512<8, 2, 1>, 2},
};

// ---- AVX2 ---------------------------------------------------------------------------------------
//
// 8-entry vpermps tables cannot decode a 4-bit code in one step, so: pshufb maps the 32 codes of
// a half block (8 rows x 4 k, low or high nibbles) to their signed Int (kFp4IntTable), then the
// int8 of each k is sign-extended in its int32 lane and converted. The sums are Int-scaled; the
// epilogue multiplies by 1 / IntScale (a power of two, exact) before row_scale.

template <int MR, int S>
FP4LM_W4A16_AVX2 FP4LM_ALWAYS_INLINE void GroupAvx2(__m256i lut, const uint8_t* w, const float* x,
                                                    int64_t k, int64_t g, int nq,
                                                    __m256 (&acc)[S][MR][2]) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  for (int h = 0; h < 2; ++h) {  // rows 8h .. 8h + 7
    const __m256i v =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + g * kBlockBytes + 32 * h));
    const __m256i lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(v, low4));
    const __m256i hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), low4));
#pragma GCC unroll 8
    for (int q = 0; q < kGroupK; ++q) {
      if (q >= nq) break;
      const __m256i ints = q < 4 ? lo : hi;
      const int byte = q % 4;
      const __m256i top = byte == 3 ? ints : _mm256_slli_epi32(ints, 24 - 8 * byte);
      const __m256 d = _mm256_cvtepi32_ps(_mm256_srai_epi32(top, 24));
      for (int r = 0; r < MR; ++r) {
        const __m256 xv = _mm256_broadcast_ss(x + r * k + g * kGroupK + q);
        acc[q % S][r][h] = _mm256_fmadd_ps(xv, d, acc[q % S][r][h]);
      }
    }
  }
}

template <int MR, int S>
FP4LM_W4A16_AVX2 void KernelAvx2(const Task& t, int64_t row0, int64_t tile, int64_t) {
  const __m256i lut =
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t.int_lut)));
  const uint8_t* w = t.blocks + tile * t.groups * kBlockBytes;
  const float* x = t.x + row0 * t.k;
  __m256 acc[S][MR][2];
  for (int s = 0; s < S; ++s) {
    for (int r = 0; r < MR; ++r) acc[s][r][0] = acc[s][r][1] = _mm256_setzero_ps();
  }
  const int64_t full_groups = t.k / kGroupK;
  for (int64_t g = 0; g < full_groups; ++g) GroupAvx2<MR, S>(lut, w, x, t.k, g, kGroupK, acc);
  if (t.k % kGroupK != 0) {
    GroupAvx2<MR, S>(lut, w, x, t.k, full_groups, static_cast<int>(t.k % kGroupK), acc);
  }
  const __m256 inv_int_scale = _mm256_set1_ps(t.inv_int_scale);
  for (int h = 0; h < 2; ++h) {
    const int64_t col0 = tile * kTileRows + 8 * h;
    if (col0 >= t.n) break;
    const int64_t cols = std::min<int64_t>(8, t.n - col0);
    const __m256 scale = _mm256_loadu_ps(t.row_scale + col0);
    for (int r = 0; r < MR; ++r) {
      __m256 sum = acc[0][r][h];
      if constexpr (S == 2) sum = _mm256_add_ps(sum, acc[1][r][h]);
      __m256 value = _mm256_mul_ps(_mm256_mul_ps(sum, inv_int_scale), scale);
      if (t.bias != nullptr) value = _mm256_add_ps(value, _mm256_loadu_ps(t.bias + col0));
      float* y = t.y + (row0 + r) * t.n + col0;
      if (cols == 8) {
        if (t.accumulate) value = _mm256_add_ps(_mm256_loadu_ps(y), value);
        _mm256_storeu_ps(y, value);
      } else {
        alignas(32) float tmp[8];
        _mm256_store_ps(tmp, value);
        for (int64_t c = 0; c < cols; ++c) y[c] = t.accumulate ? y[c] + tmp[c] : tmp[c];
      }
    }
  }
}

// One tile per call (2 x 8 rows); one activation row gets 2 interleaved sums.
constexpr KernelChoice kAvx2Kernels[5] = {
    {nullptr, 0},         {KernelAvx2<1, 2>, 1}, {KernelAvx2<2, 1>, 1},
    {KernelAvx2<3, 1>, 1}, {KernelAvx2<4, 1>, 1},
};
constexpr int kAvx2MaxMr = 4;  // 8 accumulators + block, 2 decoded int vectors, table, mask

// Tiles outermost in L2-sized blocks, then activation-row chunks, then tiles of the block: for
// m = 1 each weight byte is read once; for prefill a block is decoded once per chunk of rows.
void RunTiles(const Task& t, const KernelChoice* kernels, int max_mr) {
  const int64_t tile_bytes = t.groups * kBlockBytes;
  const int64_t block_tiles = std::max<int64_t>(4, kBlockBudgetBytes / tile_bytes / 4 * 4);
  for (int64_t tb = t.tile_begin; tb < t.tile_end; tb += block_tiles) {
    const int64_t te = std::min(t.tile_end, tb + block_tiles);
    for (int64_t row0 = 0; row0 < t.m; row0 += max_mr) {
      const KernelChoice kernel = kernels[std::min<int64_t>(max_mr, t.m - row0)];
      for (int64_t tile0 = tb; tile0 < te; tile0 += kernel.tiles) kernel.fn(t, row0, tile0, te);
    }
  }
}

// ---- Scalar -------------------------------------------------------------------------------------

void RunTilesScalar(const Task& t) {
  const int64_t k_pad = t.groups * kGroupK;
  std::vector<float> rows(static_cast<size_t>(kTileRows * k_pad));
  for (int64_t tile = t.tile_begin; tile < t.tile_end; ++tile) {
    const uint8_t* w = t.blocks + tile * t.groups * kBlockBytes;
    for (int j = 0; j < kTileRows; ++j) {
      for (int64_t g = 0; g < t.groups; ++g) {
        for (int q = 0; q < kGroupK; ++q) {
          const uint8_t code = (w[g * kBlockBytes + 4 * j + q % 4] >> (4 * (q / 4))) & 0xf;
          rows[j * k_pad + g * kGroupK + q] = t.lut[code];
        }
      }
    }
    for (int j = 0; j < kTileRows; ++j) {
      const int64_t col = tile * kTileRows + j;
      if (col >= t.n) break;
      const float* wj = rows.data() + j * k_pad;
      for (int64_t i = 0; i < t.m; ++i) {
        const float* xi = t.x + i * t.k;
        float acc = 0.0f;
        for (int64_t q = 0; q < t.k; ++q) acc += wj[q] * xi[q];
        float value = acc * t.row_scale[col];
        if (t.bias != nullptr) value += t.bias[col];
        float* y = t.y + i * t.n + col;
        *y = t.accumulate ? *y + value : value;
      }
    }
  }
}

// ---- Dispatch -----------------------------------------------------------------------------------

bool IsaSupported(W4A16Isa isa) {
  static const CpuFeatures f = DetectCpuFeatures();  // CPUID once; immutable after
  switch (isa) {
    case W4A16Isa::kAuto:
    case W4A16Isa::kScalar:
      return true;
    case W4A16Isa::kAvx2:
      return f.avx2 && f.fma;
    case W4A16Isa::kAvx512:
      return f.avx512f && f.fma;
  }
  return false;
}

}  // namespace

const char* W4A16IsaName(W4A16Isa isa) {
  switch (isa) {
    case W4A16Isa::kAuto:
      return "auto";
    case W4A16Isa::kScalar:
      return "scalar";
    case W4A16Isa::kAvx2:
      return "avx2";
    case W4A16Isa::kAvx512:
      return "avx512";
  }
  return "unknown";
}

std::vector<W4A16Isa> SupportedW4A16Isas() {
  std::vector<W4A16Isa> isas;
  for (W4A16Isa isa : {W4A16Isa::kScalar, W4A16Isa::kAvx2, W4A16Isa::kAvx512}) {
    if (IsaSupported(isa)) isas.push_back(isa);
  }
  return isas;
}

void W4A16Gemm(ThreadPool& pool, const W4A16GemmArgs& args) {
  ENGINE_CHECK(args.w != nullptr && args.m >= 0 && IsaSupported(args.isa));
  if (args.m == 0) return;
  ENGINE_CHECK(args.x != nullptr && args.y != nullptr);
  W4A16Isa isa = args.isa;
  if (isa == W4A16Isa::kAuto) {
    static const W4A16Isa best = SupportedW4A16Isas().back();
    isa = best;
  }
  const PreparedFp4Weight& w = *args.w;
  Task task;
  task.x = args.x;
  task.m = args.m;
  task.k = w.k();
  task.blocks = w.blocks();
  task.groups = w.padded_k() / kGroupK;
  task.row_scale = w.row_scales();
  task.bias = w.biases();
  task.y = args.y;
  task.n = w.n();
  task.accumulate = args.accumulate;
  for (int c = 0; c < 16; ++c) {
    task.lut[c] = Fp4Decode(w.kind(), static_cast<uint8_t>(c));
    task.int_lut[c] = Fp4Int(w.kind(), static_cast<uint8_t>(c));
  }
  task.inv_int_scale = 1.0f / static_cast<float>(Fp4IntScale(w.kind()));

  pool.ParallelFor(w.num_tiles(), [&](int, int64_t begin, int64_t end) {
    Task t = task;
    t.tile_begin = begin;
    t.tile_end = end;
    switch (isa) {
      case W4A16Isa::kAvx512:
        RunTiles(t, kAvx512Kernels, kMaxMr);
        break;
      case W4A16Isa::kAvx2:
        RunTiles(t, kAvx2Kernels, kAvx2MaxMr);
        break;
      default:
        RunTilesScalar(t);
        break;
    }
  });
}

}  // namespace engine::kernels
