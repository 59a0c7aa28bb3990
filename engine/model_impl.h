// The internals of engine::Model, shared by engine.cc and session.cc (not a public header).
#ifndef FP4LM_ENGINE_MODEL_IMPL_H_
#define FP4LM_ENGINE_MODEL_IMPL_H_

#include <memory>

#include "engine/backend_weights.h"
#include "engine/engine.h"
#include "engine/transformer.h"
#include "model/loaded_model.h"
#include "tokenizer/tokenizer.h"

namespace engine {

struct Model::Impl {
  model::LoadedModel loaded;  // config + immutable FP32 weights
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
  BackendWeights backend;  // the weights as the CPU kernels stream them
  ModelInfo info;
  int32_t num_threads = 1;
};

}  // namespace engine

#endif  // FP4LM_ENGINE_MODEL_IMPL_H_
