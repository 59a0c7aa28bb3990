// embed: the smallest program built on libengine as an installed library. It loads a model,
// generates greedily from BOS while a callback streams the text, and reads the next-token
// logits after BOS. Only the public headers (engine/engine.h) are used.
//
//   embed MODEL [N]   prints "version V", the text, "tokens: ...", "after BOS: argmax T logit L"
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/engine.h"

namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "embed: %s\n", std::string(status.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: embed MODEL [N]\n");
    return 2;
  }
  const int n = argc > 2 ? std::atoi(argv[2]) : 20;
  std::printf("version %s\n", engine::Version());

  absl::StatusOr<std::unique_ptr<engine::Model>> model = engine::Model::Load({.path = argv[1]});
  if (!model.ok()) return Fail(model.status());
  // One Model can serve many Sessions (one per thread); this program needs one.
  absl::StatusOr<std::unique_ptr<engine::Session>> session = engine::Session::Create(**model);
  if (!session.ok()) return Fail(session.status());

  // Generate: an empty prompt means BOS alone; temperature 0 is greedy.
  engine::SamplingParams params;
  params.temperature = 0.0f;
  params.max_new_tokens = n;
  std::vector<engine::TokenId> tokens;
  std::printf("text: ");
  const absl::Status generated = (*session)->Generate(
      "", params,
      [](engine::TokenId, std::string_view piece) {
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        return true;  // false would stop generation (Generate then returns CancelledError)
      },
      &tokens);
  if (!generated.ok()) return Fail(generated);
  std::printf("\ntokens:");
  for (const engine::TokenId t : tokens) std::printf(" %d", t);
  std::printf("\n");

  // Logits: start over, feed BOS, read the next-token distribution (a view valid until the
  // session changes).
  (*session)->Reset();
  const engine::TokenId bos[1] = {(*model)->info().bos_id};
  if (const absl::Status s = (*session)->Prefill(bos); !s.ok()) return Fail(s);
  const std::span<const float> logits = (*session)->Logits();
  size_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  std::printf("after BOS: argmax %zu logit %.6f of %zu\n", best, logits[best], logits.size());
  return 0;
}
