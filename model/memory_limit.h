// How much memory this process may use, and the check every loader makes before an allocation
// whose size a file decides (dequantized weights, converted tensors, the KV cache): a request
// above it is a ResourceExhausted error naming what needed the memory, not the OOM killer.
#ifndef FP4LM_MODEL_MEMORY_LIMIT_H_
#define FP4LM_MODEL_MEMORY_LIMIT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace engine::model {

// Physical memory (sysconf), lowered to the cgroup's memory limit when the process runs in a
// container that has one (cgroup v2 memory.max, or v1 memory.limit_in_bytes).
uint64_t AvailableMemoryBytes();

// OK if `bytes` fit in `limit` (default AvailableMemoryBytes()); else ResourceExhausted:
// "<source>: <what> needs N MiB, more than the M MiB of memory available".
absl::Status CheckMemory(uint64_t bytes, const std::string& what, const std::string& source,
                         uint64_t limit = AvailableMemoryBytes());

}  // namespace engine::model

#endif  // FP4LM_MODEL_MEMORY_LIMIT_H_
