// Fuzz target: a SentencePiece tokenizer.model (a serialized ModelProto), decoded by our
// wire-format parser and then loaded by the sentencepiece library itself; a model both accept
// is then used.
#include "tests/fuzz/fuzz_targets.h"
#include "tokenizer/tokenizer.h"

namespace engine::fuzz {

absl::Status FuzzSpmModel(FuzzInput data) {
  absl::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> tok =
      tokenizer::Tokenizer::FromSentencePieceBytes(AsText(data), "fuzz/tokenizer.model");
  if (!tok.ok()) return tok.status();
  ExerciseTokenizer(**tok);
  return absl::OkStatus();
}

}  // namespace engine::fuzz
