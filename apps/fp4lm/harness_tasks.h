// The zero-shot tasks of `fp4lm eval --tasks`: which tasks exist, where their files are found,
// and the loaders that turn each file schema of ../shared/README.md into lm-evaluation-harness
// requests (context, " " + choice), with lm-eval's templates and preprocessing.
#ifndef FP4LM_APPS_FP4LM_HARNESS_TASKS_H_
#define FP4LM_APPS_FP4LM_HARNESS_TASKS_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace fp4lm {

// How a task's items are scored.
enum class TaskScoring {
  // One request per choice, argmax of the summed log-likelihood (acc) and of the sum divided by
  // the choice's length in characters (acc_norm). WinoGrande is this too, with one context per
  // choice and a shared continuation (partial evaluation).
  kMultipleChoice,
  // One request per item: acc = every continuation token is the greedy argmax; and perplexity
  // exp(-mean log-likelihood) (lambada_openai).
  kGreedyContinuation,
  // A text scored in non-overlapping windows (WikiText-2); see perplexity.h.
  kPerplexity,
};

struct TaskSpec {
  std::string_view name;     // "piqa", as lm-eval names the task
  std::string_view display;  // "PIQA", for tables
  TaskScoring scoring;
  bool has_acc_norm;  // lm-eval's task YAML lists acc_norm
  // Files looked for under --data-dir, in order: "piqa/valid.jsonl", ...
  std::span<const std::string_view> candidates;
};

// Every task, in the order of the tables: piqa, hellaswag, arc_easy, arc_challenge, boolq,
// winogrande, lambada_openai, openbookqa, wikitext2.
std::span<const TaskSpec> AllTasks();
// nullptr for an unknown name.
const TaskSpec* FindTask(std::string_view name);

// One (context, continuation) pair as lm-eval's construct_requests builds it, before
// _encode_pair moves whitespace: continuation = target delimiter " " + choice.
struct Request {
  std::string context;
  std::string continuation;
};

struct TaskItem {
  int64_t doc = 0;                // 0-based record (line) index in the file
  std::vector<Request> requests;  // one per choice; one for kGreedyContinuation
  // lm-eval's doc_to_choice: acc_norm divides by their lengths in characters (code points).
  // For WinoGrande these are the two contexts, as in lm-eval (acc_norm is not reported there).
  std::vector<std::string> choices;
  int32_t gold = 0;  // index into requests
};

struct Task {
  const TaskSpec* spec = nullptr;
  std::string file;
  std::string schema;           // which schema was read, e.g. "{goal, sol1, sol2} + labels"
  std::vector<TaskItem> items;  // empty for kPerplexity
  std::string text;             // kPerplexity: the text to score
};

// A task and the file to read it from: `name` or `name=FILE` of the --tasks list.
struct TaskRequest {
  const TaskSpec* spec = nullptr;
  std::string file;  // empty: look it up under the data directory
};

// Parses a comma-separated --tasks value. "all" (alone or in the list) means every task; a
// file may be given as name=FILE. InvalidArgument naming the unknown task and the known ones.
absl::StatusOr<std::vector<TaskRequest>> ParseTaskList(std::string_view list);

// The first of `spec.candidates` that exists under `data_dir`, then "<data_dir>/<name>.jsonl";
// NotFound naming every path tried.
absl::StatusOr<std::string> FindTaskFile(const TaskSpec& spec, const std::string& data_dir);

// Reads a task file, detecting its schema from the fields of the first record. `limit` > 0
// keeps the first `limit` items (deterministic --limit). Errors name the file, the record's
// line, the field, what was expected and what was found.
absl::StatusOr<Task> LoadTask(const TaskSpec& spec, const std::string& file, int64_t limit = 0);

// The same from file contents in memory (`file` only names them in messages). PIQA's labels
// come from `labels` when the records carry none (valid-labels.lst beside valid.jsonl).
absl::StatusOr<Task> ParseTask(const TaskSpec& spec, const std::string& file,
                               std::string_view contents, std::string_view labels,
                               int64_t limit = 0);

// lm-eval's hellaswag preprocess(): strip, " [title]" -> ". ", drop "[...]" (not across a
// newline), then one pass of "  " -> " ".
std::string HellaswagPreprocess(std::string_view text);
// Python's str.strip(): removes leading and trailing Unicode whitespace (UTF-8).
std::string_view PyStrip(std::string_view text);
// Python's str.rstrip(): removes trailing Unicode whitespace only.
std::string_view PyRStrip(std::string_view text);
// len() of a Python str: the number of code points of UTF-8 text.
int64_t CodePointCount(std::string_view text);

}  // namespace fp4lm

#endif  // FP4LM_APPS_FP4LM_HARNESS_TASKS_H_
