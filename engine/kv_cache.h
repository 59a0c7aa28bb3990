// Per-session key/value storage. Layout per layer: K and V each [n_kv_heads, capacity,
// head_dim], head_dim contiguous, so one head's keys are one contiguous run for attention.
#ifndef FP4LM_ENGINE_KV_CACHE_H_
#define FP4LM_ENGINE_KV_CACHE_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace engine {

struct KvCacheShape {
  int32_t n_layers = 0;
  int32_t n_kv_heads = 0;
  int32_t head_dim = 0;
  int32_t capacity = 0;  // tokens
};

class KvCache {
 public:
  // ResourceExhausted if the cache would not fit in memory.
  static absl::StatusOr<KvCache> Create(const KvCacheShape& shape);

  int32_t size() const { return size_; }
  int32_t capacity() const { return shape_.capacity; }
  const KvCacheShape& shape() const { return shape_; }
  // ResourceExhausted (and no change) if `n` more tokens do not fit.
  absl::Status CheckRoom(int32_t n) const;
  void Grow(int32_t n) { size_ += n; }             // after the tokens' K/V were written
  void Truncate(int32_t new_size) { size_ = new_size; }

  float* keys(int32_t layer) { return k_.data() + LayerOffset(layer); }
  float* values(int32_t layer) { return v_.data() + LayerOffset(layer); }

 private:
  size_t LayerOffset(int32_t layer) const {
    return static_cast<size_t>(layer) * shape_.n_kv_heads * shape_.capacity * shape_.head_dim;
  }
  KvCacheShape shape_;
  int32_t size_ = 0;
  std::vector<float> k_;  // [n_layers, n_kv_heads, capacity, head_dim]
  std::vector<float> v_;  // [n_layers, n_kv_heads, capacity, head_dim]
};

}  // namespace engine

#endif  // FP4LM_ENGINE_KV_CACHE_H_
