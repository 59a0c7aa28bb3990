// The W4A4 GEMM driver: weight repacking, ISA dispatch, activation unpacking, threading and the
// scalar path. The SIMD kernels are in kernels/cpu/x86/. Compiled with -ffp-contract=off
// (kernels/CMakeLists.txt) like the reference whose epilogue it reproduces.
#include "kernels/cpu/fp4_gemm.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/core/cpu_features.h"
#include "kernels/core/status_macros.h"
#include "kernels/cpu/x86/fp4_gemm_kernels.h"
#include "kernels/ref/w4a4_ref.h"

namespace engine::kernels {

using fp4_gemm_internal::kBlockBytes;
using fp4_gemm_internal::kGroupK;
using fp4_gemm_internal::kTileRows;
using fp4_gemm_internal::TileTask;

// Reads PreparedFp4Weight's private storage for the kernels.
struct Fp4GemmAccess {
  static TileTask WeightTask(const PreparedFp4Weight& w) {
    TileTask t;
    t.blocks = w.blocks_.data();
    t.groups = w.k_pad_ / kGroupK;
    t.w_lut = kFp4IntTable[static_cast<int>(w.kind_)];
    t.row_sum = w.row_sum_.data();
    t.row_scale = w.row_scale_.data();
    t.bias = w.has_bias_ ? w.bias_.data() : nullptr;
    t.n = w.n_;
    return t;
  }
};

namespace {

bool IsaSupported(Fp4GemmIsa isa, const CpuFeatures& f) {
  switch (isa) {
    case Fp4GemmIsa::kScalar:
      return true;
    case Fp4GemmIsa::kAvx2:
      return f.avx2;
    case Fp4GemmIsa::kAvxVnni:
      return f.avx2 && f.avxvnni;
    case Fp4GemmIsa::kAvx512Vnni:
      return f.avx512f && f.avx512bw && f.avx512vnni;
    case Fp4GemmIsa::kAmx:  // the epilogue and the weight unpacking are AVX-512
      return f.amx_int8 && f.avx512f && f.avx512bw;
    case Fp4GemmIsa::kAuto:
      return true;
  }
  return false;
}

const CpuFeatures& Features() {
  static const CpuFeatures features = DetectCpuFeatures();  // CPUID once; immutable after
  return features;
}

// The best path for m rows: kAuto resolved, or a forced path checked.
Fp4GemmIsa Resolve(Fp4GemmIsa isa, int64_t m) {
  if (isa == Fp4GemmIsa::kAuto) return Fp4GemmIsaForRows(m);
  ENGINE_CHECK(IsaSupported(isa, Features()));
  return isa;
}

// The best vector path (the last supported one that is not AMX).
Fp4GemmIsa BestVectorIsa() {
  static const Fp4GemmIsa best = [] {
    Fp4GemmIsa b = Fp4GemmIsa::kScalar;
    for (Fp4GemmIsa isa : SupportedFp4GemmIsas()) {
      if (isa != Fp4GemmIsa::kAmx) b = isa;
    }
    return b;
  }();
  return best;
}

// Scalar path over the prepared layout: unpacks one tile's rows to int8, then the reference's
// integer dot products with the biased activations (the bias is removed term by term).
void RunTilesScalar(const TileTask& t) {
  const int64_t k_pad = t.groups * kGroupK;
  std::vector<int8_t> rows(static_cast<size_t>(kTileRows * k_pad));
  for (int64_t tile = t.tile_begin; tile < t.tile_end; ++tile) {
    const uint8_t* w = t.blocks + tile * t.groups * kBlockBytes;
    for (int j = 0; j < kTileRows; ++j) {
      for (int64_t g = 0; g < t.groups; ++g) {
        for (int b = 0; b < 4; ++b) {
          const uint8_t byte = w[g * kBlockBytes + 4 * j + b];
          rows[j * k_pad + g * kGroupK + b] = t.w_lut[byte & 0xf];
          rows[j * k_pad + g * kGroupK + 4 + b] = t.w_lut[byte >> 4];
        }
      }
    }
    for (int j = 0; j < kTileRows; ++j) {
      const int64_t col = tile * kTileRows + j;
      if (col >= t.n) break;
      const int8_t* wj = rows.data() + j * k_pad;
      for (int64_t i = 0; i < t.m; ++i) {
        const uint8_t* a = t.a + i * t.a_stride;
        int32_t acc = 0;
        for (int64_t x = 0; x < k_pad; ++x) acc += (int32_t{a[x]} - t.a_bias) * wj[x];
        float* y = t.y + i * t.n + col;
        *y = W4A4Epilogue(acc, t.c, t.a_scale, t.row_scale[col],
                          t.bias != nullptr ? t.bias + col : nullptr, t.accumulate ? y : nullptr);
      }
    }
  }
}

void UnpackActivationRowScalar(const uint8_t* codes, int64_t k, int64_t k_pad, const uint8_t* lut,
                               uint8_t pad, uint8_t* out) {
  for (int64_t t = 0; t < k; t += 2) {
    out[t] = lut[codes[t / 2] & 0xf];
    out[t + 1] = lut[codes[t / 2] >> 4];
  }
  for (int64_t t = k; t < k_pad; ++t) out[t] = pad;
}

int64_t RoundUp(int64_t x, int64_t multiple) { return (x + multiple - 1) / multiple * multiple; }

// 64-byte aligned view into a byte buffer grown to hold `bytes`.
uint8_t* AlignedBuffer(std::vector<uint8_t>& buffer, int64_t bytes) {
  const size_t need = static_cast<size_t>(bytes) + 64;
  if (buffer.size() < need) buffer.resize(need);
  const auto address = reinterpret_cast<uintptr_t>(buffer.data());
  return buffer.data() + ((64 - address % 64) % 64);
}

// Row i (k_pad unpacked bytes) into the AVX2 prefill layout of m rows at a (TileTask): its
// 8-byte k-groups interleaved with those of the other rows of its block.
void ScatterToPrefillBlock(const uint8_t* row, int64_t k_pad, int64_t i, int64_t m, uint8_t* a) {
  using fp4_gemm_internal::kAvx2PrefillRows;
  const int64_t first = i / kAvx2PrefillRows * kAvx2PrefillRows;
  const int64_t rows = std::min(kAvx2PrefillRows, m - first);
  uint8_t* out = a + first * k_pad + (i - first) * kGroupK;
  for (int64_t g = 0; g < k_pad / kGroupK; ++g) {
    std::memcpy(out + g * rows * kGroupK, row + g * kGroupK, kGroupK);
  }
}

// The 4 nibbles of x (16 bits) moved to nibbles 0, 2, 4, 6 of the result, the others zero.
constexpr uint32_t SpreadNibbles(uint32_t x) {
  x = (x | (x << 8)) & 0x00ff00ffu;
  return (x | (x << 4)) & 0x0f0f0f0fu;
}
static_assert(SpreadNibbles(0x4321u) == 0x04030201u);

}  // namespace

const char* Fp4GemmIsaName(Fp4GemmIsa isa) {
  switch (isa) {
    case Fp4GemmIsa::kAuto:
      return "auto";
    case Fp4GemmIsa::kScalar:
      return "scalar";
    case Fp4GemmIsa::kAvx2:
      return "avx2";
    case Fp4GemmIsa::kAvxVnni:
      return "avxvnni";
    case Fp4GemmIsa::kAvx512Vnni:
      return "avx512vnni";
    case Fp4GemmIsa::kAmx:
      return "amx";
  }
  return "unknown";
}

std::vector<Fp4GemmIsa> SupportedFp4GemmIsas() {
  std::vector<Fp4GemmIsa> isas;
  for (Fp4GemmIsa isa : {Fp4GemmIsa::kScalar, Fp4GemmIsa::kAvx2, Fp4GemmIsa::kAvxVnni,
                         Fp4GemmIsa::kAvx512Vnni, Fp4GemmIsa::kAmx}) {
    if (IsaSupported(isa, Features())) isas.push_back(isa);
  }
  return isas;
}

Fp4GemmIsa BestFp4GemmIsa() {
  static const Fp4GemmIsa best = SupportedFp4GemmIsas().back();
  return best;
}

Fp4GemmIsa Fp4GemmIsaForRows(int64_t m) {
  return BestFp4GemmIsa() == Fp4GemmIsa::kAmx && m >= kAmxMinRows ? Fp4GemmIsa::kAmx
                                                                  : BestVectorIsa();
}

std::string Fp4GemmPathDescription() {
  if (BestFp4GemmIsa() != Fp4GemmIsa::kAmx) return Fp4GemmIsaName(BestVectorIsa());
  return absl::StrCat("amx+", Fp4GemmIsaName(BestVectorIsa()));
}

int64_t PreparedFp4Weight::memory_bytes() const {
  return static_cast<int64_t>(blocks_.size() + 4 * row_sum_.size() + 4 * row_scale_.size() +
                              4 * bias_.size());
}

absl::StatusOr<PreparedFp4Weight> PrepareFp4Weight(const uint8_t* codes, const float* row_scale,
                                                   const float* bias, Fp4Kind kind, int64_t n,
                                                   int64_t k) {
  if (codes == nullptr || row_scale == nullptr) {
    return absl::InvalidArgumentError(
        "PrepareFp4Weight: expected non-null codes and row_scale, found a null pointer");
  }
  if (!IsValidFp4Kind(kind)) {
    return absl::InvalidArgumentError(
        absl::StrCat("PrepareFp4Weight: expected an FP4 kind 0..2 (e2m1, e3m0, e1m2), found ",
                     static_cast<int>(kind)));
  }
  if (n <= 0 || k <= 0 || k % 2 != 0 || k > kFp4GemmMaxK) {
    return absl::InvalidArgumentError(
        absl::StrCat("PrepareFp4Weight: expected n > 0 and an even k in [2, ", kFp4GemmMaxK,
                     "], found n=", n, " k=", k));
  }
  PreparedFp4Weight w;
  w.kind_ = kind;
  w.n_ = n;
  w.k_ = k;
  w.n_tiles_ = (n + kTileRows - 1) / kTileRows;
  w.k_pad_ = (k + kGroupK - 1) / kGroupK * kGroupK;
  w.has_bias_ = bias != nullptr;
  const int64_t groups = w.k_pad_ / kGroupK;
  const int64_t rows = w.n_tiles_ * kTileRows;
  // Zero bytes are code 0 (+0) in every format: padding rows and columns contribute nothing.
  w.blocks_.assign(static_cast<size_t>(w.n_tiles_ * groups * kBlockBytes), 0);
  w.row_sum_.assign(static_cast<size_t>(rows), 0);
  w.row_scale_.assign(static_cast<size_t>(rows), 0.0f);
  w.bias_.assign(static_cast<size_t>(rows), 0.0f);
  std::copy(row_scale, row_scale + n, w.row_scale_.begin());
  if (bias != nullptr) std::copy(bias, bias + n, w.bias_.begin());
  // Sum of the Int of both codes in a byte, for row_sum.
  int16_t byte_sum[256];
  for (int b = 0; b < 256; ++b) {
    byte_sum[b] = static_cast<int16_t>(Fp4Int(kind, static_cast<uint8_t>(b & 0xf)) +
                                       Fp4Int(kind, static_cast<uint8_t>(b >> 4)));
  }
  const int64_t half = k / 2;
  const int64_t full_groups = k / kGroupK;
  for (int64_t row = 0; row < n; ++row) {
    const uint8_t* src = codes + row * half;
    uint8_t* tile = w.blocks_.data() + (row / kTileRows) * groups * kBlockBytes;
    const int64_t j = row % kTileRows;
    int32_t sum = 0;
    for (int64_t b = 0; b < half; ++b) sum += byte_sum[src[b]];
    // A whole group is 4 source bytes, codes t = 0..7 in nibbles 0..7; its block bytes 4j..4j+3
    // hold codes (q, q + 4) in (low, high) nibble of byte q: interleave the low and high
    // halves of the word nibble by nibble.
    for (int64_t g = 0; g < full_groups; ++g) {
      uint32_t word;
      std::memcpy(&word, src + 4 * g, 4);
      const uint32_t block = SpreadNibbles(word & 0xffffu) | (SpreadNibbles(word >> 16) << 4);
      std::memcpy(tile + g * kBlockBytes + 4 * j, &block, 4);
    }
    for (int64_t t = full_groups * kGroupK; t < k; ++t) {  // a partial last group
      const uint8_t code = E2M1At(src, t);
      const int64_t g = t / kGroupK, r = t % kGroupK;
      uint8_t& byte = tile[g * kBlockBytes + 4 * j + (r % 4)];
      byte = static_cast<uint8_t>(r < 4 ? (byte & 0xf0) | code : (byte & 0x0f) | (code << 4));
    }
    w.row_sum_[static_cast<size_t>(row)] = sum;
  }
  return w;
}

void QuantizeActivations(const float* x, int64_t m, int64_t k, Fp4Kind kind, float inv_scale,
                         uint8_t* codes, Fp4GemmIsa isa) {
  ENGINE_CHECK(IsValidFp4Kind(kind) && k % 2 == 0 && m >= 0);
  isa = Resolve(isa, m);
  const float* thresholds = fp4_gemm_internal::kEncodeThresholds[static_cast<int>(kind)];
  for (int64_t i = 0; i < m; ++i) {
    const float* xi = x + i * k;
    uint8_t* ci = codes + i * (k / 2);
    switch (isa) {
      case Fp4GemmIsa::kAvx512Vnni:
      case Fp4GemmIsa::kAmx:
        fp4_gemm_internal::QuantizeRowAvx512(xi, k, thresholds, inv_scale, ci);
        break;
      case Fp4GemmIsa::kAvx2:
      case Fp4GemmIsa::kAvxVnni:
        fp4_gemm_internal::QuantizeRowAvx2(xi, k, thresholds, inv_scale, ci);
        break;
      default:
        QuantizeActivationsRef(xi, 1, k, kind, inv_scale, ci);
        break;
    }
  }
}

void Fp4Gemm(ThreadPool& pool, const Fp4GemmArgs& args) {
  ENGINE_CHECK(args.w != nullptr && args.m >= 0 && IsValidFp4Kind(args.a_kind));
  if (args.m == 0) return;
  const Fp4GemmIsa isa = Resolve(args.isa, args.m);
  const bool amx = isa == Fp4GemmIsa::kAmx;
  const bool avx2_prefill =
      isa == Fp4GemmIsa::kAvx2 && args.m >= fp4_gemm_internal::kAvx2PrefillMinRows;
  const PreparedFp4Weight& w = *args.w;
  Fp4GemmScratch local_scratch;
  Fp4GemmScratch& scratch = args.scratch != nullptr ? *args.scratch : local_scratch;

  TileTask task = Fp4GemmAccess::WeightTask(w);
  task.m = args.m;
  // AMX reads 64-byte k slices of 16 rows (fp4_gemm_kernels.h): k padded to 64, m to 16.
  task.a_stride = amx ? RoundUp(w.padded_k(), fp4_gemm_internal::kAmxTileK) : w.padded_k();
  const int64_t a_rows = amx ? RoundUp(args.m, fp4_gemm_internal::kAmxTileRows) : args.m;
  task.a_bias = Fp4IntMax(args.a_kind);
  task.int16_chain_groups =
      fp4_gemm_internal::Int16ChainGroups(Fp4IntMax(args.a_kind), Fp4IntMax(w.kind()));
  task.int16_pair_chain_groups =
      fp4_gemm_internal::Int16PairChainGroups(Fp4IntMax(args.a_kind), Fp4IntMax(w.kind()));
  task.c = W4A4IntScaleInverse(args.a_kind, w.kind());
  task.a_scale = args.a_scale;
  task.y = args.y;
  task.accumulate = args.accumulate;

  // Activations: Int + a_bias as unsigned bytes, one padded row per token (vector paths), in
  // contiguous 16-row x 64-byte tiles (AMX) or in 6-row blocks of interleaved 8-byte groups
  // (AVX2 prefill); layouts in fp4_gemm_kernels.h.
  uint8_t* a = AlignedBuffer(scratch.activations, a_rows * task.a_stride);
  task.a = a;
  if (a_rows > args.m) {
    // AMX's last row block has rows past m; they only feed sums that are discarded, and are
    // zeroed to be defined. Their bytes interleave with the real rows', so the whole block is
    // cleared before the real rows are written.
    const int64_t last_block = (args.m / fp4_gemm_internal::kAmxTileRows) *
                               fp4_gemm_internal::kAmxTileRows * task.a_stride;
    std::memset(a + last_block, 0, static_cast<size_t>(a_rows * task.a_stride - last_block));
  }
  uint8_t lut[16];
  for (int c = 0; c < 16; ++c) {
    lut[c] = static_cast<uint8_t>(Fp4Int(args.a_kind, static_cast<uint8_t>(c)) + task.a_bias);
  }
  const auto pad = static_cast<uint8_t>(task.a_bias);
  const int64_t half = w.k() / 2;
  const bool simd_unpack = isa != Fp4GemmIsa::kScalar;
  // codes of k activations -> k_pad bytes at out (k_pad - k of them a_bias).
  auto unpack = [&](const uint8_t* codes, int64_t k, int64_t k_pad, uint8_t* out) {
    if (simd_unpack) {
      fp4_gemm_internal::UnpackActivationRowAvx2(codes, k, k_pad, lut, pad, out);
    } else {
      UnpackActivationRowScalar(codes, k, k_pad, lut, pad, out);
    }
  };
  auto unpack_rows = [&](int, int64_t begin, int64_t end) {
    using fp4_gemm_internal::kAmxTileK;
    using fp4_gemm_internal::kAmxTileRows;
    std::vector<uint8_t> row(avx2_prefill ? static_cast<size_t>(task.a_stride) : 0);
    for (int64_t i = begin; i < end; ++i) {
      const uint8_t* codes = args.a_codes + i * half;
      if (avx2_prefill) {
        unpack(codes, w.k(), task.a_stride, row.data());
        ScatterToPrefillBlock(row.data(), task.a_stride, i, args.m, a);
        continue;
      }
      if (!amx) {
        unpack(codes, w.k(), task.a_stride, a + i * task.a_stride);
        continue;
      }
      // Each 64-k slice of row i into its tile, so that a tile load reads 1 KiB in order
      // rather than 16 lines a_stride apart (measured 5% faster at m = 512).
      uint8_t* row_in_block =
          a + (i / kAmxTileRows) * kAmxTileRows * task.a_stride + (i % kAmxTileRows) * kAmxTileK;
      for (int64_t k0 = 0; k0 < task.a_stride; k0 += kAmxTileK) {
        const int64_t k_slice = std::clamp<int64_t>(w.k() - k0, 0, kAmxTileK);
        unpack(codes + std::min(k0, w.k()) / 2, k_slice, kAmxTileK,
               row_in_block + k0 * kAmxTileRows);
      }
    }
  };
  // Unpacking is O(m k) against the GEMM's O(m n k): threads only pay off for prefill.
  if (args.m >= 16) {
    pool.ParallelFor(args.m, unpack_rows);
  } else {
    unpack_rows(0, 0, args.m);
  }

  // Per-thread weight panels (unpacked int8 tiles) for the paths that read them.
  int64_t panel_bytes = 0;
  if (amx) panel_bytes = fp4_gemm_internal::AmxPanelBytes(task.a_stride);
  if (avx2_prefill) panel_bytes = fp4_gemm_internal::Avx2PrefillPanelBytes(task.groups);
  if (panel_bytes > 0 && static_cast<int>(scratch.panels.size()) < pool.num_threads()) {
    scratch.panels.resize(static_cast<size_t>(pool.num_threads()));
  }
  pool.ParallelFor(w.num_tiles(), [&](int thread, int64_t begin, int64_t end) {
    TileTask t = task;
    t.tile_begin = begin;
    t.tile_end = end;
    if (panel_bytes > 0) {
      t.panel = AlignedBuffer(scratch.panels[static_cast<size_t>(thread)], panel_bytes);
    }
    switch (isa) {
      case Fp4GemmIsa::kAmx:
        fp4_gemm_internal::RunTilesAmx(t);
        break;
      case Fp4GemmIsa::kAvx512Vnni:
        fp4_gemm_internal::RunTilesAvx512Vnni(t);
        break;
      case Fp4GemmIsa::kAvxVnni:
        fp4_gemm_internal::RunTilesAvxVnni(t);
        break;
      case Fp4GemmIsa::kAvx2:
        fp4_gemm_internal::RunTilesAvx2(t);
        break;
      default:
        RunTilesScalar(t);
        break;
    }
  });
}

}  // namespace engine::kernels
