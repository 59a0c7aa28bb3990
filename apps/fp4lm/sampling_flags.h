// The sampling options `fp4lm generate` and `fp4lm chat` share (llama.cpp's names and
// meanings), registered once so their bounds and help text cannot drift apart.
#ifndef FP4LM_APPS_FP4LM_SAMPLING_FLAGS_H_
#define FP4LM_APPS_FP4LM_SAMPLING_FLAGS_H_

#include "engine/options.h"
#include "fp4lm/args.h"

namespace fp4lm {

// --temp, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n into `sampling`.
void AddSamplingFlags(ArgParser& parser, engine::SamplingParams& sampling);

}  // namespace fp4lm

#endif  // FP4LM_APPS_FP4LM_SAMPLING_FLAGS_H_
