// The entry points of fp4lm's fuzz targets, one per kind of untrusted input. Each libFuzzer
// binary (tests/fuzz/fuzz_main.cc) calls exactly one of them; the regression test
// (tests/fuzz/fuzz_regressions_test.cc) calls them on every saved input, so the normal and the
// sanitizer test builds replay what the fuzzers once found.
#ifndef FP4LM_TESTS_FUZZ_FUZZ_TARGETS_H_
#define FP4LM_TESTS_FUZZ_FUZZ_TARGETS_H_

#include <cstdint>
#include <ostream>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace engine::model {
struct LoadedModel;
}
namespace engine::tokenizer {
class Tokenizer;
}

namespace engine::fuzz {

using FuzzInput = std::span<const uint8_t>;

// Each returns the status of the reader it fuzzes. Any status is fine; a crash, a sanitizer
// report, a leak or an abort is a bug. Inputs are described in the .cc files.
absl::Status FuzzLlama2c(FuzzInput data);        // llama2.c checkpoint via LoadModelFile
absl::Status FuzzSafetensors(FuzzInput data);    // model.safetensors of a Hugging Face dir
absl::Status FuzzHfConfig(FuzzInput data);       // config.json
absl::Status FuzzGguf(FuzzInput data);           // the GGUF container (ParseGguf + getters)
absl::Status FuzzGgufModel(FuzzInput data);      // a GGUF llama model + its vocabulary
absl::Status FuzzFp4Gguf(FuzzInput data);        // fp4lm's W4A4 GGUF file
absl::Status FuzzTokenizerJson(FuzzInput data);  // Hugging Face tokenizer.json
absl::Status FuzzTokenizerBin(FuzzInput data);   // llama2.c tokenizer.bin
absl::Status FuzzSpmModel(FuzzInput data);       // SentencePiece tokenizer.model
absl::Status FuzzChatTemplate(FuzzInput data);   // Jinja chat template + a conversation
absl::Status FuzzHarnessTask(FuzzInput data);    // eval harness task file (.jsonl / text)

struct FuzzTarget {
  std::string_view name;  // the corpus and regression directory name
  absl::Status (*run)(FuzzInput data);
};
inline void PrintTo(const FuzzTarget& t, std::ostream* os) { *os << t.name; }

std::span<const FuzzTarget> AllFuzzTargets();

// ---- Helpers shared by the targets ----

// A private temporary directory of this process (created on first use, removed at exit).
const std::string& FuzzTempDir();
// Writes `data` to FuzzTempDir()/`name` (replacing it) and returns the path.
std::string WriteFuzzFile(const std::string& name, std::string_view data);
// Reads every element of every weight view of a loaded model (so a view that reaches past its
// storage is a sanitizer report or a crash here, not later in a forward pass) and returns a
// checksum of the bits, which the caller ignores.
uint64_t TouchWeights(const model::LoadedModel& model);
// Encodes and decodes a few fixed texts (valid and invalid UTF-8, special-token text) and every
// token (up to a bound, and ids outside the vocabulary) with `tok`, streams them too. Errors are
// expected and ignored; crashes are the bugs.
void ExerciseTokenizer(const tokenizer::Tokenizer& tok);
// An invariant the reader promises about what it returned: broken means a bug, which the
// fuzzer must see as a crash.
#define FP4LM_FUZZ_INVARIANT(cond)                                                  \
  do {                                                                              \
    if (!(cond)) ::engine::fuzz::InvariantFailed(#cond, __FILE__, __LINE__);        \
  } while (0)
[[noreturn]] void InvariantFailed(const char* what, const char* file, int line);

inline std::string_view AsText(FuzzInput data) {
  return {reinterpret_cast<const char*>(data.data()), data.size()};
}

}  // namespace engine::fuzz

#endif  // FP4LM_TESTS_FUZZ_FUZZ_TARGETS_H_
