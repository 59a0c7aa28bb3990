// Access to the internals of a loaded Model for the modules above the engine (the quantizer's
// calibration runs the FP32 model and reads its weights). Not part of the public API: apps/
// and external programs must not include this header.
#ifndef FP4LM_ENGINE_INTERNAL_H_
#define FP4LM_ENGINE_INTERNAL_H_

#include "engine/backend_weights.h"
#include "engine/engine.h"
#include "model/loaded_model.h"
#include "tokenizer/tokenizer.h"

namespace engine {

const model::LoadedModel& LoadedModelOf(const Model& model);
const tokenizer::Tokenizer& TokenizerOf(const Model& model);
// The weights as the CPU kernels stream them (for `fp4lm bench` on a model file).
const BackendWeights& BackendOf(const Model& model);

}  // namespace engine

#endif  // FP4LM_ENGINE_INTERNAL_H_
