// Task files -> lm-evaluation-harness requests (see harness_tasks.h). Each loader reproduces
// one task YAML of lm-eval 0.4 (lm_eval/tasks/*: doc_to_text, doc_to_choice, target_delimiter
// " ") from the record schemas in ../shared/README.md and the Hugging Face originals.
#include "fp4lm/harness_tasks.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace fp4lm {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kPiqaFiles[] = {"piqa/valid.jsonl", "piqa/piqa.jsonl",
                                           "piqa/piqa_mosaicml.jsonl"};
constexpr std::string_view kHellaswagFiles[] = {"hellaswag/hellaswag_val_full.jsonl",
                                                "hellaswag/hellaswag.jsonl"};
constexpr std::string_view kArcEasyFiles[] = {"arc_easy/arc_easy.jsonl"};
constexpr std::string_view kArcChallengeFiles[] = {"arc_challenge/arc_challenge.jsonl"};
constexpr std::string_view kBoolqFiles[] = {"boolq/boolq.jsonl"};
constexpr std::string_view kWinograndeFiles[] = {"winogrande/winogrande.jsonl"};
constexpr std::string_view kLambadaFiles[] = {"lambada_openai/lambada_openai.jsonl",
                                              "lambada/lambada_openai.jsonl"};
constexpr std::string_view kOpenbookqaFiles[] = {"openbookqa/openbookqa.jsonl",
                                                 "openbookqa/openbook_qa.jsonl"};
constexpr std::string_view kWikitextFiles[] = {"wikitext2/wiki.test.raw",
                                               "wikitext2/wikitext2_test_rows.jsonl"};

constexpr TaskSpec kTasks[] = {
    {"piqa", "PIQA", TaskScoring::kMultipleChoice, true, kPiqaFiles},
    {"hellaswag", "HellaSwag", TaskScoring::kMultipleChoice, true, kHellaswagFiles},
    {"arc_easy", "ARC-e", TaskScoring::kMultipleChoice, true, kArcEasyFiles},
    {"arc_challenge", "ARC-c", TaskScoring::kMultipleChoice, true, kArcChallengeFiles},
    {"boolq", "BoolQ", TaskScoring::kMultipleChoice, false, kBoolqFiles},
    {"winogrande", "WinoGrande", TaskScoring::kMultipleChoice, false, kWinograndeFiles},
    {"lambada_openai", "LAMBADA", TaskScoring::kGreedyContinuation, false, kLambadaFiles},
    {"openbookqa", "OBQA", TaskScoring::kMultipleChoice, true, kOpenbookqaFiles},
    {"wikitext2", "WikiText-2", TaskScoring::kPerplexity, false, kWikitextFiles},
};

// lm-eval's default target_delimiter.
constexpr std::string_view kDelimiter = " ";

std::string Str(std::string_view s) { return std::string(s); }
absl::string_view Abs(std::string_view s) { return absl::string_view(s.data(), s.size()); }

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}
bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool FileExists(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return static_cast<bool>(in);
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot open ", Abs(what), " '", path, "': ", std::strerror(errno)));
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad())
    return absl::DataLossError(absl::StrCat("error reading ", Abs(what), " '", path, "'"));
  return buffer.str();
}

