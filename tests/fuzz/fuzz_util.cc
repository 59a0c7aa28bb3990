// Helpers shared by the fuzz targets: a private temporary directory for readers that take a
// path, and walks over what a reader returned, so that a bad view or a tokenizer that breaks on
// its first use is found by the fuzzer rather than by the first user of the file.
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "model/loaded_model.h"
#include "tests/fuzz/fuzz_targets.h"
#include "tokenizer/tokenizer.h"

namespace engine::fuzz {
namespace {

void RemoveTempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(FuzzTempDir(), ignored);
}

uint64_t Mix(uint64_t h, const void* data, size_t bytes) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 1099511628211ull;  // FNV-1a
  return h;
}

uint64_t TouchF32(uint64_t h, const model::F32Tensor& t) {
  if (t.empty()) return h;
  return Mix(h, t.data, static_cast<size_t>(t.num_elements()) * sizeof(float));
}

}  // namespace

void InvariantFailed(const char* what, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: fuzz invariant broken: %s\n", file, line, what);
  std::abort();
}

const std::string& FuzzTempDir() {
  static const std::string* dir = [] {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = absl::StrCat(base != nullptr && *base != '\0' ? base : "/tmp",
                                       "/fp4lm_fuzz_XXXXXX");
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::perror("fp4lm fuzz: mkdtemp");
      std::abort();  // test scaffolding, not library code: nothing can run without it
    }
    auto* path = new std::string(pattern);
    std::atexit(RemoveTempDir);
    return path;
  }();
  return *dir;
}

std::string WriteFuzzFile(const std::string& name, std::string_view data) {
  const std::string path = absl::StrCat(FuzzTempDir(), "/", name);
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "fp4lm fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path;
}

uint64_t TouchWeights(const model::LoadedModel& m) {
  const model::ModelWeights& w = m.weights;
  uint64_t h = 14695981039346656037ull;
  h = TouchF32(h, w.token_embedding);
  h = TouchF32(h, w.final_norm);
  h = TouchF32(h, w.output);
  for (const model::LayerWeights& l : w.layers) {
    for (const model::F32Tensor* t : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.bq, &l.bk, &l.bv,
                                      &l.wo, &l.ffn_norm, &l.w_gate, &l.w_up, &l.w_down}) {
      h = TouchF32(h, *t);
    }
  }
  for (const model::Fp4LayerWeights& l : w.fp4.layers) {
    for (const model::Fp4Linear* lin : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up,
                                        &l.w_down}) {
      if (lin->empty()) continue;
      h = Mix(h, lin->codes, static_cast<size_t>(lin->code_bytes()));
      h = Mix(h, lin->row_scale, static_cast<size_t>(lin->out_features) * sizeof(float));
      if (lin->bias != nullptr) {
        h = Mix(h, lin->bias, static_cast<size_t>(lin->out_features) * sizeof(float));
      }
    }
  }
  const model::Fp4Sink& sink = w.fp4.sink;
  if (!sink.empty()) {
    const size_t kv = static_cast<size_t>(m.config.n_layers) * m.config.kv_dim();
    h = Mix(h, sink.keys, kv * sizeof(float));
    h = Mix(h, sink.values, kv * sizeof(float));
    h = Mix(h, sink.logits, static_cast<size_t>(m.config.vocab_size) * sizeof(float));
  }
  return h;
}

void ExerciseTokenizer(const tokenizer::Tokenizer& tok) {
  auto note = [](const absl::Status& s) { s.IgnoreError(); };
  constexpr std::string_view kTexts[] = {
      "", "Hello world", "  two  spaces\n\tand tabs ", "caf\xC3\xA9 \xE2\x96\x81 \xF0\x9F\x98\x80",
      "<s>x</s><|im_start|>user\n<|im_end|>", "12345 67.89 don't", "\xFF\xFE invalid"};
  std::vector<tokenizer::TokenId> all;
  for (const std::string_view text : kTexts) {
    for (const bool special : {false, true}) {
      absl::StatusOr<std::vector<tokenizer::TokenId>> ids =
          tok.Encode(text, {.add_bos = special, .parse_special = special});
      note(ids.status());
      if (!ids.ok()) continue;
      note(tok.Decode(*ids).status());
      all.insert(all.end(), ids->begin(), ids->end());
    }
  }
  // Every token of a small vocabulary (and the ends of a large one), plus ids outside it.
  const int32_t n = tok.vocab_size();
  for (int32_t id = 0; id < n; ++id) {
    if (id == 512 && n > 1024) id = n - 512;
    all.push_back(id);
  }
  for (const tokenizer::TokenId bad : {-1, n, n + 1000}) {
    note(tok.Decode(std::vector<tokenizer::TokenId>{bad}).status());
    (void)tok.IsControl(bad);
    (void)tok.IsEndOfGeneration(bad);
  }
  note(tok.Decode(all).status());
  tokenizer::TextStreamer streamer(tok);
  tokenizer::TokenId previous = -1;
  for (const tokenizer::TokenId id : all) {
    note(streamer.Push(id).status());
    note(tok.TokenBytes(previous, id).status());
    previous = id;
  }
  (void)streamer.Flush();
  (void)tok.FindSpecialToken("<|im_end|>");
}

}  // namespace engine::fuzz
