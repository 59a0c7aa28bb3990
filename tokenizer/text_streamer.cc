// TextStreamer (see tokenizer.h). Push appends the token's bytes to the pending buffer and emits
// every complete character; Flush emits the rest with the same sanitizing rule that Decode uses,
// so concatenated output equals Decode of the same tokens.
#include "kernels/core/status_macros.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace engine::tokenizer {

absl::StatusOr<std::string> TextStreamer::Push(TokenId token) {
  ENGINE_ASSIGN_OR_RETURN(const std::string bytes, tokenizer_.TokenBytes(previous_, token));
  if (!tokenizer_.IsControl(token)) previous_ = token;
  pending_ += bytes;
  std::string out;
  const size_t consumed = AppendSanitizedUtf8(pending_, /*final=*/false, &out);
  pending_.erase(0, consumed);
  return out;
}

std::string TextStreamer::Flush() {
  std::string out;
  AppendSanitizedUtf8(pending_, /*final=*/true, &out);
  pending_.clear();
  return out;
}

}  // namespace engine::tokenizer
