// Fuzz target: the GGUF container alone, parsed in place from the fuzzer's buffer (so every
// tensor view it hands out is checked by AddressSanitizer against the real input), then every
// metadata value read back through every typed getter.
#include "model/gguf_file.h"
#include "tests/fuzz/fuzz_targets.h"

namespace engine::fuzz {

absl::Status FuzzGguf(FuzzInput data) {
  absl::StatusOr<model::gguf::GgufFile> file = model::gguf::ParseGguf(data, "fuzz.gguf");
  if (!file.ok()) return file.status();
  for (const model::gguf::GgufKv& kv : file->kvs) {
    (void)file->GetString(kv.key);
    (void)file->GetInt(kv.key);
    (void)file->GetFloat(kv.key);
    (void)file->GetBool(kv.key);
    (void)file->GetStringArray(kv.key);
    (void)file->GetIntArray(kv.key);
    (void)file->GetFloatArray(kv.key);
    (void)file->GetBytes(kv.key);
  }
  uint64_t sum = 0;
  for (const model::gguf::GgufTensorInfo& t : file->tensors) {
    (void)t.type_name();
    (void)t.shape();
    for (const uint8_t b : model::gguf::TensorBytes(*file, t, data)) sum += b;
  }
  (void)sum;
  return absl::OkStatus();
}

}  // namespace engine::fuzz