// Decodes the code point starting at text[i]; sets `len` to its byte length (1 for a byte
// that does not start valid UTF-8, which is then returned as is).
uint32_t DecodeAt(std::string_view text, size_t i, size_t* len) {
  const auto b0 = static_cast<unsigned char>(text[i]);
  auto cont = [&](size_t k) {
    return i + k < text.size() && (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
  };
  auto byte = [&](size_t k) { return static_cast<uint32_t>(text[i + k]) & 0x3F; };
  if (b0 < 0x80) {
    *len = 1;
    return b0;
  }
  if ((b0 & 0xE0) == 0xC0 && cont(1)) {
    *len = 2;
    return ((b0 & 0x1Fu) << 6) | byte(1);
  }
  if ((b0 & 0xF0) == 0xE0 && cont(1) && cont(2)) {
    *len = 3;
    return ((b0 & 0x0Fu) << 12) | (byte(1) << 6) | byte(2);
  }
  if ((b0 & 0xF8) == 0xF0 && cont(1) && cont(2) && cont(3)) {
    *len = 4;
    return ((b0 & 0x07u) << 18) | (byte(1) << 12) | (byte(2) << 6) | byte(3);
  }
  *len = 1;
  return b0;
}

// Python's str.isspace() (the characters str.strip() removes).
bool IsPyWhitespace(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

std::string ReplaceAll(std::string_view text, std::string_view from, std::string_view to) {
  std::string out;
  size_t pos = 0;
  while (true) {
    const size_t hit = text.find(from, pos);
    if (hit == std::string_view::npos) break;
    out.append(text.substr(pos, hit - pos));
    out.append(to);
    pos = hit + from.size();
  }
  out.append(text.substr(pos));
  return out;
}

// Python's str.capitalize() for ASCII letters: first upper, the rest lower. (Python also maps
// non-ASCII letters; the hellaswag ctx_b it is applied to is ASCII in practice.)
std::string Capitalize(std::string_view text) {
  std::string out(text);
  for (size_t i = 0; i < out.size(); ++i) {
    const char c = out[i];
    if (i == 0 && c >= 'a' && c <= 'z') out[i] = static_cast<char>(c - 'a' + 'A');
    if (i > 0 && c >= 'A' && c <= 'Z') out[i] = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// "Question: {q}\nAnswer:" from a query that may already carry either part (the MosaicML
// files store "Question: ..." or "Question: ...\n" without "Answer:").
std::string QuestionAnswerContext(std::string_view query) {
  std::string out =
      StartsWith(query, "Question:") ? Str(query) : absl::StrCat("Question: ", Abs(query));
  if (EndsWith(out, "Answer:")) return out;
  if (!EndsWith(out, "\n")) out += "\n";
  return out + "Answer:";
}

// --- One JSON record -------------------------------------------------------------------

class Record {
 public:
  Record(const Json& json, const std::string& file, int64_t line)
      : json_(json), file_(file), line_(line) {}

  bool Has(const char* key) const { return json_.contains(key); }

  absl::Status Error(std::string_view message) const {
    return absl::InvalidArgumentError(absl::StrCat(file_, ":", line_, ": ", Abs(message)));
  }

  absl::StatusOr<std::string> String(const char* key) const {
    if (!json_.contains(key)) return Error(absl::StrCat("missing field '", key, "'"));
    const Json& v = json_[key];
    if (!v.is_string()) {
      return Error(absl::StrCat("field '", key, "': expected a string, found ", v.type_name()));
    }
    return v.get<std::string>();
  }

  absl::StatusOr<std::vector<std::string>> Strings(const char* key) const {
    if (!json_.contains(key)) return Error(absl::StrCat("missing field '", key, "'"));
    return StringsOf(json_[key], key);
  }

  absl::StatusOr<std::vector<std::string>> StringsOf(const Json& v, std::string_view key) const {
    if (!v.is_array() || v.empty()) {
      return Error(absl::StrCat("field '", Abs(key),
                                "': expected a non-empty array of strings, found ",
                                v.is_array() ? "an empty array" : v.type_name()));
    }
    std::vector<std::string> out;
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_string()) {
        return Error(absl::StrCat("field '", Abs(key), "'[", i, "]: expected a string, found ",
                                  v[i].type_name()));
      }
      out.push_back(v[i].get<std::string>());
    }
    return out;
  }

  // An integer label, also accepted as a decimal string ("1") the way HF datasets store them.
  absl::StatusOr<int64_t> Int(const char* key) const {
    if (!json_.contains(key)) return Error(absl::StrCat("missing field '", key, "'"));
    const Json& v = json_[key];
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_string()) {
      const std::string s = v.get<std::string>();
      if (!s.empty() && s.size() < 10 && std::all_of(s.begin(), s.end(), ::isdigit)) {
        return std::stoll(s);
      }
    }
    return Error(absl::StrCat(
        "field '", key, "': expected an integer, found ",
        v.is_string() ? absl::StrCat("'", v.get<std::string>(), "'") : std::string(v.type_name())));
  }

  const Json& json() const { return json_; }

 private:
  const Json& json_;
  const std::string& file_;
  int64_t line_;
};

absl::Status CheckGold(const Record& r, int64_t gold, size_t n_choices) {
  if (gold < 0 || static_cast<size_t>(gold) >= n_choices) {
    return r.Error(absl::StrCat("gold label ", gold, " is outside the ", n_choices, " choices"));
  }
  return absl::OkStatus();
}

// An item whose choices all follow the same context.
absl::StatusOr<TaskItem> SharedContextItem(const Record& r, std::string context,
                                           std::vector<std::string> choices, int64_t gold) {
  if (absl::Status s = CheckGold(r, gold, choices.size()); !s.ok()) return s;
  TaskItem item;
  item.gold = static_cast<int32_t>(gold);
  for (const std::string& choice : choices) {
    item.requests.push_back(Request{context, absl::StrCat(Abs(kDelimiter), choice)});
  }
  item.choices = std::move(choices);
  return item;
}

// HF {choices: {text: [...], label: [...]}, answerKey} (ARC, OpenBookQA).
absl::StatusOr<std::pair<std::vector<std::string>, int64_t>> LabelledChoices(const Record& r) {
  // operator[] of a const json on a missing key is undefined behaviour (found by fuzzing).
  if (!r.Has("choices")) return r.Error("missing field 'choices'");
  const Json& c = r.json()["choices"];
  if (!c.is_object() || !c.contains("text") || !c.contains("label")) {
    return r.Error("field 'choices': expected {text: [...], label: [...]}");
  }
  absl::StatusOr<std::vector<std::string>> text = r.StringsOf(c["text"], "choices.text");
  if (!text.ok()) return text.status();
  absl::StatusOr<std::vector<std::string>> labels = r.StringsOf(c["label"], "choices.label");
  if (!labels.ok()) return labels.status();
  absl::StatusOr<std::string> key = r.String("answerKey");
  if (!key.ok()) return key.status();
  // openbookqa's YAML strips the key (answerKey.lstrip()).
  const std::string k = Str(PyStrip(*key));
  const auto it = std::find(labels->begin(), labels->end(), k);
  if (it == labels->end() || labels->size() != text->size()) {
    return r.Error(
        absl::StrCat("answerKey '", k, "' is not one of the ", labels->size(), " choice labels"));
  }
  return std::make_pair(*std::move(text), static_cast<int64_t>(it - labels->begin()));
}

// ARC files padded 3-choice questions to 4 by repeating a choice; lm-eval sees the original
// 3. Dropping later copies restores them (the gold text maps to its first occurrence).
void DropDuplicateChoices(std::vector<std::string>& choices, int64_t& gold) {
  const std::string gold_text = choices[gold];
  std::vector<std::string> unique;
  for (std::string& c : choices) {
    if (std::find(unique.begin(), unique.end(), c) == unique.end()) unique.push_back(std::move(c));
  }
  choices = std::move(unique);
  gold = std::find(choices.begin(), choices.end(), gold_text) - choices.begin();
}

// --- Per-task record parsers -----------------------------------------------------------

struct Parsed {
  absl::StatusOr<TaskItem> item;
  std::string schema;
};

using ParseFn =
    std::function<Parsed(const Record&, int64_t index, std::span<const int64_t> labels)>;

Parsed ParsePiqa(const Record& r, int64_t index, std::span<const int64_t> labels) {
  if (r.Has("goal")) {
    const std::string schema = "{goal, sol1, sol2} + labels (original PIQA)";
    absl::StatusOr<std::string> goal = r.String("goal");
    absl::StatusOr<std::string> sol1 = r.String("sol1");
    absl::StatusOr<std::string> sol2 = r.String("sol2");
    if (!goal.ok()) return {goal.status(), schema};
    if (!sol1.ok()) return {sol1.status(), schema};
    if (!sol2.ok()) return {sol2.status(), schema};
    int64_t gold = 0;
    if (r.Has("label")) {
      absl::StatusOr<int64_t> label = r.Int("label");
      if (!label.ok()) return {label.status(), schema};
      gold = *label;
    } else if (index < static_cast<int64_t>(labels.size())) {
      gold = labels[index];
    } else {
      return {r.Error(absl::StrCat("no 'label' field and no line ", index + 1,
                                   " in the labels file (valid-labels.lst beside the .jsonl)")),
              schema};
    }
    // lm-eval: "Question: {{goal}}\nAnswer:", choices [sol1, sol2] unstripped.
    return {
        SharedContextItem(r, absl::StrCat("Question: ", *goal, "\nAnswer:"), {*sol1, *sol2}, gold),
        schema};
  }
  const std::string schema = "{query, choices, gold} (MosaicML; choices whitespace-stripped)";
  absl::StatusOr<std::string> query = r.String("query");
  absl::StatusOr<std::vector<std::string>> choices = r.Strings("choices");
  absl::StatusOr<int64_t> gold = r.Int("gold");
  if (!query.ok()) return {query.status(), schema};
  if (!choices.ok()) return {choices.status(), schema};
  if (!gold.ok()) return {gold.status(), schema};
  return {SharedContextItem(r, QuestionAnswerContext(*query), *choices, *gold), schema};
}

Parsed ParseHellaswag(const Record& r, int64_t, std::span<const int64_t>) {
  std::string context;
  std::string schema;
  std::vector<std::string> endings;
  int64_t gold = 0;
  if (r.Has("ctx_a")) {
    schema = "{activity_label, ctx_a, ctx_b, endings, label} (Hugging Face)";
    absl::StatusOr<std::string> activity = r.String("activity_label");
    absl::StatusOr<std::string> ctx_a = r.String("ctx_a");
    absl::StatusOr<std::string> ctx_b = r.String("ctx_b");
    if (!activity.ok()) return {activity.status(), schema};
    if (!ctx_a.ok()) return {ctx_a.status(), schema};
    if (!ctx_b.ok()) return {ctx_b.status(), schema};
    // lm-eval's process_docs: preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize()).
    context = HellaswagPreprocess(absl::StrCat(*activity, ": ", *ctx_a, " ", Capitalize(*ctx_b)));
  } else {
    schema = "{query, endings, label} (query preprocessed, endings raw)";
    absl::StatusOr<std::string> query = r.String("query");
    if (!query.ok()) return {query.status(), schema};
    context = *std::move(query);
  }
  const char* endings_key = r.Has("endings") ? "endings" : "choices";
  absl::StatusOr<std::vector<std::string>> raw = r.Strings(endings_key);
  if (!raw.ok()) return {raw.status(), schema};
  for (const std::string& e : *raw) endings.push_back(HellaswagPreprocess(e));
  absl::StatusOr<int64_t> label = r.Int(r.Has("label") ? "label" : "gold");
  if (!label.ok()) return {label.status(), schema};
  gold = *label;
  return {SharedContextItem(r, context, std::move(endings), gold), schema};
}

Parsed ParseArc(const Record& r, int64_t, std::span<const int64_t>) {
  if (r.Has("question")) {
    const std::string schema = "{question, choices {text, label}, answerKey} (Hugging Face)";
    absl::StatusOr<std::string> question = r.String("question");
    if (!question.ok()) return {question.status(), schema};
    auto choices = LabelledChoices(r);
    if (!choices.ok()) return {choices.status(), schema};
    return {SharedContextItem(r, absl::StrCat("Question: ", *question, "\nAnswer:"), choices->first,
                              choices->second),
            schema};
  }
  const std::string schema = "{query, choices, gold}";
  absl::StatusOr<std::string> query = r.String("query");
  absl::StatusOr<std::vector<std::string>> choices = r.Strings("choices");
  absl::StatusOr<int64_t> gold = r.Int("gold");
  if (!query.ok()) return {query.status(), schema};
  if (!choices.ok()) return {choices.status(), schema};
  if (!gold.ok()) return {gold.status(), schema};
  if (absl::Status s = CheckGold(r, *gold, choices->size()); !s.ok()) return {s, schema};
  DropDuplicateChoices(*choices, *gold);
  return {SharedContextItem(r, QuestionAnswerContext(*query), *choices, *gold), schema};
}

Parsed ParseBoolq(const Record& r, int64_t, std::span<const int64_t>) {
  if (r.Has("passage")) {
    const std::string schema = "{passage, question, label} (SuperGLUE)";
    absl::StatusOr<std::string> passage = r.String("passage");
    absl::StatusOr<std::string> question = r.String("question");
    if (!passage.ok()) return {passage.status(), schema};
    if (!question.ok()) return {question.status(), schema};
    int64_t gold = 0;
    if (r.Has("label")) {
      absl::StatusOr<int64_t> label = r.Int("label");
      if (!label.ok()) return {label.status(), schema};
      gold = *label;
    } else if (r.Has("answer") && r.json()["answer"].is_boolean()) {
      gold = r.json()["answer"].get<bool>() ? 1 : 0;
    } else {
      return {r.Error("expected an integer 'label' or a boolean 'answer'"), schema};
    }
    return {SharedContextItem(r, absl::StrCat(*passage, "\nQuestion: ", *question, "?\nAnswer:"),
                              {"no", "yes"}, gold),
            schema};
  }
  const std::string schema = "{query: \"Passage: ...\\nQuestion: ...?\", choices, gold}";
  absl::StatusOr<std::string> query = r.String("query");
  absl::StatusOr<std::vector<std::string>> choices = r.Strings("choices");
  absl::StatusOr<int64_t> gold = r.Int("gold");
  if (!query.ok()) return {query.status(), schema};
  if (!choices.ok()) return {choices.status(), schema};
  if (!gold.ok()) return {gold.status(), schema};
  // lm-eval's "{{passage}}\nQuestion: {{question}}?\nAnswer:" has no "Passage: " label.
  std::string context(StartsWith(*query, "Passage: ") ? query->substr(9) : *query);
  if (!EndsWith(context, "Answer:")) context += "\nAnswer:";
  return {SharedContextItem(r, std::move(context), *choices, *gold), schema};
}

Parsed ParseWinogrande(const Record& r, int64_t, std::span<const int64_t>) {
  std::vector<std::string> contexts;
  std::string continuation;
  int64_t gold = 0;
  std::string schema;
  if (r.Has("sentence")) {
    schema = "{sentence, option1, option2, answer} (Hugging Face)";
    absl::StatusOr<std::string> sentence = r.String("sentence");
    absl::StatusOr<std::string> option1 = r.String("option1");
    absl::StatusOr<std::string> option2 = r.String("option2");
    absl::StatusOr<int64_t> answer = r.Int("answer");
    if (!sentence.ok()) return {sentence.status(), schema};
    if (!option1.ok()) return {option1.status(), schema};
    if (!option2.ok()) return {option2.status(), schema};
    if (!answer.ok()) return {answer.status(), schema};
    const size_t blank = sentence->find('_');
    if (blank == std::string::npos) return {r.Error("field 'sentence' has no '_' blank"), schema};
    // preprocess_winogrande.py: contexts sentence[:idx] + option, target sentence[idx+1:].strip().
    contexts = {sentence->substr(0, blank) + *option1, sentence->substr(0, blank) + *option2};
    continuation = Str(PyStrip(std::string_view(*sentence).substr(blank + 1)));
    gold = *answer - 1;
  } else {
    schema = "{context_options, continuation, gold} (partial evaluation)";
    absl::StatusOr<std::vector<std::string>> options = r.Strings("context_options");
    absl::StatusOr<std::string> cont = r.String("continuation");
    absl::StatusOr<int64_t> g = r.Int("gold");
    if (!options.ok()) return {options.status(), schema};
    if (!cont.ok()) return {cont.status(), schema};
    if (!g.ok()) return {g.status(), schema};
    contexts = *std::move(options);
    continuation = *std::move(cont);
    gold = *g;
  }
  if (absl::Status s = CheckGold(r, gold, contexts.size()); !s.ok()) return {s, schema};
  TaskItem item;
  item.gold = static_cast<int32_t>(gold);
  for (const std::string& c : contexts) {
    item.requests.push_back(Request{c, absl::StrCat(Abs(kDelimiter), continuation)});
  }
  item.choices = std::move(contexts);
  return {std::move(item), schema};
}

Parsed ParseLambada(const Record& r, int64_t, std::span<const int64_t>) {
  std::string context;
  std::string word;
  std::string schema;
  if (r.Has("text")) {
    schema = "{text} (last word scored)";
    absl::StatusOr<std::string> text = r.String("text");
    if (!text.ok()) return {text.status(), schema};
    // lm-eval: context = text.split(' ')[:-1] joined by ' ', target = ' ' + last word.
    const size_t space = text->rfind(' ');
    if (space == std::string::npos) return {r.Error("field 'text' has no space"), schema};
    context = text->substr(0, space);
    word = text->substr(space + 1);
  } else {
    schema = "{context, continuation}";
    absl::StatusOr<std::string> c = r.String("context");
    absl::StatusOr<std::string> w = r.String("continuation");
    if (!c.ok()) return {c.status(), schema};
    if (!w.ok()) return {w.status(), schema};
    context = *std::move(c);
    word = *std::move(w);
  }
  if (word.empty()) return {r.Error("the continuation (last word) is empty"), schema};
  if (context.empty()) return {r.Error("the context is empty"), schema};
  TaskItem item;
  // A file that keeps the separating space on either side gives the same request after
  // _encode_pair moves trailing context whitespace into the continuation.
  const bool spaced =
      PyStrip(word.substr(0, 1)).empty() || PyStrip(context.substr(context.size() - 1)).empty();
  item.requests.push_back(Request{context, spaced ? word : absl::StrCat(Abs(kDelimiter), word)});
  item.choices.push_back(word);
  return {std::move(item), schema};
}

Parsed ParseOpenbookqa(const Record& r, int64_t, std::span<const int64_t>) {
  if (r.Has("question_stem")) {
    const std::string schema = "{question_stem, choices {text, label}, answerKey} (Hugging Face)";
    absl::StatusOr<std::string> stem = r.String("question_stem");
    if (!stem.ok()) return {stem.status(), schema};
    auto choices = LabelledChoices(r);
    if (!choices.ok()) return {choices.status(), schema};
    return {SharedContextItem(r, *stem, choices->first, choices->second), schema};
  }
  // lm-eval's doc_to_text is the bare question_stem.
  const std::string schema = "{query (the question stem), choices, gold}";
  absl::StatusOr<std::string> query = r.String("query");
  absl::StatusOr<std::vector<std::string>> choices = r.Strings("choices");
  absl::StatusOr<int64_t> gold = r.Int("gold");
  if (!query.ok()) return {query.status(), schema};
  if (!choices.ok()) return {choices.status(), schema};
  if (!gold.ok()) return {gold.status(), schema};
  return {SharedContextItem(r, *query, *choices, *gold), schema};
}

ParseFn ParserFor(std::string_view name) {
  if (name == "piqa") return ParsePiqa;
  if (name == "hellaswag") return ParseHellaswag;
  if (name == "arc_easy" || name == "arc_challenge") return ParseArc;
  if (name == "boolq") return ParseBoolq;
  if (name == "winogrande") return ParseWinogrande;
  if (name == "lambada_openai") return ParseLambada;
  if (name == "openbookqa") return ParseOpenbookqa;
  return nullptr;
}

absl::StatusOr<std::vector<int64_t>> ParseLabels(std::string_view text, const std::string& file) {
  std::vector<int64_t> out;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    const std::string_view v = PyStrip(line);
    if (v.empty()) continue;
    if (v != "0" && v != "1") {
      return absl::InvalidArgumentError(absl::StrCat(file, ": labels file line ", out.size() + 1,
                                                     ": expected 0 or 1, found '", Abs(v), "'"));
    }
    out.push_back(v == "1" ? 1 : 0);
  }
  return out;
}

