// Builds the tokenizer of a model from where the reader found it (model::TokenizerSource), or
// from a file the user named, whose kind is detected from its content.
#ifndef FP4LM_ENGINE_TOKENIZER_LOADER_H_
#define FP4LM_ENGINE_TOKENIZER_LOADER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "model/loaded_model.h"
#include "tokenizer/tokenizer.h"

namespace engine {

absl::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> LoadTokenizer(
    const model::TokenizerSource& source, int32_t vocab_size);

// Detects tokenizer.json / GGUF / llama2.c tokenizer.bin / SentencePiece model from the bytes.
absl::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> LoadTokenizerFile(const std::string& path,
                                                                        int32_t vocab_size);

// "sentencepiece (tokenizer.model)", "bpe (gguf gpt2, pre=smollm)", ...
std::string DescribeTokenizerSource(const model::TokenizerSource& source);

}  // namespace engine

#endif  // FP4LM_ENGINE_TOKENIZER_LOADER_H_
