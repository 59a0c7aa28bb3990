// Tests of the task loaders of `fp4lm eval --tasks` (apps/fp4lm/harness_tasks.h): every schema
// of shared/README.md and the Hugging Face originals must give the (context, continuation)
// pairs that lm-evaluation-harness 0.4's task YAMLs build. The expected strings are written by
// hand from those YAMLs; the hellaswag preprocessing cases were checked against lm-eval's own
// preprocess() in Python.
#include "fp4lm/harness_tasks.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fp4lm {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Data(const std::string& relative) {
  return engine::testing::TestDataPath("harness/" + relative);
}

Task Load(const char* task, const std::string& relative) {
  const TaskSpec* spec = FindTask(task);
  EXPECT_NE(spec, nullptr) << task;
  absl::StatusOr<Task> t = LoadTask(*spec, Data(relative));
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : Task{};
}

std::vector<std::string> Contexts(const TaskItem& item) {
  std::vector<std::string> out;
  for (const Request& r : item.requests) out.push_back(r.context);
  return out;
}
std::vector<std::string> Continuations(const TaskItem& item) {
  std::vector<std::string> out;
  for (const Request& r : item.requests) out.push_back(r.continuation);
  return out;
}

TEST(PythonStringsTest, StripAndLength) {
  EXPECT_EQ(PyStrip("  a b \t\n"), "a b");
  EXPECT_EQ(PyStrip("\xC2\xA0pad\xE3\x80\x80"), "pad");  // U+00A0, U+3000
  EXPECT_EQ(PyStrip("x\xC2\xA0y "), "x\xC2\xA0y");
  EXPECT_EQ(PyRStrip("  a  "), "  a");
  EXPECT_EQ(PyStrip(""), "");
  EXPECT_EQ(PyStrip(" \n "), "");
  EXPECT_EQ(CodePointCount("caf\xC3\xA9"), 4);  // len("café") == 4, 5 bytes
  EXPECT_EQ(CodePointCount("\xE2\x98\x83 x"), 3);
  EXPECT_EQ(CodePointCount(""), 0);
}

TEST(HellaswagPreprocessTest, MatchesLmEval) {
  EXPECT_EQ(HellaswagPreprocess("sing [title] a  song to the sky."), "sing. a song to the sky.");
  EXPECT_EQ(HellaswagPreprocess("eat the [blue] slide."), "eat the slide.");
  EXPECT_EQ(HellaswagPreprocess("  run home to mom. "), "run home to mom.");
  EXPECT_EQ(HellaswagPreprocess(" slow [step] ."), "slow .");
  // One pass of "  " -> " ": three spaces leave two.
  EXPECT_EQ(HellaswagPreprocess("a   b"), "a  b");
  // "." does not match a newline: that bracket stays; stripping came first.
  EXPECT_EQ(HellaswagPreprocess("x [open\nclose] y [z]"), "x [open\nclose] y ");
}

TEST(TaskListTest, NamesAllAndFiles) {
  absl::StatusOr<std::vector<TaskRequest>> list = ParseTaskList("piqa, boolq=/x/b.jsonl");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].spec->name, "piqa");
  EXPECT_EQ((*list)[0].file, "");
  EXPECT_EQ((*list)[1].spec->name, "boolq");
  EXPECT_EQ((*list)[1].file, "/x/b.jsonl");

  list = ParseTaskList("all,piqa=p.jsonl");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->size(), AllTasks().size());
  EXPECT_EQ((*list)[0].file, "p.jsonl");

  const absl::StatusOr<std::vector<TaskRequest>> bad = ParseTaskList("piqa,mmlu");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("unknown task 'mmlu'"));
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("hellaswag"));
  EXPECT_FALSE(ParseTaskList("").ok());
  EXPECT_FALSE(ParseTaskList("piqa=").ok());
}

TEST(TaskFilesTest, FindsFilesUnderTheDataDirectory) {
  absl::StatusOr<std::string> f = FindTaskFile(*FindTask("piqa"), Data(""));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_THAT(*f, HasSubstr("piqa/valid.jsonl"));
  const absl::StatusOr<std::string> missing = FindTaskFile(*FindTask("piqa"), "/nonexistent");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("/nonexistent/piqa/valid.jsonl"));
}

TEST(TaskLoaderTest, PiqaOriginalWithLabelsFile) {
  const Task t = Load("piqa", "piqa/valid.jsonl");
  ASSERT_EQ(t.items.size(), 3u);
  EXPECT_THAT(Contexts(t.items[0]),
              ElementsAre("Question: How do you make the cat happy?\nAnswer:",
                          "Question: How do you make the cat happy?\nAnswer:"));
  // The solutions are not stripped (lm-eval reads them raw).
  EXPECT_THAT(Continuations(t.items[0]),
              ElementsAre(" Give the cat a warm hug.", " Give the cat a cold bath. "));
  EXPECT_THAT(t.items[0].choices,
              ElementsAre("Give the cat a warm hug.", "Give the cat a cold bath. "));
  EXPECT_EQ(t.items[0].gold, 0);
  EXPECT_EQ(t.items[2].gold, 1);
  EXPECT_EQ(t.items[2].doc, 2);
}

