// PImpl over sentencepiece::SentencePieceProcessor. sentencepiece_processor.h declares
// `namespace absl { using std::string_view; }`, which breaks every translation unit that also
// sees Debian's Abseil, so this header uses standard types only and reports errors as strings
// (empty = success); spm_tokenizer.cc turns them into absl::Status.
#ifndef FP4LM_TOKENIZER_SPM_PROCESSOR_H_
#define FP4LM_TOKENIZER_SPM_PROCESSOR_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace engine::tokenizer {

class SpmProcessor {
 public:
  SpmProcessor();
  ~SpmProcessor();
  SpmProcessor(const SpmProcessor&) = delete;
  SpmProcessor& operator=(const SpmProcessor&) = delete;

  // Loads a serialized ModelProto. Returns "" on success, else the library's message.
  std::string Load(std::string_view serialized_model_proto);

  // Thread-safe after Load (the library's Encode/Decode are const).
  std::string Encode(std::string_view text, std::vector<int>* ids) const;
  std::string Decode(const std::vector<int>& ids, std::string* text) const;

  int piece_count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace engine::tokenizer

#endif  // FP4LM_TOKENIZER_SPM_PROCESSOR_H_
