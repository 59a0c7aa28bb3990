// `fp4lm chat`: a conversation in the model's chat template, each reply streamed (the KV cache is
// kept between turns by ChatConversation). Turns come from the terminal, one per line from a
// pipe, or from -p. Replies and what /help, /stats, /system print go to stdout, all else (notes,
// errors, --verbose speeds) to stderr. Ctrl-C stops a reply; twice at the prompt, it quits.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "engine/engine.h"
#include "fmt/core.h"
#include "fp4lm/chat_session.h"
#include "fp4lm/commands.h"
#include "fp4lm/sampling_flags.h"

namespace fp4lm {
namespace {

constexpr int kExitInterrupted = 130;  // quit with Ctrl-C at the prompt (128 + SIGINT)

// --- Ctrl-C --------------------------------------------------------------------------------
// The handler only raises a flag: the token callback turns it into "stop this reply" and the
// line reader into "discard this input". A second Ctrl-C before the first was noticed (a long
// prompt being processed) ends the program the default way.
volatile std::sig_atomic_t g_interrupted = 0;

extern "C" void OnSigint(int) {
  if (g_interrupted != 0) {
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
    return;
  }
  g_interrupted = 1;
}

// Without SA_RESTART a blocked read returns EINTR, which is how Ctrl-C at the prompt is seen;
// while a reply is written, restarting keeps writes to the terminal whole.
void InstallSigint(bool restart) {
  struct sigaction sa {};
  sa.sa_handler = OnSigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = restart ? SA_RESTART : 0;
  sigaction(SIGINT, &sa, nullptr);
}

bool TakeInterrupt() {
  const bool was = g_interrupted != 0;
  g_interrupted = 0;
  return was;
}

// --- Input ---------------------------------------------------------------------------------

enum class Read { kLine, kEof, kInterrupted };

Read ReadLine(std::string* line) {
  line->clear();
  InstallSigint(/*restart=*/false);
  Read result = Read::kLine;
  while (true) {
    const int c = std::getc(stdin);
    if (c == EOF) {
      if (std::ferror(stdin) != 0 && (errno == EINTR || g_interrupted != 0)) {
        std::clearerr(stdin);
        TakeInterrupt();
        result = Read::kInterrupted;
      } else if (line->empty()) {
        result = Read::kEof;
      }
      break;
    }
    if (c == '\n') break;
    line->push_back(static_cast<char>(c));
  }
  InstallSigint(/*restart=*/true);
  if (!line->empty() && line->back() == '\r') line->pop_back();
  return result;
}

void Prompt(bool interactive, const char* text) {
  if (!interactive) return;
  fmt::print("{}", text);
  std::fflush(stdout);
}

// One message: a line; lines ending in '\' continue it; a line `"""` opens a block that
// the next `"""` closes.
Read ReadMessage(bool interactive, std::string* message) {
  message->clear();
  std::string line;
  Prompt(interactive, "> ");
  const Read first = ReadLine(&line);
  if (first != Read::kLine) return first;
  if (line == "\"\"\"") {
    bool any = false;
    while (true) {
      Prompt(interactive, "... ");
      const Read r = ReadLine(&line);
      if (r == Read::kInterrupted) return r;
      if (r == Read::kEof || line == "\"\"\"") break;
      if (any) message->push_back('\n');
      message->append(line);
      any = true;
    }
    return Read::kLine;
  }
  while (!line.empty() && line.back() == '\\') {
    line.pop_back();
    message->append(line);
    message->push_back('\n');
    Prompt(interactive, "... ");
    const Read r = ReadLine(&line);
    if (r == Read::kInterrupted) return r;
    if (r == Read::kEof) {
      line.clear();
      break;
    }
  }
  message->append(line);
  return Read::kLine;
}

// --- Output --------------------------------------------------------------------------------

// Diagnostics go to stderr after what stdout holds, so a merged transcript stays in order.
template <typename... Args>
void Note(fmt::format_string<Args...> format, Args&&... args) {
  std::fflush(stdout);
  fmt::print(stderr, format, std::forward<Args>(args)...);
  std::fflush(stderr);
}

double PerSecond(int32_t tokens, double seconds) { return seconds > 0.0 ? tokens / seconds : 0.0; }

struct ChatCliOptions {
  engine::ModelOptions model;
  engine::SessionOptions session;
  engine::SamplingParams sampling;
  std::string prompt;
  std::string system;
  std::string chat_template;
  bool context_shift = false;
  bool verbose = false;
};

class ChatCli {
 public:
  ChatCli(const ChatCliOptions& options, ChatConversation& chat, const engine::ChatTemplate& tmpl)
      : o_(options), chat_(chat), tmpl_(tmpl) {}

