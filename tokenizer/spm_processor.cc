// The only translation unit that includes sentencepiece_processor.h (it collides with Abseil's
// headers; see spm_processor.h). Keep every Abseil include out of this file.
#include "tokenizer/spm_processor.h"

#include <sentencepiece_processor.h>

#include <exception>

namespace engine::tokenizer {

struct SpmProcessor::Impl {
  sentencepiece::SentencePieceProcessor processor;
  bool loaded = false;
};

SpmProcessor::SpmProcessor() : impl_(std::make_unique<Impl>()) {}
SpmProcessor::~SpmProcessor() = default;

// sentencepiece's trie builder (Darts) throws on keys it cannot index; fp4lm reports errors as
// values, so no exception may leave this file. spm_tokenizer.cc refuses the inputs known to
// throw (pieces with NUL bytes, found by fuzzing) with a clearer message first.
template <typename F>
std::string Guarded(const char* what, F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    return std::string("sentencepiece ") + what + " threw: " + e.what();
  } catch (...) {
    return std::string("sentencepiece ") + what + " threw an unknown exception";
  }
}

std::string SpmProcessor::Load(std::string_view serialized_model_proto) {
  return Guarded("LoadFromSerializedProto", [&]() -> std::string {
    const auto status = impl_->processor.LoadFromSerializedProto(serialized_model_proto);
    if (!status.ok()) return status.ToString();
    impl_->loaded = true;
    return "";
  });
}

std::string SpmProcessor::Encode(std::string_view text, std::vector<int>* ids) const {
  if (!impl_->loaded) return "sentencepiece model not loaded";
  return Guarded("Encode", [&]() -> std::string {
    const auto status = impl_->processor.Encode(text, ids);
    return status.ok() ? "" : status.ToString();
  });
}

std::string SpmProcessor::Decode(const std::vector<int>& ids, std::string* text) const {
  if (!impl_->loaded) return "sentencepiece model not loaded";
  return Guarded("Decode", [&]() -> std::string {
    const auto status = impl_->processor.Decode(ids, text);
    return status.ok() ? "" : status.ToString();
  });
}

int SpmProcessor::piece_count() const {
  return impl_->loaded ? impl_->processor.GetPieceSize() : 0;
}

}  // namespace engine::tokenizer