// WikiText-2 rows {text} are joined with "\n\n" as GPTQ's data loader does; a raw file is
// used as it is.
absl::StatusOr<std::string> PerplexityText(const std::string& file, std::string_view contents) {
  if (!EndsWith(file, ".jsonl")) return Str(contents);
  std::vector<std::string> rows;
  std::istringstream in{std::string(contents)};
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (PyStrip(line).empty()) continue;
    const Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object() || !j.contains("text") || !j["text"].is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(file, ":", n, ": expected a JSON object with a string field 'text'"));
    }
    rows.push_back(j["text"].get<std::string>());
  }
  return absl::StrJoin(rows, "\n\n");
}

}  // namespace

std::span<const TaskSpec> AllTasks() { return kTasks; }

const TaskSpec* FindTask(std::string_view name) {
  for (const TaskSpec& t : kTasks) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

absl::StatusOr<std::vector<TaskRequest>> ParseTaskList(std::string_view list) {
  std::vector<TaskRequest> out;
  auto add = [&](const TaskSpec* spec, std::string file) {
    for (TaskRequest& r : out) {
      if (r.spec == spec) {
        if (!file.empty()) r.file = std::move(file);
        return;
      }
    }
    out.push_back(TaskRequest{spec, std::move(file)});
  };
  size_t pos = 0;
  while (pos <= list.size()) {
    const size_t comma = std::min(list.find(',', pos), list.size());
    const std::string_view entry = PyStrip(list.substr(pos, comma - pos));
    pos = comma + 1;
    if (entry.empty()) continue;
    const size_t eq = entry.find('=');
    const std::string_view name = PyStrip(entry.substr(0, eq));
    const std::string file = eq == std::string_view::npos ? "" : Str(PyStrip(entry.substr(eq + 1)));
    if (name == "all" && file.empty()) {
      for (const TaskSpec& t : kTasks) add(&t, "");
      continue;
    }
    const TaskSpec* spec = FindTask(name);
    if (spec == nullptr) {
      std::vector<std::string> names = {"all"};
      for (const TaskSpec& t : kTasks) names.push_back(Str(t.name));
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown task '", Abs(name), "'; known tasks: ", absl::StrJoin(names, ", ")));
    }
    if (eq != std::string_view::npos && file.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("task '", Abs(name), "=': the file is empty"));
    }
    add(spec, file);
  }
  if (out.empty()) return absl::InvalidArgumentError("no task named in the task list");
  return out;
}

