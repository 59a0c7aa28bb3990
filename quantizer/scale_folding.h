// Per-input-channel activation factors and their folding into the neighbouring layers, so that
// at run time each linear's input needs only one static per-tensor scale.
//
// For an input channel j with factor s_j, the producer is divided by s_j and the consumer's
// weight column j multiplied by it; the product is unchanged:
//   (x_j / s_j) * (W[:, j] * s_j) = x_j * W[:, j].
// Producers: RMSNorm gamma (q/k/v and gate/up inputs), v_proj's output rows (o_proj's input),
// up_proj's output rows (down_proj's input).
//
// Two ways to choose s (the two papers):
//   * LLM-FP4, pre-shifted exponent bias: s_j = 2^k_j with integer k_j in [0, 2^E - 1] (E = the
//     activation format's exponent bits). A power of two only shifts the FP exponent, so folding
//     it is exact in floating point; it re-parameterizes a per-channel exponent bias of the
//     activation as a bias of the weights.
//   * MergeQuant, quantization-step migration: arbitrary per-channel steps, chosen here from
//     clipped (percentile) channel ranges balanced against the weights' column ranges
//     (s_j = r_x_j^alpha / r_w_j^(1 - alpha)), migrated the same way.
#ifndef FP4LM_QUANTIZER_SCALE_FOLDING_H_
#define FP4LM_QUANTIZER_SCALE_FOLDING_H_

#include <cstdint>
#include <span>
#include <vector>

namespace engine::quantizer {

// Per-channel statistics of an activation tensor [rows, channels] over the rows kept.
struct ChannelStats {
  std::vector<float> absmax;       // max |x_j|
  std::vector<float> percentile;   // |x_j| at the kPercentile quantile (robust range)
  std::vector<float> mean_square;  // mean x_j^2 (weights' importance for the clipping search)
  float tensor_absmax = 0.0f;      // max over all channels
};
inline constexpr double kPercentile = 0.999;

// `skip_row(r)` excludes rows (the attention-sink position when it is kept in full precision).
ChannelStats ComputeChannelStats(const float* x, int64_t rows, int64_t channels,
                                 std::span<const uint8_t> row_is_sink);

// LLM-FP4: k_j = clamp(round(log2(absmax_j / median_j absmax)), 0, max_shift); s_j = 2^k_j.
std::vector<float> PowerOfTwoFactors(const ChannelStats& stats, int max_shift);

// MergeQuant-style migration: s_j = r_j^alpha / w_j^(1 - alpha), r_j the percentile range,
// w_j = max over the consumers' column j of |W|; normalized so the median factor is 1 and
// clamped to [1/1024, 1024].
std::vector<float> MigrationFactors(const ChannelStats& stats,
                                    std::span<const float> weight_column_absmax, float alpha);

// Grouped-query attention: o_proj input channel (h, d) comes from v channel (h / group, d), so
// its factor must be shared by the heads of a group. Reduces per-(q head, d) factors to
// per-(kv head, d) by taking the max over the group, and expands them back.
std::vector<float> ShareAcrossGroups(std::span<const float> per_q_channel, int n_heads,
                                     int n_kv_heads, int head_dim);           // -> [kv_dim]
std::vector<float> ExpandToQueryHeads(std::span<const float> per_kv_channel, int n_heads,
                                      int n_kv_heads, int head_dim);          // -> [q_dim]

// x[r, j] /= s[j] over [rows, channels].
void DivideColumns(float* x, int64_t rows, int64_t channels, std::span<const float> s);
// w[n, j] *= s[j] over [n, k] (the consumer's columns).
void MultiplyColumns(float* w, int64_t n, int64_t k, std::span<const float> s);
// w[j, :] /= s[j] over [n, k] (a producer's output rows).
void DivideRows(float* w, int64_t n, int64_t k, std::span<const float> s);
// v[j] /= s[j].
void DivideVector(float* v, std::span<const float> s);

}  // namespace engine::quantizer

#endif  // FP4LM_QUANTIZER_SCALE_FOLDING_H_
