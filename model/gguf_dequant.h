// ggml tensor data to FP32: F32, F16, BF16 and the block quantizations Q4_0, Q4_1, Q5_0, Q5_1,
// Q8_0, Q4_K, Q5_K, Q6_K, decoded exactly as ggml's dequantize_row_* (ggml-quants.c) decode the
// block structs of ggml-common.h. Scalar code: it runs once per model load.
#ifndef FP4LM_MODEL_GGUF_DEQUANT_H_
#define FP4LM_MODEL_GGUF_DEQUANT_H_

#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "model/gguf_format.h"

namespace engine::model::gguf {

// Whether Dequantize() decodes ggml type number `type`.
bool CanDequantize(uint32_t type);

// Decodes dst.size() elements stored as ggml `type` in `src`, which must hold exactly
// dst.size() / block_size * type_size bytes. InvalidArgument if the sizes disagree or
// dst.size() is not a multiple of the block size; Unimplemented (naming the type) for a type
// without a decoder.
absl::Status Dequantize(uint32_t type, std::span<const uint8_t> src, std::span<float> dst);

}  // namespace engine::model::gguf

#endif  // FP4LM_MODEL_GGUF_DEQUANT_H_
