// Soak test (issue 7; run by scripts/soak, not by ctest): thousands of generate / rewind /
// reset cycles on one Session of a tiny model, with a fresh Session and chat template every few
// hundred cycles, and the process's memory measured after a warm-up and at the end. Buffers
// that grow with use (the KV cache is allocated once; scratch grows to the largest batch) must
// have reached their size during the warm-up, so any later growth is a leak.
//
//   fp4lm_soak [--model PATH] [--cycles N] [--tokens N] [--max-growth-kib N]
//
// Prints the resident set size (VmRSS) and the heap in use (mallinfo2) at start and end; exits
// 1 if either grew by more than --max-growth-kib (default 1024).
#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "engine/engine.h"

namespace {

struct Memory {
  long rss_kib = 0;         // VmRSS of /proc/self/status
  long peak_rss_kib = 0;    // VmHWM
  size_t heap_bytes = 0;    // bytes malloc has handed out and not got back
};

Memory Measure() {
  Memory m;
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {  // "VmRSS:     12345 kB"
    if (line.rfind("VmRSS:", 0) == 0) m.rss_kib = std::atol(line.c_str() + 6);
    if (line.rfind("VmHWM:", 0) == 0) m.peak_rss_kib = std::atol(line.c_str() + 6);
  }
  const struct mallinfo2 info = mallinfo2();
  m.heap_bytes = info.uordblks + info.hblkhd;
  return m;
}

void Print(const char* when, const Memory& m) {
  std::printf("%-22s rss %8ld KiB   peak rss %8ld KiB   heap in use %10zu bytes\n", when,
              m.rss_kib, m.peak_rss_kib, m.heap_bytes);
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "fp4lm_soak: %s\n", what.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_path = FP4LM_SOAK_DEFAULT_MODEL;
  long cycles = 10000, tokens = 16, max_growth_kib = 1024;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--model") {
      model_path = argv[i + 1];
    } else if (flag == "--cycles") {
      cycles = std::atol(argv[i + 1]);
    } else if (flag == "--tokens") {
      tokens = std::atol(argv[i + 1]);
    } else if (flag == "--max-growth-kib") {
      max_growth_kib = std::atol(argv[i + 1]);
    } else {
      return Fail("unknown flag " + std::string(flag));
    }
  }
  const auto start_time = std::chrono::steady_clock::now();
  absl::StatusOr<std::unique_ptr<engine::Model>> model =
      engine::Model::Load({.path = model_path, .num_threads = 1});
  if (!model.ok()) return Fail(model.status().ToString());
  Print("after load", Measure());

  const int32_t capacity = 64;
  std::unique_ptr<engine::Session> session;
  std::mt19937 rng(1234);
  engine::SamplingParams params{.temperature = 0.8f,
                                .max_new_tokens = static_cast<int32_t>(tokens)};
  const std::vector<std::string> prompts = {"Once upon a time", "The little dog", "",
                                            "Lily and Ben went to the park. They"};
  const engine::TokenCallback ignore = [](engine::TokenId, std::string_view) { return true; };
  long generated = 0;
  Memory warm;
  const long warmup = std::min(cycles / 10, 500L);
  for (long cycle = 0; cycle < cycles + warmup; ++cycle) {
    if (cycle == warmup) {
      warm = Measure();
      Print("after warm-up", warm);
    }
    if (cycle % 500 == 0) {  // a fresh Session and chat template now and then
      absl::StatusOr<std::unique_ptr<engine::Session>> s =
          engine::Session::Create(**model, {.max_seq_len = capacity});
      if (!s.ok()) return Fail(s.status().ToString());
      session = *std::move(s);
      absl::StatusOr<std::unique_ptr<engine::ChatTemplate>> chat =
          engine::ChatTemplate::Create(**model, "chatml");
      if (!chat.ok()) return Fail(chat.status().ToString());
    }
    params.seed = static_cast<uint64_t>(cycle);
    std::vector<engine::TokenId> out;
    // Generate: a prompt (continuing the cache when there is room), then sampled tokens.
    absl::Status s =
        session->Generate(prompts[static_cast<size_t>(cycle) % prompts.size()], params, ignore,
                          &out);
    if (absl::IsResourceExhausted(s)) {  // the context filled up: a legitimate end
      s = absl::OkStatus();
    }
    if (!s.ok()) return Fail("cycle " + std::to_string(cycle) + ": " + s.ToString());
    generated += static_cast<long>(out.size());
    // Rewind to a random earlier position and continue from there with Steps.
    const int32_t position = session->position();
    if (position > 1) {
      const int32_t back = std::uniform_int_distribution<int32_t>(1, position - 1)(rng);
      if (absl::Status r = session->Rewind(back); !r.ok()) return Fail(r.ToString());
      const engine::TokenId next[] = {out.empty() ? 1 : out.front()};
      if (absl::Status p = session->Prefill(next); !p.ok()) return Fail(p.ToString());
      for (int i = 0; i < 2 && session->position() < capacity; ++i) {
        absl::StatusOr<engine::TokenId> t = session->Step(params);
        if (!t.ok()) return Fail(t.status().ToString());
        ++generated;
      }
    }
    if (cycle % 3 == 0) session->Reset();
  }
  // Measured with the Session still open, as at the end of the warm-up.
  const Memory end = Measure();
  Print("after the last cycle", end);
  session.reset();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  const long rss_growth = end.rss_kib - warm.rss_kib;
  const long heap_growth_kib =
      (static_cast<long>(end.heap_bytes) - static_cast<long>(warm.heap_bytes)) / 1024;
  std::printf("%ld cycles (+%ld warm-up), %ld tokens generated, %.1f s; growth: rss %+ld KiB, "
              "heap %+ld KiB\n",
              cycles, warmup, generated, seconds, rss_growth, heap_growth_kib);
  if (rss_growth > max_growth_kib || heap_growth_kib > max_growth_kib) {
    std::fprintf(stderr, "fp4lm_soak: memory grew by more than %ld KiB: a leak?\n",
                 max_growth_kib);
    return 1;
  }
  return 0;
}