  // Answers one message; false if it could not (the reason is printed).
  bool Turn(std::string_view message) {
    bool wrote = false;
    bool at_line_start = true;
    const engine::TokenCallback on_token = [&](engine::TokenId, std::string_view text) {
      if (!text.empty()) {
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
        wrote = true;
        at_line_start = text.back() == '\n';
      }
      return !TakeInterrupt();
    };
    TakeInterrupt();  // a Ctrl-C typed before the reply began is not meant for it
    absl::StatusOr<TurnResult> turn = chat_.Ask(message, on_token);
    if (!turn.ok()) {
      if (wrote && !at_line_start) fmt::print("\n");
      Note("fp4lm chat: {}\n", std::string(turn.status().message()));
      return false;
    }
    if (!at_line_start || !wrote) fmt::print("\n");
    std::fflush(stdout);
    last_ = *turn;
    if (turn->dropped_turns > 0) {
      Note("[context shift: dropped the {} oldest turn(s)]\n", turn->dropped_turns);
    }
    if (turn->cancelled) Note("[reply stopped]\n");
    if (turn->context_limited) {
      Note("[reply cut: the context is full; /reset starts over{}]\n",
           o_.context_shift ? "" : ", --context-shift drops old turns");
    }
    if (o_.verbose) {
      const engine::GenerateStats& s = turn->stats;
      Note("[prompt {} tokens, {:.1f} t/s | reply {} tokens, {:.1f} t/s | context {}/{}]\n",
           s.prompt_tokens, PerSecond(s.prompt_tokens, s.prefill_seconds), s.generated_tokens,
           PerSecond(s.generated_tokens, s.decode_seconds), chat_.position(), chat_.capacity());
    }
    return true;
  }

  // Returns the exit status when the command ends the chat.
  std::optional<int> Command(std::string_view line) {
    const size_t space = line.find_first_of(" \t");
    const std::string_view name = line.substr(0, space);
    std::string_view arg = space == std::string_view::npos ? "" : line.substr(space + 1);
    const absl::string_view stripped =
        absl::StripAsciiWhitespace(absl::string_view(arg.data(), arg.size()));
    arg = std::string_view(stripped.data(), stripped.size());
    if (name == "/quit" || name == "/exit") return kExitOk;
    if (name == "/help") {
      fmt::print("{}", Help());
    } else if (name == "/reset") {
      if (const absl::Status s = chat_.Reset(); !s.ok()) {
        Note("fp4lm chat: {}\n", std::string(s.message()));
      } else {
        Note("[conversation reset; the system prompt stays]\n");
      }
    } else if (name == "/system") {
      if (arg.empty()) {
        fmt::print("system prompt: {}\n",
                   chat_.system_prompt().empty() ? "(none)" : chat_.system_prompt());
      } else if (const absl::Status s = chat_.SetSystemPrompt(std::string(arg)); !s.ok()) {
        Note("fp4lm chat: {}\n", std::string(s.message()));
      } else {
        Note("[system prompt set; conversation reset]\n");
      }
    } else if (name == "/stats") {
      PrintStats();
    } else {
      Note("fp4lm chat: unknown command '{}'; /help lists the commands\n", std::string(name));
    }
    std::fflush(stdout);
    return std::nullopt;
  }

