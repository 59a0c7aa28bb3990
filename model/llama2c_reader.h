// Reader for llama2.c's legacy checkpoint format (run.c's read_checkpoint): a header of 7
// int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative
// vocab_size means an unshared classifier), then FP32 weights, layer-stacked. Tensors are read
// in place from the memory mapping.
#ifndef FP4LM_MODEL_LLAMA2C_READER_H_
#define FP4LM_MODEL_LLAMA2C_READER_H_

#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "model/loaded_model.h"

namespace engine::model {

inline constexpr size_t kLlama2cHeaderBytes = 7 * sizeof(int32_t);

// True if `bytes` starts with a plausible llama2.c header whose implied size equals the size of
// the file: the format has no magic number, so this is how it is recognised.
bool LooksLikeLlama2c(std::span<const uint8_t> bytes);

// The tokenizer is tok<vocab_size>.bin or tokenizer.bin beside the model, if either exists.
absl::StatusOr<LoadedModel> ReadLlama2cModel(const std::string& path);

}  // namespace engine::model

#endif  // FP4LM_MODEL_LLAMA2C_READER_H_