absl::StatusOr<std::string> FindTaskFile(const TaskSpec& spec, const std::string& data_dir) {
  std::vector<std::string> tried;
  const std::string dir = data_dir.empty() ? "." : data_dir;
  for (const std::string_view c : spec.candidates) tried.push_back(absl::StrCat(dir, "/", Abs(c)));
  tried.push_back(absl::StrCat(dir, "/", Abs(spec.name), ".jsonl"));
  for (const std::string& path : tried) {
    if (FileExists(path)) return path;
  }
  return absl::NotFoundError(absl::StrCat("no file for task '", Abs(spec.name), "'; looked for ",
                                          absl::StrJoin(tried, ", ")));
}

absl::StatusOr<Task> ParseTask(const TaskSpec& spec, const std::string& file,
                               std::string_view contents, std::string_view labels, int64_t limit) {
  Task task;
  task.spec = &spec;
  task.file = file;
  if (spec.scoring == TaskScoring::kPerplexity) {
    absl::StatusOr<std::string> text = PerplexityText(file, contents);
    if (!text.ok()) return text.status();
    if (text->empty()) return absl::InvalidArgumentError(absl::StrCat(file, ": the text is empty"));
    task.text = *std::move(text);
    task.schema = EndsWith(file, ".jsonl") ? "{text} rows joined by \"\\n\\n\"" : "raw text";
    return task;
  }
  const ParseFn parse = ParserFor(spec.name);
  if (parse == nullptr) {
    return absl::InternalError(absl::StrCat("no loader for task '", Abs(spec.name), "'"));
  }
  absl::StatusOr<std::vector<int64_t>> label_values = ParseLabels(labels, file);
  if (!label_values.ok()) return label_values.status();

  int64_t line_number = 0;
  size_t pos = 0;
  while (pos < contents.size() && (limit <= 0 || static_cast<int64_t>(task.items.size()) < limit)) {
    const size_t end = std::min(contents.find('\n', pos), contents.size());
    const std::string_view line = contents.substr(pos, end - pos);
    pos = end + 1;
    ++line_number;
    if (PyStrip(line).empty()) continue;
    const Json json = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded() || !json.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(file, ":", line_number, ": expected one JSON object per line (JSON Lines)"));
    }
    const Record record(json, file, line_number);
    const int64_t index = static_cast<int64_t>(task.items.size());
    Parsed parsed = parse(record, index, *label_values);
    if (!parsed.item.ok()) return parsed.item.status();
    if (task.schema.empty()) task.schema = parsed.schema;
    if (parsed.schema != task.schema) {
      return record.Error(absl::StrCat("record schema ", parsed.schema,
                                       " differs from the first record's ", task.schema));
    }
    parsed.item->doc = index;
    task.items.push_back(*std::move(parsed.item));
  }
  if (task.items.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": no records"));
  }
  return task;
}

