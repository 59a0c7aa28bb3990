// Text <-> token ids. One interface over two algorithms:
//   * SentencePiece (LLaMA-style vocabularies): tokenizer.model directly; llama2.c tokenizer.bin
//     and GGUF "llama" vocabularies converted to a SentencePiece ModelProto so that the real
//     library does the encoding (spm_processor.cc is the only file that sees sentencepiece
//     headers).
//   * Byte-level BPE: GGUF "gpt2" vocabularies with merges (SmolLM2), and Hugging Face
//     tokenizer.json BPE models (GPT-2 byte-level, or SentencePiece-style "▁" with byte fallback).
// Special tokens (BOS, EOS, chat markers) are only recognised in text when the caller asks.
// A Tokenizer is immutable after construction; all its methods may be called concurrently.
#ifndef FP4LM_TOKENIZER_TOKENIZER_H_
#define FP4LM_TOKENIZER_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace engine::tokenizer {

using TokenId = int32_t;

// A GGUF vocabulary in plain types (mirrors model::GgufVocab; the engine copies it across so
// that tokenizer/ depends on nothing internal).
struct GgufVocabSpec {
  std::string model;  // "llama" or "gpt2"
  std::string pre;    // pre-tokenizer name ("smollm", "gpt2", "llama-bpe", ...)
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> token_types;
  std::vector<std::string> merges;
  int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;
  bool add_bos = true;
  bool add_space_prefix = true;
};

// Extra information for a Hugging Face tokenizer.json, which does not itself say which token
// ends a sequence.
struct HfTokenizerOptions {
  // Contents of tokenizer_config.json ("" = none): bos_token, eos_token, add_bos_token.
  std::string tokenizer_config_json;
  // Explicit ids (e.g. from generation_config.json); -1 = unknown. They win over the config.
  int32_t bos_id = -1;
  int32_t eos_id = -1;
};

struct EncodeOptions {
  bool add_bos = true;         // prepend BOS when the vocabulary has one and asks for it
  bool parse_special = false;  // recognise special-token text such as "<|im_start|>"
};

class Tokenizer {
 public:
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromSentencePieceFile(const std::string& path);
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromLlama2cFile(const std::string& path,
                                                                    int32_t vocab_size);
  // Also reads tokenizer_config.json from the same directory when it exists.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromHfTokenizerJson(const std::string& path);
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromGguf(const GgufVocabSpec& vocab);
  // The same from file contents already in memory (a tokenizer embedded in a model file).
  // `source` names the origin in error messages.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromSentencePieceBytes(
      std::string_view bytes, const std::string& source);
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromLlama2cBytes(
      std::string_view bytes, int32_t vocab_size, const std::string& source);
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromHfTokenizerJsonText(
      std::string_view json, const std::string& source);
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromHfTokenizerJsonText(
      std::string_view json, const std::string& source, const HfTokenizerOptions& options);

  virtual ~Tokenizer() = default;

  virtual absl::StatusOr<std::vector<TokenId>> Encode(std::string_view text,
                                                      const EncodeOptions& options) const = 0;
  // Decodes a whole sequence (a leading BOS is dropped; SentencePiece's leading space of the
  // first piece is removed the way the library does).
  virtual absl::StatusOr<std::string> Decode(std::span<const TokenId> tokens) const = 0;
  // The raw bytes a token contributes when it follows `previous` (-1 = first token), used by
  // TextStreamer. Control tokens (BOS/EOS) contribute nothing. `previous` is the last token
  // before `token` that is not a control token, so that "first" means "first visible": the
  // leading-space rule of SentencePiece applies to the first piece after BOS.
  virtual absl::StatusOr<std::string> TokenBytes(TokenId previous, TokenId token) const = 0;
  // True for tokens that never produce text (BOS, EOS, chat markers); false when out of range.
  virtual bool IsControl(TokenId token) const = 0;

  virtual int32_t vocab_size() const = 0;
  virtual TokenId bos_id() const = 0;  // -1 if none
  virtual TokenId eos_id() const = 0;  // -1 if none
  // True for EOS and other end-of-generation tokens (e.g. "<|im_end|>", "<|endoftext|>").
  virtual bool IsEndOfGeneration(TokenId token) const = 0;
  // The text of a special token by name (e.g. "<|im_start|>") or -1.
  virtual TokenId FindSpecialToken(std::string_view text) const = 0;
  virtual std::string_view kind() const = 0;  // "sentencepiece", "bpe"
};

// Turns a stream of tokens into text without ever emitting half a UTF-8 character: bytes of an
// incomplete character are held back until the token that completes it arrives.
class TextStreamer {
 public:
  explicit TextStreamer(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}
  // Returns the newly completed text (possibly empty).
  absl::StatusOr<std::string> Push(TokenId token);
  // Returns what is left at the end of the stream; invalid trailing bytes become U+FFFD.
  std::string Flush();

 private:
  const Tokenizer& tokenizer_;
  TokenId previous_ = -1;  // last non-control token pushed
  std::string pending_;  // bytes of an incomplete UTF-8 character
};

}  // namespace engine::tokenizer

#endif  // FP4LM_TOKENIZER_TOKENIZER_H_
