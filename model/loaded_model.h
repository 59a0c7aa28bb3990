// What a model reader returns: config, FP32 weights, where the tokenizer comes from, the chat
// template, and a description of the tensors as stored (for `fp4lm info`).
#ifndef FP4LM_MODEL_LOADED_MODEL_H_
#define FP4LM_MODEL_LOADED_MODEL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/weights.h"

namespace engine::model {

enum class ModelFormat : uint8_t { kLlama2c, kHuggingFace, kGguf };
const char* ModelFormatName(ModelFormat format);

// The vocabulary as a GGUF file stores it (tokenizer.ggml.*). Plain data: the engine hands it
// to tokenizer/, which this module must not depend on.
struct GgufVocab {
  std::string model;                 // tokenizer.ggml.model: "llama" (SentencePiece), "gpt2" (BPE)
  std::string pre;                   // tokenizer.ggml.pre: pre-tokenizer name, e.g. "smollm"
  std::vector<std::string> tokens;   // tokenizer.ggml.tokens
  std::vector<float> scores;         // tokenizer.ggml.scores (may be empty for gpt2)
  std::vector<int32_t> token_types;  // tokenizer.ggml.token_type (1 normal, 2 unknown,
                                     // 3 control, 4 user-defined, 5 unused, 6 byte)
  std::vector<std::string> merges;   // tokenizer.ggml.merges ("a b"), BPE only
  int32_t bos_id = -1;
  int32_t eos_id = -1;
  int32_t unk_id = -1;
  int32_t pad_id = -1;
  bool add_bos = true;               // tokenizer.ggml.add_bos_token
  bool add_space_prefix = true;      // tokenizer.ggml.add_space_prefix (SentencePiece)
};

// Where the tokenizer of a model lives.
struct TokenizerSource {
  enum class Kind : uint8_t {
    kNone,               // nothing found; the caller must pass one
    kSentencePieceFile,  // tokenizer.model
    kLlama2cFile,        // llama2.c tokenizer.bin / tok512.bin
    kHfTokenizerJson,    // Hugging Face tokenizer.json
    kGguf,               // embedded in the GGUF metadata: see `gguf`
  };
  Kind kind = Kind::kNone;
  std::string path;      // for the file kinds: where it is on disk, or ...
  std::string embedded;  // ... its contents, when the model file embeds it (our GGUF writer
                         // stores non-GGUF tokenizers as fp4lm.tokenizer.* keys)
  GgufVocab gguf;    // for kGguf
  // Hugging Face tokenizer_config.json / generation_config.json hints (-1 = unknown).
  int32_t bos_id = -1;
  int32_t eos_id = -1;
};

// One tensor as stored in the source file.
struct SourceTensorInfo {
  std::string name;
  std::string dtype;           // "F32", "F16", "BF16", "Q4_1", ...
  std::vector<int64_t> shape;  // outermost-first
};

struct LoadedModel {
  ModelFormat format = ModelFormat::kLlama2c;
  std::string path;
  ModelConfig config;
  ModelWeights weights;
  TokenizerSource tokenizer;
  std::string chat_template;  // Jinja source from the file, if any
  std::vector<SourceTensorInfo> tensors;
};

}  // namespace engine::model

#endif  // FP4LM_MODEL_LOADED_MODEL_H_
