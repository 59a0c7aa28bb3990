#include "fp4lm/sampling_flags.h"

namespace fp4lm {

void AddSamplingFlags(ArgParser& parser, engine::SamplingParams& sampling) {
  parser.AddFloat("temp", 0, &sampling.temperature, "T", "temperature; 0 = greedy").AtLeast(0);
  parser.AddInt("top-k", 0, &sampling.top_k, "K", "keep the K most likely tokens; 0 = off")
      .AtLeast(0);
  parser.AddFloat("top-p", 0, &sampling.top_p, "P", "nucleus probability mass; 1 = off")
      .AtLeast(0)
      .AtMost(1);
  parser
      .AddFloat("min-p", 0, &sampling.min_p, "P",
                "drop tokens below P times the top probability; 0 = off")
      .AtLeast(0)
      .AtMost(1);
  parser
      .AddFloat("repeat-penalty", 0, &sampling.repeat_penalty, "R",
                "penalty for tokens among the last repeat-last-n; 1 = off")
      .Above(0);
  parser
      .AddInt("repeat-last-n", 0, &sampling.repeat_last_n, "N",
              "window of the repetition penalty; -1 = all, 0 = off")
      .AtLeast(-1);
}

}  // namespace fp4lm
