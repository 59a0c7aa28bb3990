#include "quantizer/calibration.h"

#include "absl/strings/str_cat.h"
#include "kernels/core/status_macros.h"
#include "model/mapped_file.h"

namespace engine::quantizer {
namespace {

// Generic openings for self-generated text: the empty one lets the model choose freely; the
// others steer towards prose, dialogue, facts and code, so several kinds of text are covered.
constexpr const char* kOpenings[] = {"",        "The",         "Once upon a time", "In",
                                     "Question:", "I think",   "def ",            "1."};

absl::StatusOr<CalibrationData> FromFile(const Model& model, const CalibrationOptions& o,
                                         TokenId bos) {
  ENGINE_ASSIGN_OR_RETURN(std::string text, model::ReadFileToString(o.file));
  ENGINE_ASSIGN_OR_RETURN(std::vector<TokenId> tokens,
                          model.Tokenize(text, /*add_bos=*/false, /*parse_special=*/false));
  const size_t per_sequence = static_cast<size_t>(o.length - 1);
  if (tokens.size() < per_sequence * static_cast<size_t>(o.samples)) {
    return absl::InvalidArgumentError(absl::StrCat(
        o.file, ": calibration needs ", o.samples, " x ", per_sequence, " tokens, the file has ",
        tokens.size()));
  }
  CalibrationData data;
  // Evenly spaced, non-overlapping slices cover the whole file.
  const size_t stride = tokens.size() / static_cast<size_t>(o.samples);
  for (int32_t s = 0; s < o.samples; ++s) {
    std::vector<TokenId> seq = {bos};
    const auto begin = tokens.begin() + static_cast<ptrdiff_t>(s * stride);
    seq.insert(seq.end(), begin, begin + static_cast<ptrdiff_t>(per_sequence));
    data.sequences.push_back(std::move(seq));
  }
  data.description = absl::StrCat("file ", o.file, ", ", o.samples, " x ", o.length, " tokens");
  return data;
}

}  // namespace

absl::StatusOr<CalibrationData> MakeCalibrationData(const Model& model,
                                                    const CalibrationOptions& o) {
  if (o.samples <= 0 || o.length < 2) {
    return absl::InvalidArgumentError(absl::StrCat("calibration needs samples >= 1 and length >= 2",
                                                   ", got ", o.samples, " x ", o.length));
  }
  if (o.length > model.info().max_seq_len) {
    return absl::InvalidArgumentError(absl::StrCat("calibration length ", o.length,
                                                   " exceeds the model's context of ",
                                                   model.info().max_seq_len));
  }
  const TokenId bos = model.info().bos_id;
  if (bos < 0) {
    return absl::FailedPreconditionError("the vocabulary has no BOS token to start calibration "
                                         "sequences with");
  }
  if (!o.file.empty()) return FromFile(model, o, bos);

  CalibrationData data;
  ENGINE_ASSIGN_OR_RETURN(std::unique_ptr<Session> session,
                          Session::Create(model, {.max_seq_len = o.length}));
  SamplingParams sampling;
  sampling.temperature = o.temperature;
  sampling.top_k = 0;
  sampling.top_p = 0.95f;
  sampling.min_p = 0.0f;
  const int32_t total = o.samples * o.length;
  for (int32_t s = 0; s < o.samples; ++s) {
    const std::string opening = kOpenings[s % std::size(kOpenings)];
    ENGINE_ASSIGN_OR_RETURN(std::vector<TokenId> seq, model.Tokenize(opening, /*add_bos=*/false));
    seq.insert(seq.begin(), bos);
    if (seq.size() > static_cast<size_t>(o.length)) seq.resize(static_cast<size_t>(o.length));
    session->Reset();
    ENGINE_RETURN_IF_ERROR(session->Prefill(seq));
    sampling.seed = o.seed * 1000003u + static_cast<uint64_t>(s);
    // End-of-text tokens are kept and generation goes on: the sequence then holds several
    // documents, as real calibration text from a corpus would.
    while (seq.size() < static_cast<size_t>(o.length)) {
      const bool last = seq.size() + 1 == static_cast<size_t>(o.length);
      ENGINE_ASSIGN_OR_RETURN(TokenId t, last ? session->Sample(sampling) : session->Step(sampling));
      seq.push_back(t);
      if (o.progress) o.progress(s * o.length + static_cast<int32_t>(seq.size()), total);
    }
    data.sequences.push_back(std::move(seq));
  }
  data.description = absl::StrCat("self-generated (temperature ", o.temperature, ", top-p 0.95), ",
                                  o.samples, " x ", o.length, " tokens, seed ", o.seed);
  return data;
}

}  // namespace engine::quantizer
