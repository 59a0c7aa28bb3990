// The output of `fp4lm eval --tasks`: a markdown summary with one column per model and the gap
// to the first (the layout of the papers' tables), the two paper averages, and a JSON document
// with every item's log-likelihoods for --json FILE.
#ifndef FP4LM_APPS_FP4LM_HARNESS_REPORT_H_
#define FP4LM_APPS_FP4LM_HARNESS_REPORT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fp4lm/harness.h"
#include "fp4lm/harness_tasks.h"
#include "fp4lm/perplexity.h"

namespace fp4lm {

struct ModelColumn {
  std::string path;
  std::string weight_format;  // ModelInfo::weight_format
  std::string tokenizer;      // ModelInfo::tokenizer
  bool adds_bos = false;      // the requests start with BOS (under the BOS policy in use)
  // W4A4 only: the stored attention sink ("token 1 in full precision") and whether sessions
  // put it in front of requests that do not start with it; "" for none.
  std::string sink;
  bool sink_prefix = false;
};

// One task evaluated on every model (runs or perplexity, by the task's scoring).
struct TaskOutcome {
  Task task;
  std::vector<TaskRun> runs;           // per model, for item tasks
  std::vector<EvalResult> perplexity;  // per model, for WikiText-2
};

struct HarnessReport {
  std::vector<ModelColumn> models;
  std::vector<TaskOutcome> tasks;
  std::vector<std::string> skipped;  // "arc_challenge (no file: looked for ...)"
  std::string data_dir;
  int64_t limit = 0;   // 0 = all items
  std::string bos;     // "auto" / "always" / "never"
  int32_t window = 0;  // the log-likelihood window (lm-eval max_length)
  double total_seconds = 0.0;
};

// "PIQA acc 67.52 ± 1.09" tables etc. (see the file comment). Percentages with two decimals.
std::string FormatMarkdown(const HarnessReport& report);
// The JSON document of --json FILE: models, settings, per task the metrics per model and per
// item the gold index, each choice's log-likelihood, token count and greedy flag per model.
std::string FormatJson(const HarnessReport& report);

}  // namespace fp4lm

#endif  // FP4LM_APPS_FP4LM_HARNESS_REPORT_H_
