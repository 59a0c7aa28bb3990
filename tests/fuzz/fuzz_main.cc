// The libFuzzer entry point of one fuzz target: FP4LM_FUZZ_ENTRY names which of
// fuzz_targets.h's functions this binary runs (tests/fuzz/CMakeLists.txt sets it per binary).
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_targets.h"

#ifndef FP4LM_FUZZ_ENTRY
#error "define FP4LM_FUZZ_ENTRY to the engine::fuzz function this fuzzer runs"
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)engine::fuzz::FP4LM_FUZZ_ENTRY(engine::fuzz::FuzzInput(data, size));
  return 0;
}
