// The fast W4A4 GEMM and activation quantizer (kernels/cpu/fp4_gemm.h) are implementations of
// the references in kernels/ref/w4a4_ref.h: every ISA path available on this CPU must produce
// EXACTLY the reference's floats and codes (EXPECT_EQ, not NEAR).
#include "kernels/cpu/fp4_gemm.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/core/fp4.h"
#include "kernels/ref/w4a4_ref.h"
#include "tests/test_util.h"

namespace engine::kernels {
namespace {

constexpr Fp4Kind kKinds[] = {Fp4Kind::kE2M1, Fp4Kind::kE3M0, Fp4Kind::kE1M2};

std::vector<uint8_t> RandomBytes(int64_t n, std::mt19937& rng) {
  std::vector<uint8_t> v(static_cast<size_t>(n));
  for (uint8_t& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

std::vector<float> RandomFloats(int64_t n, float lo, float hi, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

// Bitwise float equality (EXPECT_EQ on floats would call -0 == +0 equal).
::testing::AssertionResult SameFloats(const std::vector<float>& expected,
                                      const std::vector<float>& actual) {
  for (size_t i = 0; i < expected.size(); ++i) {
    if (std::bit_cast<uint32_t>(expected[i]) != std::bit_cast<uint32_t>(actual[i])) {
      return ::testing::AssertionFailure()
             << "first difference at " << i << ": expected " << expected[i] << " got "
             << actual[i];
    }
  }
  return ::testing::AssertionSuccess();
}

TEST(Fp4GemmTest, SupportedIsasIncludeScalarAndBest) {
  const std::vector<Fp4GemmIsa> isas = SupportedFp4GemmIsas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), Fp4GemmIsa::kScalar);
  EXPECT_EQ(isas.back(), BestFp4GemmIsa());
  std::string names;
  for (Fp4GemmIsa isa : isas) names += std::string(Fp4GemmIsaName(isa)) + " ";
  std::printf("fp4 gemm paths on this CPU: %s\n", names.c_str());
}

struct Shape {
  int64_t m, n, k;
};

// One case: random codes and scales; the reference once, then every path, with and without
// bias and accumulate.
void CheckAllPaths(ThreadPool& pool, Fp4Kind a_kind, Fp4Kind w_kind, const Shape& s,
                   std::mt19937& rng, Fp4GemmScratch* scratch) {
  const auto a = RandomBytes(s.m * s.k / 2, rng), w = RandomBytes(s.n * s.k / 2, rng);
  const auto row_scale = RandomFloats(s.n, -0.5f, 0.5f, rng);
  const auto bias = RandomFloats(s.n, -2.0f, 2.0f, rng);
  const auto y_old = RandomFloats(s.m * s.n, -10.0f, 10.0f, rng);
  const float a_scale = std::uniform_real_distribution<float>(0.001f, 3.0f)(rng);
  for (const bool with_bias : {false, true}) {
    auto prepared = PrepareFp4Weight(w.data(), row_scale.data(),
                                     with_bias ? bias.data() : nullptr, w_kind, s.n, s.k);
    ASSERT_TRUE(prepared.ok()) << prepared.status();
    for (const bool accumulate : {false, true}) {
      std::vector<float> expected = y_old;
      Fp4LinearRef({.a_codes = a.data(), .a_kind = a_kind, .a_scale = a_scale,
                    .w_codes = w.data(), .w_kind = w_kind, .row_scale = row_scale.data(),
                    .bias = with_bias ? bias.data() : nullptr, .m = s.m, .n = s.n, .k = s.k,
                    .y = expected.data(), .accumulate = accumulate});
      for (Fp4GemmIsa isa : SupportedFp4GemmIsas()) {
        std::vector<float> y = y_old;
        Fp4Gemm(pool, {.a_codes = a.data(), .a_kind = a_kind, .a_scale = a_scale,
                       .w = &*prepared, .y = y.data(), .m = s.m, .accumulate = accumulate,
                       .isa = isa, .scratch = scratch});
        ASSERT_TRUE(SameFloats(expected, y))
            << "isa=" << Fp4GemmIsaName(isa) << " a_kind=" << int(a_kind)
            << " w_kind=" << int(w_kind) << " m=" << s.m << " n=" << s.n << " k=" << s.k
            << " bias=" << with_bias << " accumulate=" << accumulate;
      }
    }
  }
}

TEST(Fp4GemmTest, EveryPathEqualsReferenceOnAwkwardShapesAndAllFormatPairs) {
  // One thread: the pool's workers spin between calls, which would slow the reference down on
  // a small machine. Thread splitting has its own test below.
  ThreadPool pool(1);
  Fp4GemmScratch scratch;  // reused across shapes on purpose
  std::mt19937 rng(42);
  for (Fp4Kind a_kind : kKinds) {
    for (Fp4Kind w_kind : kKinds) {
      for (int64_t m : {1, 3, 17, 64}) {
        for (int64_t n : {1, 7, 33, 256}) {
          for (int64_t k : {2, 30, 62, 64, 66, 200, 576, 1536}) {
            CheckAllPaths(pool, a_kind, w_kind, {m, n, k}, rng, &scratch);
            if (HasFatalFailure()) return;
          }
        }
      }
    }
  }
}

// Prefill row counts (remainders of every register blocking of the m loop, and m = 512 as in a
// prefill chunk) with a k that is not a multiple of the 8-k weight groups.
TEST(Fp4GemmTest, PrefillRowCountsAndUnalignedKEqualReference) {
  ThreadPool pool(1);  // as above: the reference is the slow part
  Fp4GemmScratch scratch;
  std::mt19937 rng(44);
  for (Fp4Kind a_kind : kKinds) {
    for (Fp4Kind w_kind : kKinds) {
      CheckAllPaths(pool, a_kind, w_kind, {33, 40, 2050}, rng, &scratch);
      if (HasFatalFailure()) return;
    }
  }
  for (const Shape& s : {Shape{512, 70, 2050}, Shape{512, 33, 264}}) {
    CheckAllPaths(pool, Fp4Kind::kE2M1, Fp4Kind::kE2M1, s, rng, &scratch);
    if (HasFatalFailure()) return;
    CheckAllPaths(pool, Fp4Kind::kE3M0, Fp4Kind::kE1M2, s, rng, &scratch);
    if (HasFatalFailure()) return;
  }
}

// Threads split the 16-row tiles unevenly (3 threads); no scratch (allocating per call).
TEST(Fp4GemmTest, ThreadedPrefillAndDecodeSizesWithoutScratch) {
  ThreadPool pool(3);
  std::mt19937 rng(43);
  for (const Shape& s : {Shape{5, 100, 98}, Shape{6, 64, 128}, Shape{7, 80, 136},
                         Shape{13, 49, 250}, Shape{130, 70, 576}, Shape{2, 2048, 64},
                         Shape{1, 1000, 96}, Shape{64, 300, 200}}) {
    CheckAllPaths(pool, Fp4Kind::kE2M1, Fp4Kind::kE3M0, s, rng, nullptr);
    if (HasFatalFailure()) return;
  }
}

// Extreme values in every lane, for every format pair: all-max activations against all +-max
// weights is the worst case for the int16 pair sums of the AVX2 path (at m = 9 its prefill
// kernel: widened after every group for E3M0 x E3M0, after Int16PairChainGroups groups
// otherwise; k = 4096 is 512 groups, not a multiple of any chain) and for the unsigned-bias
// correction.
TEST(Fp4GemmTest, ExtremeCodesAreExact) {
  ThreadPool pool(2);
  const int64_t m = 9, n = 40, k = 4096;
  for (Fp4Kind a_kind : kKinds) {
    for (Fp4Kind w_kind : kKinds) {
      for (uint8_t a_byte : {uint8_t{0x77}, uint8_t{0xFF}, uint8_t{0x7F}}) {
        for (uint8_t w_byte : {uint8_t{0x77}, uint8_t{0xFF}, uint8_t{0xF7}}) {
          const std::vector<uint8_t> a(m * k / 2, a_byte), w(n * k / 2, w_byte);
          const std::vector<float> row_scale(n, 0.75f);
          ASSERT_OK_AND_ASSIGN(auto prepared, PrepareFp4Weight(w.data(), row_scale.data(),
                                                               nullptr, w_kind, n, k));
          std::vector<float> expected(m * n);
          Fp4LinearRef({.a_codes = a.data(), .a_kind = a_kind, .a_scale = 1.0f,
                        .w_codes = w.data(), .w_kind = w_kind, .row_scale = row_scale.data(),
                        .m = m, .n = n, .k = k, .y = expected.data()});
          for (Fp4GemmIsa isa : SupportedFp4GemmIsas()) {
            std::vector<float> y(m * n);
            Fp4Gemm(pool, {.a_codes = a.data(), .a_kind = a_kind, .a_scale = 1.0f,
                           .w = &prepared, .y = y.data(), .m = m, .isa = isa});
            EXPECT_TRUE(SameFloats(expected, y))
                << Fp4GemmIsaName(isa) << " a_kind=" << int(a_kind) << " w_kind="
                << int(w_kind) << " a=" << int{a_byte} << " w=" << int{w_byte};
          }
        }
      }
    }
  }
  // The sum is really extreme: 64 * 64 * k / 16 * 0.75 in magnitude.
  const std::vector<uint8_t> a(k / 2, 0x77), w(k / 2, 0x77);
  const float row_scale[1] = {1.0f};
  float y = 0.0f;
  ASSERT_OK_AND_ASSIGN(auto prepared, PrepareFp4Weight(w.data(), row_scale, nullptr,
                                                       Fp4Kind::kE3M0, 1, k));
  Fp4Gemm(pool, {.a_codes = a.data(), .a_kind = Fp4Kind::kE3M0, .a_scale = 1.0f, .w = &prepared,
                 .y = &y, .m = 1});
  EXPECT_EQ(y, 256.0f * k);
}

// At the largest k the biased partial sums (128 * 64 * k ~ 2^32) wrap around int32; the result
// is still exact because the true sum fits. m = 3 reaches the prefill kernels as well.
TEST(Fp4GemmTest, LargestKIsExactDespiteWrappingPartialSums) {
  ThreadPool pool(1);
  const int64_t m = 3, n = 17, k = kFp4GemmMaxK;
  ASSERT_EQ(k % 2, 0);
  // Activation row 0 all +16, row 1 all -16, row 2 mixed (E3M0); weight rows alternate
  // +16 / -16 / mixed.
  std::vector<uint8_t> a(m * k / 2, 0x77);
  std::fill(a.begin() + k / 2, a.begin() + k, 0xFF);
  std::fill(a.begin() + k, a.end(), 0x7F);
  std::vector<uint8_t> w(n * k / 2);
  for (int64_t j = 0; j < n; ++j) {
    const uint8_t byte = j % 3 == 0 ? 0x77 : j % 3 == 1 ? 0xFF : 0x7F;
    std::fill(w.begin() + j * k / 2, w.begin() + (j + 1) * k / 2, byte);
  }
  const std::vector<float> row_scale(n, 1.0f);
  std::vector<float> expected(m * n);
  Fp4LinearRef({.a_codes = a.data(), .a_kind = Fp4Kind::kE3M0, .a_scale = 1.0f,
                .w_codes = w.data(), .w_kind = Fp4Kind::kE3M0, .row_scale = row_scale.data(),
                .m = m, .n = n, .k = k, .y = expected.data()});
  EXPECT_EQ(expected[0], 256.0f * static_cast<float>(k));  // 16 * 16 * k
  EXPECT_EQ(expected[n], -256.0f * static_cast<float>(k));
  ASSERT_OK_AND_ASSIGN(auto prepared, PrepareFp4Weight(w.data(), row_scale.data(), nullptr,
                                                       Fp4Kind::kE3M0, n, k));
  for (Fp4GemmIsa isa : SupportedFp4GemmIsas()) {
    std::vector<float> y(m * n);
    Fp4Gemm(pool, {.a_codes = a.data(), .a_kind = Fp4Kind::kE3M0, .a_scale = 1.0f,
                   .w = &prepared, .y = y.data(), .m = m, .isa = isa});
    EXPECT_TRUE(SameFloats(expected, y)) << Fp4GemmIsaName(isa);
  }
}

TEST(Fp4GemmTest, ZeroRowsIsANoOp) {
  ThreadPool pool(2);
  const std::vector<uint8_t> w(8, 0x11);
  const float row_scale[1] = {1.0f};
  ASSERT_OK_AND_ASSIGN(auto prepared,
                       PrepareFp4Weight(w.data(), row_scale, nullptr, Fp4Kind::kE2M1, 1, 16));
  EXPECT_EQ(prepared.n(), 1);
  EXPECT_EQ(prepared.k(), 16);
  EXPECT_GT(prepared.memory_bytes(), 0);
  Fp4Gemm(pool, {.a_codes = nullptr, .w = &prepared, .y = nullptr, .m = 0});
}

TEST(Fp4GemmTest, PrepareRejectsBadInput) {
  const std::vector<uint8_t> w(64, 0);
  const std::vector<float> s(8, 1.0f);
  auto expect_invalid = [](const absl::StatusOr<PreparedFp4Weight>& r, const char* what) {
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << what;
    EXPECT_NE(r.status().message().find("PrepareFp4Weight"), absl::string_view::npos) << what;
  };
  expect_invalid(PrepareFp4Weight(nullptr, s.data(), nullptr, Fp4Kind::kE2M1, 8, 16), "codes");
  expect_invalid(PrepareFp4Weight(w.data(), nullptr, nullptr, Fp4Kind::kE2M1, 8, 16), "scale");
  expect_invalid(PrepareFp4Weight(w.data(), s.data(), nullptr, Fp4Kind::kE2M1, 8, 15), "odd k");
  expect_invalid(PrepareFp4Weight(w.data(), s.data(), nullptr, Fp4Kind::kE2M1, 0, 16), "n=0");
  expect_invalid(PrepareFp4Weight(w.data(), s.data(), nullptr, Fp4Kind::kE2M1, 8, 0), "k=0");
  expect_invalid(PrepareFp4Weight(w.data(), s.data(), nullptr, static_cast<Fp4Kind>(3), 8, 16),
                 "kind");
  expect_invalid(PrepareFp4Weight(w.data(), s.data(), nullptr, Fp4Kind::kE2M1, 1,
                                  kFp4GemmMaxK + 2),
                 "k too large");
}

// Inputs for the quantizer: random values around every format's range, every midpoint of every
// format times the scale (exact ties), their float neighbours, and specials.
std::vector<float> QuantizeInputs(int64_t count, float scale, std::mt19937& rng) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> specials = {0.0f, -0.0f, inf, -inf,
                                 std::numeric_limits<float>::quiet_NaN(),
                                 std::bit_cast<float>(0xFFC00001u),  // negative NaN
                                 std::numeric_limits<float>::denorm_min(),
                                 -std::numeric_limits<float>::denorm_min(), 1e30f, -1e30f};
  // The midpoints of all three formats.
  constexpr float kMidpoints[] = {0.125f, 0.25f, 0.375f, 0.625f, 0.75f, 0.875f, 1.125f, 1.25f,
                                  1.375f, 1.5f,  1.625f, 1.75f,  2.5f,  3.0f,   3.5f,   5.0f,
                                  6.0f,   12.0f};
  for (float mid : kMidpoints) {
    for (float v : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, inf)}) {
      specials.push_back(v * scale);  // exact when scale is a power of two
      specials.push_back(-v * scale);
    }
  }
  std::vector<float> x = RandomFloats(count, -20.0f * scale, 20.0f * scale, rng);
  std::uniform_int_distribution<size_t> pick(0, specials.size() - 1);
  for (size_t i = 0; i < x.size(); i += 3) x[i] = specials[pick(rng)];
  for (size_t i = 0; i < specials.size() && i < x.size(); ++i) x[i] = specials[i];
  return x;
}

