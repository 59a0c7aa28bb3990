// The table of fuzz targets: its names are the directories of corpus/ and regressions/.
#include "tests/fuzz/fuzz_targets.h"

namespace engine::fuzz {

std::span<const FuzzTarget> AllFuzzTargets() {
  static constexpr FuzzTarget kTargets[] = {
      {"llama2c", FuzzLlama2c},
      {"safetensors", FuzzSafetensors},
      {"hf_config", FuzzHfConfig},
      {"gguf", FuzzGguf},
      {"gguf_model", FuzzGgufModel},
      {"fp4_gguf", FuzzFp4Gguf},
      {"tokenizer_json", FuzzTokenizerJson},
      {"tokenizer_bin", FuzzTokenizerBin},
      {"spm_model", FuzzSpmModel},
      {"chat_template", FuzzChatTemplate},
      {"harness_task", FuzzHarnessTask},
  };
  return kTargets;
}

}  // namespace engine::fuzz
