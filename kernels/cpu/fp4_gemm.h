// The fast, exact W4A4 GEMM of the CPU backend: FP4 weights (repacked once at load) times FP4
// activations, accumulated exactly in int32 on the int8 dot-product units (AVX-512 VNNI,
// AVX-VNNI, AVX2 maddubs; scalar fallback). Implements Fp4LinearRef (kernels/ref/w4a4_ref.h)
// bit for bit, and QuantizeActivationsRef likewise (tests/kernels/fp4_gemm_test.cc).
#ifndef FP4LM_KERNELS_CPU_FP4_GEMM_H_
#define FP4LM_KERNELS_CPU_FP4_GEMM_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/core/fp4_format.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/ref/w4a4_ref.h"

namespace engine::kernels {

// Instruction-set paths of the kernels. kAuto picks the fastest one this CPU supports for the
// call's row count: kAmx (AMX-INT8 tiles, 16 activation rows per tile) from
// kAmxMinRows rows on, the best vector path below that (decode).
enum class Fp4GemmIsa : uint8_t { kAuto, kScalar, kAvx2, kAvxVnni, kAvx512Vnni, kAmx };
// "auto", "scalar", "avx2", "avxvnni", "avx512vnni", "amx"
const char* Fp4GemmIsaName(Fp4GemmIsa isa);
// The paths this CPU can run, slowest first (kScalar always; kAuto never listed).
std::vector<Fp4GemmIsa> SupportedFp4GemmIsas();
// The last entry of SupportedFp4GemmIsas(): what kAuto resolves to for prefill-sized calls.
Fp4GemmIsa BestFp4GemmIsa();
// What kAuto resolves to for a call with m activation rows.
Fp4GemmIsa Fp4GemmIsaForRows(int64_t m);
// The paths kAuto takes on this CPU: "amx+avx512vnni" (AMX from kAmxMinRows rows on, the
// vector path below), or one vector path such as "avx2".
std::string Fp4GemmPathDescription();
inline constexpr int64_t kAmxMinRows = 8;

// The largest k the kernels accept: the reference's exactness bound (kW4A4MaxK), rounded down
// to even. Activations enter the dot products biased to unsigned (Int + kIntMax <= 128), so the
// int32 partial sums (up to 128 * 64 * k) may wrap around for k >= 2^18; the wrap cancels when
// kIntMax * row_sum is subtracted (arithmetic mod 2^32) because the true sum fits in int32.
inline constexpr int64_t kFp4GemmMaxK = kW4A4MaxK - 1;

// A weight matrix repacked for the kernels, built once at load. Owns its storage; the canonical
// codes it was made from are not referenced afterwards (they may be an mmapped file).
//
// Layout: rows are grouped in tiles of 16 (n padded with zero rows). Tile t, k-group g (8
// consecutive k, k padded with zeros to a multiple of 8) is one 64-byte block; byte 4*j + b
// (row 16t + j, b = 0..3) holds the CODE of k = 8g + b in its low nibble and of k = 8g + 4 + b
// in its high nibble. One 64-byte load + two pshufb (code -> Int) gives two registers in the
// VNNI layout (each 32-bit lane = 4 consecutive k of one row): the weight stays 4-bit in memory,
// which halves what a decode step streams.
class PreparedFp4Weight {
 public:
  PreparedFp4Weight() = default;

  Fp4Kind kind() const { return kind_; }
  int64_t n() const { return n_; }
  int64_t k() const { return k_; }
  bool has_bias() const { return has_bias_; }
  int64_t num_tiles() const { return n_tiles_; }
  int64_t padded_k() const { return k_pad_; }
  // Bytes held (weights, row sums, scales).
  int64_t memory_bytes() const;

  // Read-only views of the storage, for other kernels over the same weights (W4A16,
  // kernels/cpu/w4a16_gemm.h). blocks: [num_tiles][padded_k / 8][64] in the layout above;
  // row_scales: [num_tiles * 16], 0 past n; biases: [num_tiles * 16], or null without bias.
  const uint8_t* blocks() const { return blocks_.data(); }
  const float* row_scales() const { return row_scale_.data(); }
  const float* biases() const { return has_bias_ ? bias_.data() : nullptr; }

 private:
  friend absl::StatusOr<PreparedFp4Weight> PrepareFp4Weight(const uint8_t*, const float*,
                                                            const float*, Fp4Kind, int64_t,
                                                            int64_t);
  friend struct Fp4GemmAccess;

  Fp4Kind kind_ = Fp4Kind::kE2M1;
  int64_t n_ = 0;
  int64_t k_ = 0;
  int64_t n_tiles_ = 0;  // ceil(n / 16)
  int64_t k_pad_ = 0;    // k rounded up to a multiple of 8
  bool has_bias_ = false;
  std::vector<uint8_t> blocks_;   // [n_tiles][k_pad / 8][64] (layout above)
  std::vector<int32_t> row_sum_;  // [n_tiles * 16]: sum_k Int(w[row, k]), 0 for padding rows
  std::vector<float> row_scale_;  // [n_tiles * 16], 0 for padding rows
  std::vector<float> bias_;       // [n_tiles * 16] (zeros when there is no bias)
};

// Repacks a canonical FP4 weight: codes [n, k / 2] (model/fp4_weights.h layout), row_scale [n],
// bias [n] or null. Errors: null pointers, n <= 0, k <= 0, odd k, k > kFp4GemmMaxK, invalid kind.
absl::StatusOr<PreparedFp4Weight> PrepareFp4Weight(const uint8_t* codes, const float* row_scale,
                                                   const float* bias, Fp4Kind kind, int64_t n,
                                                   int64_t k);

// Reusable per-call buffers: the unpacked activations (about m * padded_k bytes) and, for kAmx
// and the AVX2 prefill kernel, one unpacked weight panel per thread (32 or 16 * padded_k bytes
// each). Optional: pass one per session to avoid allocating in every call. Not shareable
// between concurrent calls.
struct Fp4GemmScratch {
  std::vector<uint8_t> activations;
  std::vector<std::vector<uint8_t>> panels;
};

struct Fp4GemmArgs {
  const uint8_t* a_codes = nullptr;  // [m, k / 2] packed activation codes (canonical packing)
  Fp4Kind a_kind = Fp4Kind::kE2M1;
  float a_scale = 1.0f;
  const PreparedFp4Weight* w = nullptr;
  float* y = nullptr;  // [m, w->n()]
  int64_t m = 0;
  bool accumulate = false;             // y = y_old + value (exact order: Fp4LinearRef)
  Fp4GemmIsa isa = Fp4GemmIsa::kAuto;  // forcing a path the CPU lacks is a programming error
  Fp4GemmScratch* scratch = nullptr;
};

// y = Fp4LinearRef(a, w) bit for bit (with w's row_scale and bias). Threads split the weight
// rows. Preconditions (checked): w non-null, m >= 0, a_kind valid, isa supported.
void Fp4Gemm(ThreadPool& pool, const Fp4GemmArgs& args);

// codes = QuantizeActivationsRef(x, m, k, kind, inv_scale) bit for bit, vectorized. k even.
void QuantizeActivations(const float* x, int64_t m, int64_t k, Fp4Kind kind, float inv_scale,
                         uint8_t* codes, Fp4GemmIsa isa = Fp4GemmIsa::kAuto);

}  // namespace engine::kernels

#endif  // FP4LM_KERNELS_CPU_FP4_GEMM_H_