TEST(Fp4GemmTest, QuantizeActivationsEqualsReferenceOnEveryPath) {
  std::mt19937 rng(77);
  for (Fp4Kind kind : kKinds) {
    for (const Shape& s : {Shape{1, 0, 2}, Shape{3, 0, 30}, Shape{2, 0, 34}, Shape{4, 0, 1538},
                           Shape{64, 0, 576}}) {
      for (float scale : {0.5f, 2.0f, 0.37f}) {
        const std::vector<float> x = QuantizeInputs(s.m * s.k, scale, rng);
        std::vector<uint8_t> expected(s.m * s.k / 2);
        QuantizeActivationsRef(x.data(), s.m, s.k, kind, 1.0f / scale, expected.data());
        for (Fp4GemmIsa isa : SupportedFp4GemmIsas()) {
          std::vector<uint8_t> codes(s.m * s.k / 2, 0xAB);
          QuantizeActivations(x.data(), s.m, s.k, kind, 1.0f / scale, codes.data(), isa);
          ASSERT_EQ(codes, expected) << Fp4GemmIsaName(isa) << " kind=" << int(kind)
                                     << " m=" << s.m << " k=" << s.k << " scale=" << scale;
        }
      }
    }
  }
}

// The whole W4A4 linear as the engine runs it: quantize x with the static scale, GEMM, add to
// the residual. Quantizer and GEMM chained on every path equal the chained references.
TEST(Fp4GemmTest, QuantizeThenGemmMatchesChainedReferences) {
  ThreadPool pool(2);
  std::mt19937 rng(99);
  const int64_t m = 12, n = 50, k = 192;
  const auto x = RandomFloats(m * k, -3.0f, 3.0f, rng);
  const auto w = RandomBytes(n * k / 2, rng);
  const auto row_scale = RandomFloats(n, 0.01f, 0.1f, rng);
  const auto residual = RandomFloats(m * n, -1.0f, 1.0f, rng);
  const float a_scale = 0.5f;
  std::vector<uint8_t> a_ref(m * k / 2);
  QuantizeActivationsRef(x.data(), m, k, Fp4Kind::kE2M1, 1.0f / a_scale, a_ref.data());
  std::vector<float> expected = residual;
  Fp4LinearRef({.a_codes = a_ref.data(), .a_kind = Fp4Kind::kE2M1, .a_scale = a_scale,
                .w_codes = w.data(), .w_kind = Fp4Kind::kE1M2, .row_scale = row_scale.data(),
                .m = m, .n = n, .k = k, .y = expected.data(), .accumulate = true});
  ASSERT_OK_AND_ASSIGN(auto prepared, PrepareFp4Weight(w.data(), row_scale.data(), nullptr,
                                                       Fp4Kind::kE1M2, n, k));
  for (Fp4GemmIsa isa : SupportedFp4GemmIsas()) {
    std::vector<uint8_t> a(m * k / 2);
    QuantizeActivations(x.data(), m, k, Fp4Kind::kE2M1, 1.0f / a_scale, a.data(), isa);
    std::vector<float> y = residual;
    Fp4Gemm(pool, {.a_codes = a.data(), .a_kind = Fp4Kind::kE2M1, .a_scale = a_scale,
                   .w = &prepared, .y = y.data(), .m = m, .accumulate = true, .isa = isa});
    EXPECT_TRUE(SameFloats(expected, y)) << Fp4GemmIsaName(isa);
  }
}

}  // namespace
}  // namespace engine::kernels
