// Fuzz targets: a GGUF llama model (llama.* config keys, tensor shapes and types, block
// dequantization, tokenizer.ggml.* vocabularies, chat template) and fp4lm's own W4A4 GGUF file
// (fp4lm.* keys, FP4 tensors, row scales, attention sink). Both go through the public
// Model::Load, then the model's tokenizer and, for small models, a few decode steps: a file that
// loads must also be safe to run. A file that is not a model may still be a vocabulary.
#include "engine/engine.h"
#include "engine/internal.h"
#include "engine/tokenizer_loader.h"
#include "model/config.h"
#include "tests/fuzz/fuzz_targets.h"

namespace engine::fuzz {
namespace {

// Models above this many parameters load but do not run: a fuzzing iteration must stay fast.
constexpr int64_t kMaxRunParameters = int64_t{1} << 20;

absl::Status RunGgufModel(FuzzInput data, const std::string& name) {
  const std::string path = WriteFuzzFile(name, AsText(data));
  absl::StatusOr<std::unique_ptr<Model>> m = Model::Load({.path = path, .num_threads = 1});
  if (!m.ok()) {
    absl::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> tok =
        LoadTokenizerFile(path, static_cast<int32_t>(model::kMaxVocab));
    if (tok.ok()) ExerciseTokenizer(**tok);
    return m.status();
  }
  const Model& model = **m;
  (void)TouchWeights(LoadedModelOf(model));
  ExerciseTokenizer(TokenizerOf(model));
  if (model.info().parameter_count > kMaxRunParameters) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(model, {.max_seq_len = 8});
  if (!session.ok()) return session.status();
  const TokenId first = model.info().bos_id >= 0 ? model.info().bos_id : 0;
  const TokenId prompt[] = {first};
  if (absl::Status s = (*session)->Prefill(prompt); !s.ok()) return s;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<TokenId> next = (*session)->Step({.temperature = 0.0f});
    if (!next.ok()) return next.status();
  }
  return (*session)->Rewind(0);
}

}  // namespace

absl::Status FuzzGgufModel(FuzzInput data) { return RunGgufModel(data, "model.gguf"); }
absl::Status FuzzFp4Gguf(FuzzInput data) { return RunGgufModel(data, "w4a4.gguf"); }

}  // namespace engine::fuzz
