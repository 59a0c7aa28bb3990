#include "engine/kv_cache.h"

#include "absl/strings/str_cat.h"
#include "kernels/core/status_macros.h"
#include "model/memory_limit.h"

namespace engine {

absl::StatusOr<KvCache> KvCache::Create(const KvCacheShape& shape) {
  if (shape.n_layers <= 0 || shape.n_kv_heads <= 0 || shape.head_dim <= 0 ||
      shape.capacity <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KV cache: invalid shape (layers ", shape.n_layers, ", kv heads ", shape.n_kv_heads,
        ", head_dim ", shape.head_dim, ", capacity ", shape.capacity, ")"));
  }
  const uint64_t floats = uint64_t{static_cast<uint32_t>(shape.n_layers)} *
                          static_cast<uint32_t>(shape.n_kv_heads) *
                          static_cast<uint32_t>(shape.capacity) *
                          static_cast<uint32_t>(shape.head_dim);
  const uint64_t bytes = 2 * floats * sizeof(float);
  // Physical memory, or the container's limit when lower: beyond it the OOM killer would end
  // the process instead of an error.
  ENGINE_RETURN_IF_ERROR(model::CheckMemory(
      bytes, absl::StrCat("a KV cache of ", shape.capacity, " tokens"),
      "KV cache (use a smaller context)"));
  KvCache cache;
  cache.shape_ = shape;
  cache.k_.resize(floats);
  cache.v_.resize(floats);
  return cache;
}

absl::Status KvCache::CheckRoom(int32_t n) const {
  if (n > shape_.capacity - size_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "context full: ", size_, " tokens in the cache + ", n, " new exceed its capacity of ",
        shape_.capacity, " tokens"));
  }
  return absl::OkStatus();
}

}  // namespace engine
