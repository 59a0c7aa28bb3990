// GGUF v2/v3 reader (llama architecture). Validates the header, metadata, tensor infos,
// alignment and every offset against the real file size before touching tensor data; tensors
// are dequantized to FP32 exactly as ggml's block definitions say (model/gguf_dequant.h).
#ifndef FP4LM_MODEL_GGUF_READER_H_
#define FP4LM_MODEL_GGUF_READER_H_

#include <string>

#include "absl/status/statusor.h"
#include "model/loaded_model.h"

namespace engine::model {

// Reads a whole llama-architecture model: config from llama.* keys, weights (F32 tensors read
// in place from the mapping, others dequantized), tokenizer.ggml.* vocabulary, chat template.
// An fp4lm W4A4 file (fp4lm.quantization = "w4a4", model/gguf_fp4.h) fills weights.fp4 with
// views of the mapping instead of FP32 linears.
absl::StatusOr<LoadedModel> ReadGgufModel(const std::string& path);

// Reads only the vocabulary of a GGUF file (vocab-only files have no tensors).
absl::StatusOr<GgufVocab> ReadGgufVocab(const std::string& path);

}  // namespace engine::model

#endif  // FP4LM_MODEL_GGUF_READER_H_
