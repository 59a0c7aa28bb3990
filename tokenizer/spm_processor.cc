// The only translation unit that includes sentencepiece_processor.h (it collides with Abseil's
// headers; see spm_processor.h). Keep every Abseil include out of this file.
#include "tokenizer/spm_processor.h"

#include <sentencepiece_processor.h>

namespace engine::tokenizer {

struct SpmProcessor::Impl {
  sentencepiece::SentencePieceProcessor processor;
  bool loaded = false;
};

SpmProcessor::SpmProcessor() : impl_(std::make_unique<Impl>()) {}
SpmProcessor::~SpmProcessor() = default;

std::string SpmProcessor::Load(std::string_view serialized_model_proto) {
  const auto status = impl_->processor.LoadFromSerializedProto(serialized_model_proto);
  if (!status.ok()) return status.ToString();
  impl_->loaded = true;
  return "";
}

std::string SpmProcessor::Encode(std::string_view text, std::vector<int>* ids) const {
  if (!impl_->loaded) return "sentencepiece model not loaded";
  const auto status = impl_->processor.Encode(text, ids);
  return status.ok() ? "" : status.ToString();
}

std::string SpmProcessor::Decode(const std::vector<int>& ids, std::string* text) const {
  if (!impl_->loaded) return "sentencepiece model not loaded";
  const auto status = impl_->processor.Decode(ids, text);
  return status.ok() ? "" : status.ToString();
}

int SpmProcessor::piece_count() const {
  return impl_->loaded ? impl_->processor.GetPieceSize() : 0;
}

}  // namespace engine::tokenizer