  int Repl() {
    const bool interactive = isatty(STDIN_FILENO) != 0;
    if (interactive || o_.verbose) Banner();
    bool interrupted_last = false;
    std::string message;
    while (true) {
      const Read r = ReadMessage(interactive, &message);
      if (r == Read::kEof) {
        if (interactive) fmt::print("\n");
        return kExitOk;
      }
      if (r == Read::kInterrupted) {
        if (interactive) fmt::print("\n");
        if (interrupted_last) return kExitInterrupted;
        Note("[input discarded; Ctrl-C again, Ctrl-D or /quit to quit]\n");
        interrupted_last = true;
        continue;
      }
      interrupted_last = false;
      const absl::string_view trimmed = absl::StripAsciiWhitespace(message);
      if (trimmed.empty()) continue;
      if (trimmed[0] == '/' && !absl::StartsWith(trimmed, "//")) {
        if (const std::optional<int> exit =
                Command(std::string_view(trimmed.data(), trimmed.size()))) {
          return *exit;
        }
        continue;
      }
      // "//text" sends "/text".
      if (absl::StartsWith(trimmed, "//")) message.erase(0, message.find('/') + 1);
      Turn(message);
    }
  }

 private:
  void Banner() const {
    Note(
        "fp4lm chat: {}, template {}, context {} tokens{}\n"
        "/help lists the commands; Ctrl-C stops a reply; Ctrl-D quits.\n",
        o_.model.path, tmpl_.name(), chat_.capacity(),
        chat_.system_prompt().empty() ? ", no system prompt" : "");
  }

  std::string Help() const {
    return "Type a message and press Enter. End a line with \\ to continue it on the next one,\n"
           "or put a long message between two lines holding only \"\"\". Start a message\n"
           "with // to send a text that begins with /.\n"
           "  /help           this help\n"
           "  /reset          forget the conversation (the system prompt stays)\n"
           "  /system [TEXT]  show the system prompt, or set it to TEXT and reset\n"
           "  /stats          context use, turns and the last reply's speed\n"
           "  /quit           quit (also /exit, Ctrl-D, or Ctrl-C twice at the prompt)\n"
           "Ctrl-C while a reply is written stops that reply.\n";
  }

  void PrintStats() const {
    fmt::print("context: {}/{} tokens (system prompt {}, {} kept for a reply)\n", chat_.position(),
               chat_.capacity(), chat_.system_tokens(), chat_.reply_reserve());
    fmt::print("turns: {} in context, {} dropped by context shift\n", chat_.turns(),
               chat_.dropped_turns());
    fmt::print("template: {}\n", tmpl_.name());
    if (last_.has_value()) {
      const engine::GenerateStats& s = last_->stats;
      fmt::print("last reply: {} tokens, {:.1f} t/s; its prompt {} tokens, {:.1f} t/s\n",
                 s.generated_tokens, PerSecond(s.generated_tokens, s.decode_seconds),
                 s.prompt_tokens, PerSecond(s.prompt_tokens, s.prefill_seconds));
    }
  }