absl::StatusOr<Task> LoadTask(const TaskSpec& spec, const std::string& file, int64_t limit) {
  absl::StatusOr<std::string> contents = ReadWholeFile(file, "task file");
  if (!contents.ok()) return contents.status();
  std::string labels;
  if (spec.name == "piqa" && EndsWith(file, ".jsonl")) {
    // The original PIQA dev set keeps its labels in valid-labels.lst beside valid.jsonl.
    const std::string labels_file = file.substr(0, file.size() - 6) + "-labels.lst";
    if (FileExists(labels_file)) {
      absl::StatusOr<std::string> l = ReadWholeFile(labels_file, "labels file");
      if (!l.ok()) return l.status();
      labels = *std::move(l);
    }
  }
  return ParseTask(spec, file, *contents, labels, limit);
}

std::string_view PyRStrip(std::string_view text) {
  size_t end = text.size();
  while (end > 0) {
    // Step back to the start of the last code point.
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    size_t len = 0;
    const uint32_t c = DecodeAt(text, start, &len);
    if (start + len != end || !IsPyWhitespace(c)) break;
    end = start;
  }
  return text.substr(0, end);
}

std::string_view PyStrip(std::string_view text) {
  size_t begin = 0;
  while (begin < text.size()) {
    size_t len = 0;
    if (!IsPyWhitespace(DecodeAt(text, begin, &len))) break;
    begin += len;
  }
  return PyRStrip(text.substr(begin));
}

int64_t CodePointCount(std::string_view text) {
  int64_t n = 0;
  for (size_t i = 0; i < text.size();) {
    size_t len = 0;
    DecodeAt(text, i, &len);
    i += len;
    ++n;
  }
  return n;
}

std::string HellaswagPreprocess(std::string_view text) {
  std::string s = ReplaceAll(PyStrip(text), " [title]", ". ");
  // re.sub("\\[.*?\\]", "", s): '.' does not match '\n', so a bracket left open before a
  // newline is not removed.
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '[') {
      const size_t close = s.find(']', i + 1);
      const size_t newline = s.find('\n', i + 1);
      if (close != std::string::npos && (newline == std::string::npos || newline > close)) {
        i = close + 1;
        continue;
      }
    }
    out.push_back(s[i]);
    ++i;
  }
  return ReplaceAll(out, "  ", " ");
}

}  // namespace fp4lm
