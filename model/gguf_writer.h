// Writes a model as a GGUF v3 llama file that llama.cpp's tools can read: F32 tensors with
// llama.cpp's tensor names, llama.* hyperparameters, the tokenizer. Q and K rows of a
// Hugging Face (RopeStyle::kHalves) model are permuted into the interleaved order llama.cpp's
// converter writes, so every GGUF llama file uses interleaved RoPE. W4A4 models (weights.fp4 not
// empty) get fp4lm's quantized layout (model/gguf_fp4.h), with Q/K rows permuted the same way.
#ifndef FP4LM_MODEL_GGUF_WRITER_H_
#define FP4LM_MODEL_GGUF_WRITER_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "model/loaded_model.h"

namespace engine::model {

// The tokenizer goes in as tokenizer.ggml.* when the model has a GGUF vocabulary, otherwise
// the tokenizer file's bytes go in as fp4lm.tokenizer.kind / fp4lm.tokenizer.file so the
// output is self-contained.
absl::Status WriteGgufModel(const LoadedModel& model, const std::string& path);

// The row order convert_hf_to_gguf.py's LlamaModel.permute gives a Q or K weight
// [n_heads * head_dim, cols] (or bias [n_heads * head_dim]) of a halves-RoPE model, so that
// interleaved RoPE computes the same thing: output row h*head_dim + 2i + j is input row
// h*head_dim + j*head_dim/2 + i (i < head_dim/2, j in {0, 1}).
std::vector<float> PermuteHalvesToInterleaved(const F32Tensor& w, int32_t n_heads);

// The same row permutation for `rows` holding n_heads * head_dim rows of `row_bytes` bytes each
// (W4A4 models: FP4 code rows of in_features / 2 bytes, row scales and biases of 4 bytes).
// Whole rows move, so it is exact for packed codes.
std::vector<uint8_t> PermuteRowsHalvesToInterleaved(std::span<const uint8_t> rows,
                                                    int64_t row_bytes, int32_t n_heads);

}  // namespace engine::model

#endif  // FP4LM_MODEL_GGUF_WRITER_H_