TEST(TaskLoaderTest, LimitKeepsTheFirstItems) {
  absl::StatusOr<Task> t = LoadTask(*FindTask("piqa"), Data("piqa/valid.jsonl"), 2);
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->items.size(), 2u);
  EXPECT_EQ(t->items[1].doc, 1);
}

TEST(TaskLoaderTest, PiqaMosaicSchemaGetsTheAnswerPrompt) {
  const std::string jsonl = R"({"query": "Question: dresser\n", "choices": ["a", "b"], "gold": 1})"
                            "\n";
  absl::StatusOr<Task> t = ParseTask(*FindTask("piqa"), "m.jsonl", jsonl, "");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->items[0].requests[0].context, "Question: dresser\nAnswer:");
  EXPECT_EQ(t->items[0].gold, 1);
}

TEST(TaskLoaderTest, HellaswagEndingsArePreprocessed) {
  const Task t = Load("hellaswag", "hellaswag/hellaswag_val_full.jsonl");
  ASSERT_EQ(t.items.size(), 2u);
  EXPECT_EQ(t.items[0].requests[0].context, "Playing outside: Lily and Tom go to the park. they");
  EXPECT_THAT(Continuations(t.items[0]),
              ElementsAre(" play with a big red ball.", " sing. a song to the sky.",
                          " eat the slide.", " run home to mom."));
  EXPECT_THAT(t.items[0].choices,
              ElementsAre("play with a big red ball.", "sing. a song to the sky.", "eat the slide.",
                          "run home to mom."));
  EXPECT_EQ(t.items[1].gold, 3);
}

TEST(TaskLoaderTest, HellaswagHuggingFaceSchema) {
  const Task t = Load("hellaswag", "hellaswag/hellaswag_hf.jsonl");
  ASSERT_EQ(t.items.size(), 1u);
  // preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize())
  EXPECT_EQ(t.items[0].requests[0].context,
            "Playing outside: Lily and Tom go to the park. They run");
  EXPECT_THAT(Continuations(t.items[0]), ElementsAre(" fast.", " slow ."));
  EXPECT_EQ(t.items[0].gold, 1);  // "1" as a string
}

TEST(TaskLoaderTest, ArcTemplateAndDuplicatedChoices) {
  const Task t = Load("arc_easy", "arc_easy/arc_easy.jsonl");
  ASSERT_EQ(t.items.size(), 2u);
  EXPECT_EQ(t.items[0].requests[0].context, "Question: What does the sun give us?\nAnswer:");
  // The padding copy of "light" is dropped: lm-eval sees the original three choices.
  EXPECT_THAT(t.items[0].choices, ElementsAre("light", "rocks", "shoes"));
  EXPECT_EQ(t.items[0].gold, 0);
  EXPECT_THAT(Continuations(t.items[1]),
              ElementsAre(" in the water", " in the sky", " in a tree", " in a shoe"));
  EXPECT_EQ(t.items[1].gold, 2);

  const Task c = Load("arc_challenge", "arc_challenge/arc_challenge.jsonl");
  ASSERT_EQ(c.items.size(), 1u);
  EXPECT_EQ(c.items[0].requests[0].context, "Question: Which animal says moo?\nAnswer:");
  EXPECT_THAT(c.items[0].choices, ElementsAre("a cow", "a cat", "a bird"));
  EXPECT_EQ(c.items[0].gold, 0);
}

TEST(TaskLoaderTest, BoolqBothSchemasGiveLmEvalsPrompt) {
  const Task t = Load("boolq", "boolq/boolq.jsonl");
  ASSERT_EQ(t.items.size(), 2u);
  EXPECT_EQ(t.items[0].requests[0].context,
            "Lily had a red ball. She played with it every day.\nQuestion: did lily have a "
            "ball?\nAnswer:");
  EXPECT_THAT(Continuations(t.items[0]), ElementsAre(" no", " yes"));
  EXPECT_EQ(t.items[0].gold, 1);
  EXPECT_EQ(t.items[1].gold, 0);

  const Task s = Load("boolq", "boolq/boolq_superglue.jsonl");
  EXPECT_EQ(s.items[0].requests[1].context,
            "Lily had a red ball.\nQuestion: did lily have a ball?\nAnswer:");
  EXPECT_EQ(s.items[0].gold, 1);
}

