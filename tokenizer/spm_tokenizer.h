// The SentencePiece implementation of Tokenizer: sentencepiece (through SpmProcessor) encodes;
// decoding is done here from the piece table, token by token, with the library's rules (so that
// TextStreamer and Decode agree exactly). Special tokens are cut out of the text first when the
// caller asks for them.
#ifndef FP4LM_TOKENIZER_SPM_TOKENIZER_H_
#define FP4LM_TOKENIZER_SPM_TOKENIZER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "tokenizer/spm_model_proto.h"
#include "tokenizer/tokenizer.h"

namespace engine::tokenizer {

// `model` describes the pieces with their true types; `library_bytes` is the serialized
// ModelProto handed to sentencepiece. User-defined pieces must already be CONTROL there, since
// sentencepiece would otherwise match them in every text (we match them only on request).
absl::StatusOr<std::unique_ptr<Tokenizer>> CreateSpmTokenizer(SpmModelProto model,
                                                              std::string library_bytes,
                                                              bool add_bos,
                                                              const std::string& source);

// For tokenizer.model bytes: parses them, turns user-defined pieces into control pieces for the
// library, and creates the tokenizer.
absl::StatusOr<std::unique_ptr<Tokenizer>> CreateSpmTokenizerFromModelBytes(
    std::string_view bytes, const std::string& source);

// For converted vocabularies (llama2.c, GGUF): serializes `model` for the library.
absl::StatusOr<std::unique_ptr<Tokenizer>> CreateSpmTokenizerFromModel(SpmModelProto model,
                                                                       bool add_bos,
                                                                       const std::string& source);

}  // namespace engine::tokenizer

#endif  // FP4LM_TOKENIZER_SPM_TOKENIZER_H_