  const ChatCliOptions& o_;
  ChatConversation& chat_;
  const engine::ChatTemplate& tmpl_;
  std::optional<TurnResult> last_;
};

int Fail(const absl::Status& status, std::string_view hint = {}) {
  Note("fp4lm chat: {}{}\n", std::string(status.message()), hint);
  return kExitError;
}

int Chat(const ChatCliOptions& o, bool system_given) {
  absl::StatusOr<std::unique_ptr<engine::Model>> model = engine::Model::Load(o.model);
  if (!model.ok()) return Fail(model.status());
  absl::StatusOr<std::unique_ptr<engine::ChatTemplate>> tmpl =
      engine::ChatTemplate::Create(**model, o.chat_template);
  if (!tmpl.ok()) return Fail(tmpl.status(), "; pick one with --chat-template NAME");
  absl::StatusOr<std::unique_ptr<engine::Session>> session =
      engine::Session::Create(**model, o.session);
  if (!session.ok()) return Fail(session.status());
  ChatOptions chat_options{
      .system_prompt = system_given ? o.system : (*tmpl)->default_system_prompt(),
      .context_shift = o.context_shift,
      .sampling = o.sampling};
  absl::StatusOr<std::unique_ptr<ChatConversation>> chat =
      ChatConversation::Create(**model, **session, **tmpl, std::move(chat_options));
  if (!chat.ok()) return Fail(chat.status());

  InstallSigint(/*restart=*/true);
  ChatCli cli(o, **chat, **tmpl);
  if (!o.prompt.empty()) return cli.Turn(o.prompt) ? kExitOk : kExitError;
  return cli.Repl();
}

// The issue and llama.cpp spell the system prompt option "-sys"; the parser's short options are
// one letter, so it becomes --system here.
std::vector<std::string> RewriteSys(std::span<const std::string> args) {
  std::vector<std::string> out;
  for (const std::string& a : args) {
    if (a == "--") {
      out.insert(out.end(), &a, args.data() + args.size());
      break;
    }
    if (a == "-sys") {
      out.push_back("--system");
    } else if (a.starts_with("-sys=")) {
      out.push_back("--system=" + a.substr(5));
    } else {
      out.push_back(a);
    }
  }
  return out;
}

}  // namespace

int RunChat(std::span<const std::string> raw_args) {
  const std::vector<std::string> args = RewriteSys(raw_args);
  ChatCliOptions o;
  o.sampling.max_new_tokens = 512;
  ArgParser parser(
      "fp4lm chat", "fp4lm chat -m MODEL [-sys TEXT] [-p PROMPT] [--chat-template NAME] [options]",
      "Chats with an instruction-tuned model in its chat template, streaming each reply.\n"
      "The conversation stays in the KV cache: each turn processes only its own tokens.\n"
      "Reads messages from the terminal, or one per line from piped stdin; -p answers one\n"
      "message and quits. Type /help in the chat for its commands. Sampling options are\n"
      "those of 'fp4lm generate'. Templates: " +
          absl::StrJoin(engine::ChatTemplate::KnownNames(), ", ") + ".");
  parser
      .AddString("model", 'm', &o.model.path, "MODEL",
                 "a .gguf file, a llama2.c .bin or a Hugging Face directory")
      .Required();
  parser.AddString("tokenizer", 0, &o.model.tokenizer_path, "FILE",
                   "tokenizer to use instead of the model's own");
  parser.AddString("prompt", 'p', &o.prompt, "PROMPT", "answer this one message and quit");
  parser.AddString("system", 0, &o.system, "TEXT",
                   "system prompt (also -sys); default: the template's own, if it has one");
  parser.AddString("chat-template", 0, &o.chat_template, "NAME",
                   "use this template instead of the model's: " +
                       absl::StrJoin(engine::ChatTemplate::KnownNames(), ", "));
  parser.AddFlag("context-shift", 0, &o.context_shift,
                 "when the context is full, drop the oldest turns (keeping the system prompt) "
                 "instead of refusing the message");
  parser.AddFlag("verbose", 0, &o.verbose, "print prompt and reply speeds after each reply");
  parser.AddInt("n-predict", 'n', &o.sampling.max_new_tokens, "N", "tokens per reply at most")
      .AtLeast(1);
  AddSamplingFlags(parser, o.sampling);
  parser.AddUint64("seed", 's', &o.sampling.seed, "S",
                   "random seed (turn i uses S + i); same seed, same chat");
  parser.AddInt("threads", 't', &o.model.num_threads, "N", "CPU threads; 0 = all").AtLeast(0);
  parser
      .AddInt("ctx", 'c', &o.session.max_seq_len, "N",
              "context size in tokens; 0 = the model's own")
      .AtLeast(0);
  if (const std::optional<int> exit = ParseCommandLine(parser, args)) return *exit;
  if (!o.chat_template.empty()) {
    const std::vector<std::string> known = engine::ChatTemplate::KnownNames();
    const std::string lower = absl::AsciiStrToLower(o.chat_template);
    if (std::find(known.begin(), known.end(), lower) == known.end()) {
      fmt::print(stderr, "fp4lm chat: --chat-template: unknown template '{}'; known: {}\n",
                 o.chat_template, absl::StrJoin(known, ", "));
      return kExitUsage;
    }
  }
  if (parser.WasSet("prompt") && o.prompt.empty()) {
    fmt::print(stderr, "fp4lm chat: --prompt: the message is empty\n");
    return kExitUsage;
  }
  return Chat(o, parser.WasSet("system"));
}

}  // namespace fp4lm
