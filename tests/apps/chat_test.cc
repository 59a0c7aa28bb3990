// `fp4lm chat`: the conversation core (KV reuse checked against a fresh session fed the whole
// conversation, Ctrl-C's cancel path, /reset, the context budget, context shift) and the binary
// driven through piped stdin (two turns, /reset, an over-long message, /system, /quit).
// stories260K has no chat template and no ChatML tokens: with --chat-template chatml its markers
// are plain text, which is enough to test the mechanics, not the model's answers. SmolLM2, when
// present, checks the real template and a real answer.
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "engine/engine.h"
#include "fp4lm/chat_session.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fp4lm {
namespace {

using ::engine::testing::FileExists;
using ::engine::testing::SharedPath;
using ::engine::testing::SmolLm2Path;
using ::testing::HasSubstr;

constexpr char kSystem[] = "You are a storyteller.";

std::string Stories() { return SharedPath("models/stories260K/stories260K.bin"); }

std::unique_ptr<engine::Model> LoadOrNull(const std::string& path) {
  if (path.empty() || !FileExists(path)) return nullptr;
  absl::StatusOr<std::unique_ptr<engine::Model>> m = engine::Model::Load({.path = path});
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *std::move(m) : nullptr;
}

// A chat over stories260K in ChatML, greedy.
struct StoriesChat {
  std::unique_ptr<engine::Model> model;
  std::unique_ptr<engine::ChatTemplate> chat;
  std::unique_ptr<engine::Session> session;
  std::unique_ptr<ChatConversation> conversation;
};

std::unique_ptr<StoriesChat> MakeStoriesChat(int32_t ctx, int32_t max_new, bool shift = false,
                                             std::string system = kSystem) {
  auto c = std::make_unique<StoriesChat>();
  c->model = LoadOrNull(Stories());
  if (c->model == nullptr) return nullptr;
  auto chat = engine::ChatTemplate::Create(*c->model, "chatml");
  EXPECT_TRUE(chat.ok()) << chat.status();
  if (!chat.ok()) return nullptr;
  c->chat = *std::move(chat);
  auto session = engine::Session::Create(*c->model, {.max_seq_len = ctx});
  EXPECT_TRUE(session.ok()) << session.status();
  if (!session.ok()) return nullptr;
  c->session = *std::move(session);
  ChatOptions o{.system_prompt = std::move(system), .context_shift = shift};
  o.sampling.temperature = 0.0f;
  o.sampling.max_new_tokens = max_new;
  auto conversation = ChatConversation::Create(*c->model, *c->session, *c->chat, o);
  EXPECT_TRUE(conversation.ok()) << conversation.status();
  if (!conversation.ok()) return nullptr;
  c->conversation = *std::move(conversation);
  return c;
}

#define SKIP_WITHOUT_STORIES()                 \
  do {                                         \
    if (!FileExists(Stories())) {              \
      GTEST_SKIP() << "missing " << Stories(); \
    }                                          \
  } while (0)

// Collects the ids and text a reply streams.
struct Collector {
  std::vector<engine::TokenId> ids;
  std::string text;
  int stop_after = -1;  // return false after this many tokens
  engine::TokenCallback Callback() {
    return [this](engine::TokenId id, std::string_view piece) {
      if (id >= 0) ids.push_back(id);
      text.append(piece);
      return stop_after < 0 || static_cast<int>(ids.size()) < stop_after;
    };
  }
};

std::vector<engine::TokenId> Concat(std::initializer_list<std::span<const engine::TokenId>> parts) {
  std::vector<engine::TokenId> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// ---- the template API on a model ----

TEST(ChatTemplateApiTest, ModelWithoutTemplateAndUnknownNames) {
  SKIP_WITHOUT_STORIES();
  const std::unique_ptr<engine::Model> model = LoadOrNull(Stories());
  ASSERT_NE(model, nullptr);
  const auto none = engine::ChatTemplate::Create(*model);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(none.status().message(), HasSubstr("no chat template"));
  EXPECT_THAT(none.status().message(), HasSubstr("chatml, llama2, llama3, mistral, zephyr, gemma"));
  const auto unknown = engine::ChatTemplate::Create(*model, "alpaca");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("chatml, llama2"));

  ASSERT_OK_AND_ASSIGN(const auto chat, engine::ChatTemplate::Create(*model, "chatml"));
  EXPECT_EQ(chat->name(), "chatml");
  // No ChatML tokens in this vocabulary: the end of a reply is the text "<|im_end|>\n".
  ASSERT_OK_AND_ASSIGN(const auto plain, model->Tokenize("<|im_end|>\n", false));
  EXPECT_EQ(std::vector<engine::TokenId>(chat->EndOfReply().begin(), chat->EndOfReply().end()),
            plain);
  const std::vector<engine::ChatMessage> m = {{"user", "hi"}};
  EXPECT_FALSE(chat->Tokenize(m, 2, false).ok());
  ASSERT_OK_AND_ASSIGN(const std::string text, chat->Render(m, true));
  EXPECT_EQ(text, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

// ---- the conversation core ----

// The cache after two turns must be exactly the conversation: a fresh session fed all of its
// tokens at once continues it with the same greedy reply. Only new tokens are fed per turn.
TEST(ChatConversationTest, KvReuseEqualsFeedingTheWholeConversation) {
  SKIP_WITHOUT_STORIES();
  auto c = MakeStoriesChat(512, 12);
  ASSERT_NE(c, nullptr);
  ChatConversation& conv = *c->conversation;
  const std::vector<engine::ChatMessage> sys = {{"system", kSystem}};
  ASSERT_OK_AND_ASSIGN(const auto sys_tokens, c->chat->Tokenize(sys, 0, false));
  EXPECT_EQ(conv.system_tokens(), static_cast<int32_t>(sys_tokens.size()));
  EXPECT_EQ(conv.position(), conv.system_tokens());

  Collector r1;
  ASSERT_OK_AND_ASSIGN(const TurnResult t1, conv.Ask("Once upon a time", r1.Callback()));
  EXPECT_EQ(t1.reply, r1.text);
  EXPECT_EQ(t1.stats.generated_tokens, static_cast<int32_t>(r1.ids.size()));
  Collector r2;
  ASSERT_OK_AND_ASSIGN(const TurnResult t2, conv.Ask("What happened next?", r2.Callback()));
  ASSERT_FALSE(r2.ids.empty());

  const std::vector<engine::ChatMessage> u1 = {{"system", kSystem}, {"user", "Once upon a time"}};
  const std::vector<engine::ChatMessage> u2 = {{"system", kSystem},
                                               {"user", "Once upon a time"},
                                               {"assistant", t1.reply},
                                               {"user", "What happened next?"}};
  ASSERT_OK_AND_ASSIGN(const auto turn1, c->chat->Tokenize(u1, 1, true));
  ASSERT_OK_AND_ASSIGN(const auto turn2, c->chat->Tokenize(u2, 3, true));
  EXPECT_EQ(t1.stats.prompt_tokens, static_cast<int32_t>(turn1.size()));
  EXPECT_EQ(t2.stats.prompt_tokens, static_cast<int32_t>(turn2.size()));  // only the new turn
  const auto eor = c->chat->EndOfReply();
  const std::vector<engine::TokenId> whole = Concat({sys_tokens, turn1, r1.ids, eor, turn2});
  EXPECT_EQ(conv.position(), static_cast<int32_t>(whole.size() + r2.ids.size() + eor.size()));
  EXPECT_EQ(conv.messages().size(), 5u);
  EXPECT_EQ(conv.turns(), 2);

  ASSERT_OK_AND_ASSIGN(auto fresh, engine::Session::Create(*c->model, {.max_seq_len = 512}));
  engine::SamplingParams greedy;
  greedy.temperature = 0.0f;
  greedy.max_new_tokens = 12;
  Collector again;
  ASSERT_OK(fresh->GenerateFromTokens(whole, greedy, again.Callback()));
  EXPECT_EQ(again.ids, r2.ids);
}

// Ctrl-C's path: the callback stops the reply; what was shown stays in the cache, closed by the
// end-of-turn tokens, and the next turn works.
TEST(ChatConversationTest, StoppedReplyKeepsTheConversationUsable) {
  SKIP_WITHOUT_STORIES();
  auto c = MakeStoriesChat(512, 40);
  ASSERT_NE(c, nullptr);
  ChatConversation& conv = *c->conversation;
  const int32_t before = conv.position();
  Collector stop;
  stop.stop_after = 3;
  ASSERT_OK_AND_ASSIGN(const TurnResult t, conv.Ask("Tell me a long story.", stop.Callback()));
  EXPECT_TRUE(t.cancelled);
  ASSERT_EQ(stop.ids.size(), 3u);
  EXPECT_EQ(conv.position(), before + t.stats.prompt_tokens + 3 +
                                 static_cast<int32_t>(c->chat->EndOfReply().size()));
  ASSERT_OK_AND_ASSIGN(const std::string shown, c->model->Detokenize(stop.ids));
  EXPECT_EQ(conv.messages().back().content, shown);
  Collector next;
  ASSERT_OK_AND_ASSIGN(const TurnResult t2, conv.Ask("And then?", next.Callback()));
  EXPECT_FALSE(t2.cancelled);
  EXPECT_EQ(conv.turns(), 2);
}

TEST(ChatConversationTest, ResetAndSystemPrompt) {
  SKIP_WITHOUT_STORIES();
  auto c = MakeStoriesChat(512, 8);
  ASSERT_NE(c, nullptr);
  ChatConversation& conv = *c->conversation;
  const int32_t system_tokens = conv.system_tokens();
  Collector r;
  ASSERT_OK(conv.Ask("Hello", r.Callback()).status());
  EXPECT_GT(conv.position(), system_tokens);
  ASSERT_OK(conv.Reset());
  EXPECT_EQ(conv.position(), system_tokens);
  ASSERT_EQ(conv.messages().size(), 1u);
  EXPECT_EQ(conv.messages()[0].role, "system");

  ASSERT_OK(conv.SetSystemPrompt("You tell very short stories about cats."));
  EXPECT_GT(conv.system_tokens(), system_tokens);
  EXPECT_EQ(conv.position(), conv.system_tokens());
  EXPECT_EQ(conv.system_prompt(), "You tell very short stories about cats.");
  ASSERT_OK(conv.SetSystemPrompt(""));
  EXPECT_EQ(conv.position(), 0);
  EXPECT_TRUE(conv.messages().empty());
  ASSERT_OK(conv.Ask("Hello", r.Callback()).status());
  EXPECT_EQ(conv.turns(), 1);
}

std::string LongText() {
  std::string s;
  for (int i = 0; i < 100; ++i) s += "The cat sat on the mat. ";
  return s;
}

TEST(ChatConversationTest, TooLongMessageIsRefusedAndNothingChanges) {
  SKIP_WITHOUT_STORIES();
  auto c = MakeStoriesChat(128, 8, /*shift=*/true);
  ASSERT_NE(c, nullptr);
  ChatConversation& conv = *c->conversation;
  Collector r;
  ASSERT_OK(conv.Ask("Hello", r.Callback()).status());
  const int32_t position = conv.position();
  const size_t messages = conv.messages().size();
  const absl::StatusOr<TurnResult> t = conv.Ask(LongText(), r.Callback());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(t.status().message(), HasSubstr("too long"));
  EXPECT_EQ(conv.position(), position);
  EXPECT_EQ(conv.messages().size(), messages);
  ASSERT_OK(conv.Ask("Hello again", r.Callback()).status());
}

// A small context fills after a few turns: refused without context shift; with it, the oldest
// turns go, the system prompt stays, and the cache still holds exactly the conversation.
TEST(ChatConversationTest, FullContextIsRefusedOrShifted) {
  SKIP_WITHOUT_STORIES();
  {
    auto c = MakeStoriesChat(128, 8);
    ASSERT_NE(c, nullptr);
    ChatConversation& conv = *c->conversation;
    absl::Status refused;
    for (int i = 0; i < 30 && refused.ok(); ++i) {
      Collector r;
      const int32_t before = conv.position();
      const absl::StatusOr<TurnResult> t = conv.Ask("Tell me more.", r.Callback());
      refused = t.status();
      if (!t.ok()) {
        EXPECT_EQ(conv.position(), before);
      }
    }
    EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
    EXPECT_THAT(refused.message(), HasSubstr("context is full"));
    EXPECT_THAT(refused.message(), HasSubstr("--context-shift"));
  }
  auto c = MakeStoriesChat(128, 8, /*shift=*/true);
  ASSERT_NE(c, nullptr);
  ChatConversation& conv = *c->conversation;
  const int32_t eor = static_cast<int32_t>(c->chat->EndOfReply().size());
  int32_t dropped = 0;
  for (int i = 0; i < 30; ++i) {
    Collector r;
    const int32_t before = conv.position();
    ASSERT_OK_AND_ASSIGN(const TurnResult t, conv.Ask("Tell me more.", r.Callback()));
    dropped += t.dropped_turns;
    const int32_t start = t.dropped_turns > 0 ? conv.system_tokens() : before;
    EXPECT_EQ(conv.position(), start + t.stats.prompt_tokens + t.stats.generated_tokens + eor);
    EXPECT_LE(conv.position(), conv.capacity());
    ASSERT_EQ(conv.messages()[0].role, "system");
  }
  EXPECT_GT(dropped, 0);
  EXPECT_EQ(conv.dropped_turns(), dropped);
}

// ---- the binary ----

int RunShell(const std::string& command, std::string* output) {
  output->clear();
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[4096];
  for (size_t n; (n = fread(buffer, 1, sizeof(buffer), pipe)) > 0;) output->append(buffer, n);
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string Fp4lm() { return std::string(FP4LM_BINARY_DIR) + "/bin/fp4lm"; }

std::string StoriesChatCommand() {
  return Fp4lm() + " chat -m '" + Stories() +
         "' --chat-template chatml -sys 'You are a storyteller.' -n 12 --temp 0 --ctx 256 "
         "--verbose";
}

std::vector<int> AllInts(const std::string& text, const std::string& pattern) {
  std::vector<int> out;
  const std::regex re(pattern);
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator();
       ++it) {
    out.push_back(std::stoi((*it)[1].str()));
  }
  return out;
}

TEST(ChatCliTest, TranscriptThroughStdin) {
  SKIP_WITHOUT_STORIES();
  if (!FileExists(Fp4lm())) GTEST_SKIP() << "fp4lm binary not built: " << Fp4lm();
  const std::string dir = engine::testing::TempDir();
  const std::string script = dir + "/script.txt";
  {
    std::ofstream f(script);
    f << "Once upon a time there was a cat.\n"
      << "/stats\n"
      << "What did the cat do?\n"
      << "/stats\n"
      << "/reset\n"
      << "/stats\n"
      << LongText() << "\n"
      << "/stats\n"
      << "/system You tell short stories.\n"
      << "/system\n"
      << "/nosuchcommand\n"
      << "Hello \\\n"
      << "there\n"
      << "/quit\n"
      << "This line comes after /quit and is never answered.\n";
  }
  std::string out;
  ASSERT_EQ(RunShell(StoriesChatCommand() + " < '" + script + "'", &out), 0) << out;

  // Three turns answered (the first two, and the two-line one after /system); none after /quit.
  const std::vector<int> prompts = AllInts(out, R"(\[prompt (\d+) tokens)");
  const std::vector<int> replies = AllInts(out, R"(\| reply (\d+) tokens)");
  ASSERT_EQ(prompts.size(), 3u) << out;
  ASSERT_EQ(replies.size(), 3u) << out;
  const std::vector<int> used = AllInts(out, R"(context: (\d+)/256 tokens)");
  const std::vector<int> system = AllInts(out, R"(\(system prompt (\d+),)");
  ASSERT_EQ(used.size(), 4u) << out;
  ASSERT_EQ(system.size(), 4u) << out;
  const int sys = system[0];
  EXPECT_GT(sys, 0);
  // Turn 2 fed only its own tokens: fewer than the conversation held before it.
  EXPECT_LT(prompts[1], used[0]);
  // The cache grew by exactly turn 2's prompt, reply and end-of-turn tokens.
  ASSERT_OK_AND_ASSIGN(auto model, engine::Model::Load({.path = Stories()}));
  ASSERT_OK_AND_ASSIGN(auto chat, engine::ChatTemplate::Create(*model, "chatml"));
  const int eor = static_cast<int>(chat->EndOfReply().size());
  EXPECT_EQ(used[0], sys + prompts[0] + replies[0] + eor);
  EXPECT_EQ(used[1], used[0] + prompts[1] + replies[1] + eor);
  // /reset went back to the system prompt; the over-long message changed nothing.
  EXPECT_EQ(used[2], sys);
  EXPECT_EQ(used[3], sys);
  EXPECT_THAT(out, HasSubstr("the message is too long"));
  EXPECT_THAT(out, HasSubstr("system prompt: You tell short stories.\n"));
  EXPECT_THAT(out, HasSubstr("unknown command '/nosuchcommand'"));
}

TEST(ChatCliTest, OneShotPromptAndPipedPrompt) {
  SKIP_WITHOUT_STORIES();
  if (!FileExists(Fp4lm())) GTEST_SKIP() << "fp4lm binary not built: " << Fp4lm();
  std::string out;
  ASSERT_EQ(RunShell(StoriesChatCommand() + " -p 'Once upon a time' < /dev/null", &out), 0) << out;
  EXPECT_EQ(AllInts(out, R"(\[prompt (\d+) tokens)").size(), 1u) << out;
  std::string piped;
  ASSERT_EQ(RunShell("echo 'Once upon a time' | " + StoriesChatCommand(), &piped), 0) << piped;
  EXPECT_EQ(AllInts(piped, R"(\[prompt (\d+) tokens)").size(), 1u) << piped;
  // The same greedy reply either way: the text before the stats line (after the banner).
  const std::string reply = out.substr(0, out.find("[prompt"));
  EXPECT_TRUE(piped.substr(0, piped.find("[prompt")).ends_with(reply)) << out << piped;
}

TEST(ChatCliTest, TemplateErrorsAreClear) {
  SKIP_WITHOUT_STORIES();
  if (!FileExists(Fp4lm())) GTEST_SKIP() << "fp4lm binary not built: " << Fp4lm();
  std::string out;
  EXPECT_EQ(RunShell(Fp4lm() + " chat -m '" + Stories() + "' -p hi", &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("no chat template"));
  EXPECT_THAT(out, HasSubstr("--chat-template"));
  EXPECT_THAT(out, HasSubstr("chatml, llama2, llama3, mistral, zephyr, gemma"));
  EXPECT_EQ(RunShell(Fp4lm() + " chat -m '" + Stories() + "' --chat-template vicuna -p hi", &out),
            2)
      << out;
  EXPECT_THAT(out, HasSubstr("unknown template 'vicuna'"));
  EXPECT_THAT(out, HasSubstr("chatml, llama2, llama3, mistral, zephyr, gemma"));
}

// ---- SmolLM2: its own template, a real answer ----

TEST(ChatSmolLm2Test, OwnTemplateAndAnAnswer) {
  const std::string path = SmolLm2Path();
  if (path.empty()) {
    GTEST_SKIP() << "SmolLM2-135M-Instruct GGUF not in ~/.cache/fp4lm/models "
                    "(scripts/fetch-model); skipping the SmolLM2 chat test";
  }
  ASSERT_OK_AND_ASSIGN(auto model, engine::Model::Load({.path = path}));
  ASSERT_OK_AND_ASSIGN(auto chat, engine::ChatTemplate::Create(*model));
  EXPECT_EQ(chat->name(), "chatml");
  EXPECT_EQ(chat->default_system_prompt(),
            "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  ASSERT_OK_AND_ASSIGN(const auto im_end, model->Tokenize("<|im_end|>\n", false, true));
  EXPECT_EQ(std::vector<engine::TokenId>(chat->EndOfReply().begin(), chat->EndOfReply().end()),
            im_end);
  ASSERT_EQ(im_end.size(), 2u);
  EXPECT_TRUE(model->IsEndOfGeneration(im_end[0]));

  ASSERT_OK_AND_ASSIGN(auto session, engine::Session::Create(*model, {.max_seq_len = 256}));
  ChatOptions o{.system_prompt = chat->default_system_prompt()};
  o.sampling.temperature = 0.0f;
  o.sampling.max_new_tokens = 16;
  ASSERT_OK_AND_ASSIGN(auto conv, ChatConversation::Create(*model, *session, *chat, o));
  Collector r;
  ASSERT_OK_AND_ASSIGN(const TurnResult t,
                       conv->Ask("What is the capital of France? One word.", r.Callback()));
  EXPECT_THAT(t.reply, HasSubstr("Paris"));
}

}  // namespace
}  // namespace fp4lm
