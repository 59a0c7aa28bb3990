// The BPE merge algorithm over a vocabulary and a ranked merge list, shared by GGUF "gpt2"
// vocabularies and Hugging Face tokenizer.json BPE models. Splits one pre-tokenized word into
// initial symbols (bytes for byte-level models, characters otherwise, with byte fallback or
// <unk> for characters outside the vocabulary) and repeatedly merges the adjacent pair of
// lowest rank, leftmost first (as Hugging Face tokenizers and llama.cpp do).
#ifndef FP4LM_TOKENIZER_BPE_MODEL_H_
#define FP4LM_TOKENIZER_BPE_MODEL_H_

#include <array>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "tokenizer/tokenizer.h"

namespace engine::tokenizer {

struct BpeModelOptions {
  bool byte_level = false;     // words arrive as raw bytes; tokens are GPT-2 byte-level text
  bool byte_fallback = false;  // unknown characters become <0xNN> tokens
  bool fuse_unk = false;       // consecutive <unk> become one
  bool ignore_merges = false;  // a word that is itself a token is emitted whole (llama3)
  TokenId unk_id = -1;         // -1: characters with no token are dropped
};

class BpeModel {
 public:
  // `tokens[id]` is the token text (empty for ids the model does not define); `merges` in rank
  // order. Tokens in `never_produce` (special tokens) are neither initial symbols nor merge
  // results, so ordinary text can never turn into them.
  static absl::StatusOr<BpeModel> Create(
      const std::vector<std::string>& tokens,
      const std::vector<std::pair<std::string, std::string>>& merges,
      const BpeModelOptions& options, const absl::flat_hash_set<TokenId>& never_produce,
      const std::string& source);

  // Appends the tokens of one word.
  void EncodeWord(std::string_view word, std::vector<TokenId>* out) const;

 private:
  struct Merge {
    int32_t rank;
    TokenId result;
  };
  static uint64_t PairKey(TokenId a, TokenId b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  TokenId Lookup(std::string_view text) const;
  void InitialSymbols(std::string_view word, std::vector<TokenId>* symbols) const;

  BpeModelOptions options_;
  absl::flat_hash_map<std::string, TokenId> vocab_;  // without never_produce tokens
  absl::flat_hash_map<uint64_t, Merge> merges_;
  std::array<TokenId, 256> byte_token_{};  // byte-level: token of each byte; else <0xNN>
};

}  // namespace engine::tokenizer

#endif  // FP4LM_TOKENIZER_BPE_MODEL_H_
