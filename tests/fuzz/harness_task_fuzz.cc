// Fuzz target: a task file of the zero-shot eval harness (JSON lines in any of the schemas of
// ../shared/README.md, or raw WikiText). Input: one byte choosing the task (and so the loader
// and its schema detection), one byte choosing --limit (low bits) and a .raw instead of a
// .jsonl file name (bit 7), then the file; a NUL byte splits off a PIQA labels file.
#include "fp4lm/harness_tasks.h"
#include "tests/fuzz/fuzz_targets.h"

namespace engine::fuzz {

absl::Status FuzzHarnessTask(FuzzInput data) {
  if (data.size() < 2) return absl::InvalidArgumentError("too short");
  const std::span<const fp4lm::TaskSpec> tasks = fp4lm::AllTasks();
  const fp4lm::TaskSpec& spec = tasks[data[0] % tasks.size()];
  const int64_t limit = data[1] % 4;
  std::string_view contents = AsText(data.subspan(2));
  std::string_view labels;
  if (const size_t nul = contents.find('\0'); nul != std::string_view::npos) {
    labels = contents.substr(nul + 1);
    contents = contents.substr(0, nul);
  }
  const std::string file = (data[1] & 0x80) != 0 ? "fuzz.raw" : "fuzz.jsonl";
  absl::StatusOr<fp4lm::Task> task = fp4lm::ParseTask(spec, file, contents, labels, limit);
  if (!task.ok()) return task.status();
  FP4LM_FUZZ_INVARIANT(limit == 0 || static_cast<int64_t>(task->items.size()) <= limit);
  for (const fp4lm::TaskItem& item : task->items) {
    FP4LM_FUZZ_INVARIANT(item.gold >= 0 &&
                         static_cast<size_t>(item.gold) < item.requests.size());
    FP4LM_FUZZ_INVARIANT(spec.scoring != fp4lm::TaskScoring::kMultipleChoice ||
                         item.choices.size() == item.requests.size());
    for (const std::string& c : item.choices) (void)fp4lm::CodePointCount(c);
  }
  (void)fp4lm::HellaswagPreprocess(contents);
  (void)fp4lm::PyStrip(contents);
  return absl::OkStatus();
}

}  // namespace engine::fuzz