TEST(TaskLoaderTest, WinograndePartialEvaluation) {
  const Task t = Load("winogrande", "winogrande/winogrande.jsonl");
  ASSERT_EQ(t.items.size(), 3u);
  EXPECT_THAT(Contexts(t.items[0]), ElementsAre("Tom gave the ball to Sam because Tom",
                                                "Tom gave the ball to Sam because Sam"));
  EXPECT_THAT(Continuations(t.items[0]), ElementsAre(" wanted to play.", " wanted to play."));
  EXPECT_EQ(t.items[0].gold, 1);

  const Task hf = Load("winogrande", "winogrande/winogrande_hf.jsonl");
  // sentence[:idx] + option; sentence[idx+1:].strip().
  EXPECT_EQ(Contexts(hf.items[0]), Contexts(t.items[0]));
  EXPECT_EQ(Continuations(hf.items[0]), Continuations(t.items[0]));
  EXPECT_EQ(hf.items[0].gold, 1);
}

TEST(TaskLoaderTest, LambadaLastWord) {
  const Task t = Load("lambada_openai", "lambada_openai/lambada_openai.jsonl");
  ASSERT_EQ(t.items.size(), 2u);
  ASSERT_EQ(t.items[1].requests.size(), 1u);
  EXPECT_EQ(t.items[1].requests[0].context, "Tom and Sam went to the park. Tom said to");
  EXPECT_EQ(t.items[1].requests[0].continuation, " Sam");
  const Task text = Load("lambada_openai", "lambada_openai/lambada_text.jsonl");
  EXPECT_EQ(text.items[0].requests[0].context, t.items[1].requests[0].context);
  EXPECT_EQ(text.items[0].requests[0].continuation, " Sam");
}

TEST(TaskLoaderTest, OpenbookqaBareStem) {
  const Task t = Load("openbookqa", "openbookqa/openbookqa.jsonl");
  EXPECT_EQ(t.items[0].requests[0].context, "The sun is");
  EXPECT_THAT(Continuations(t.items[0]), ElementsAre(" hot", " cold", " wet", " blue"));
  const Task hf = Load("openbookqa", "openbookqa/openbookqa_hf.jsonl");
  EXPECT_EQ(hf.items[0].requests[0].context, "The sun is");
  EXPECT_EQ(hf.items[0].gold, 0);  // answerKey " A" is stripped
}

TEST(TaskLoaderTest, WikitextIsReadWhole) {
  const Task t = Load("wikitext2", "wikitext2/wiki.test.raw");
  EXPECT_TRUE(t.items.empty());
  EXPECT_THAT(t.text, HasSubstr(" = Lily = \n"));
  absl::StatusOr<Task> rows = ParseTask(*FindTask("wikitext2"), "rows.jsonl",
                                        "{\"text\": \"a\\n\"}\n{\"text\": \"b\\n\"}\n", "");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(rows->text, "a\n\n\nb\n");  // GPTQ's "\n\n".join(rows)
}

TEST(TaskLoaderTest, ErrorsNameTheFileLineAndField) {
  struct Case {
    const char* file;
    const char* expected;
  };
  for (const Case& c :
       {Case{"bad/not_json.jsonl", "not_json.jsonl:2: expected one JSON object"},
        Case{"bad/gold_out_of_range.jsonl", ":1: gold label 2 is outside the 2 choices"},
        Case{"bad/missing_field.jsonl", ":1: missing field 'choices'"},
        Case{"bad/wrong_type.jsonl", "field 'choices': expected a non-empty array"},
        Case{"bad/mixed_schema.jsonl", ":2: record schema"},
        Case{"bad/empty.jsonl", "no records"}}) {
    absl::StatusOr<Task> t = LoadTask(*FindTask("arc_easy"), Data(c.file));
    ASSERT_FALSE(t.ok()) << c.file;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << c.file;
    EXPECT_THAT(std::string(t.status().message()), HasSubstr(c.expected)) << t.status();
  }
  absl::StatusOr<Task> missing = LoadTask(*FindTask("arc_easy"), Data("bad/none.jsonl"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  // PIQA's original records need their labels.
  absl::StatusOr<Task> no_labels = ParseTask(*FindTask("piqa"), "v.jsonl",
                                             R"({"goal": "g", "sol1": "a", "sol2": "b"})"
                                             "\n",
                                             "");
  ASSERT_FALSE(no_labels.ok());
  EXPECT_THAT(std::string(no_labels.status().message()), HasSubstr("labels"));
  absl::StatusOr<Task> bad_label = ParseTask(*FindTask("piqa"), "v.jsonl",
                                             R"({"goal": "g", "sol1": "a", "sol2": "b"})"
                                             "\n",
                                             "2\n");
  ASSERT_FALSE(bad_label.ok());
  EXPECT_THAT(std::string(bad_label.status().message()), HasSubstr("expected 0 or 1, found '2'"));
}

}  // namespace
}  // namespace fp4lm
