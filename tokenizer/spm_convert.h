// Converts vocabularies stored in other formats into a SentencePiece ModelProto, so that the
// sentencepiece library tokenizes them: llama2.c's tokenizer.bin and GGUF "llama" vocabularies.
#ifndef FP4LM_TOKENIZER_SPM_CONVERT_H_
#define FP4LM_TOKENIZER_SPM_CONVERT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "tokenizer/spm_model_proto.h"
#include "tokenizer/tokenizer.h"

namespace engine::tokenizer {

// llama2.c tokenizer.bin: int32 max_token_length, then `vocab_size` records of
// {float score, int32 len, len bytes}. Ids 0..2 are <unk>, <s>, </s>; ids 3..258 must be the
// byte pieces <0x00>..<0xFF>; spaces in pieces become "▁". The result is a BPE model with byte
// fallback, a dummy prefix and the identity normalizer, which encodes like llama2.c's encode().
absl::StatusOr<SpmModelProto> Llama2cToSpmModel(std::string_view bytes, int32_t vocab_size,
                                                const std::string& source);

// GGUF tokenizer.ggml.* with model "llama". Token types follow SentencePiece's numbering
// (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte).
absl::StatusOr<SpmModelProto> GgufLlamaToSpmModel(const GgufVocabSpec& vocab,
                                                  const std::string& source);

}  // namespace engine::tokenizer

#endif  // FP4LM_TOKENIZER_SPM_CONVERT_H_
