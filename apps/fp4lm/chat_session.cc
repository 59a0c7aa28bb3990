// ChatConversation: the KV cache holds exactly the rendered conversation so far, so each turn
// tokenizes and feeds only its own message and the reply's opening.
#include "fp4lm/chat_session.h"

#include <algorithm>
#include <span>
#include <utility>

#include "absl/strings/str_cat.h"

namespace fp4lm {
namespace {

// A reply gets at least this share of the context when a turn is admitted (and never more
// than max_new_tokens): a turn that would leave less is refused or shifts the context.
constexpr int32_t kReplyShareDivisor = 4;

}  // namespace

absl::StatusOr<std::unique_ptr<ChatConversation>> ChatConversation::Create(
    const engine::Model& model, engine::Session& session, const engine::ChatTemplate& chat,
    ChatOptions options) {
  std::string system = options.system_prompt;
  std::unique_ptr<ChatConversation> c(
      new ChatConversation(model, session, chat, std::move(options)));
  c->options_.system_prompt.clear();
  if (absl::Status s = c->SetSystemPrompt(std::move(system)); !s.ok()) return s;
  return c;
}

std::vector<engine::ChatMessage> ChatConversation::SystemMessages(
    const std::string& system_prompt) const {
  if (system_prompt.empty()) return {};
  return {engine::ChatMessage{.role = "system", .content = system_prompt}};
}

int32_t ChatConversation::reply_reserve() const {
  const int32_t room =
      std::min(options_.sampling.max_new_tokens, std::max(1, capacity() / kReplyShareDivisor));
  return static_cast<int32_t>(chat_.EndOfReply().size()) + room;
}

bool ChatConversation::Fits(int32_t start, size_t new_tokens) const {
  return static_cast<int64_t>(start) + static_cast<int64_t>(new_tokens) + reply_reserve() <=
         capacity();
}

int32_t ChatConversation::turns() const {
  return static_cast<int32_t>(
      std::count_if(messages_.begin(), messages_.end(),
                    [](const engine::ChatMessage& m) { return m.role == "user"; }));
}

absl::Status ChatConversation::SetSystemPrompt(std::string system_prompt) {
  const std::vector<engine::ChatMessage> system = SystemMessages(system_prompt);
  absl::StatusOr<std::vector<engine::TokenId>> tokens = chat_.Tokenize(system, 0, false);
  if (!tokens.ok()) return tokens.status();
  if (!Fits(0, tokens->size())) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the system prompt is ", tokens->size(), " tokens; with ", reply_reserve(),
        " kept for a reply it does not fit in the context of ", capacity(), " tokens"));
  }
  if (absl::Status s = session_.Rewind(0); !s.ok()) return s;
  messages_.clear();
  system_tokens_ = 0;
  options_.system_prompt.clear();
  if (!tokens->empty()) {
    if (absl::Status s = session_.Prefill(*tokens); !s.ok()) return s;
  }
  messages_ = system;
  system_tokens_ = session_.position();
  options_.system_prompt = std::move(system_prompt);
  return absl::OkStatus();
}

absl::Status ChatConversation::Reset() {
  if (absl::Status s = session_.Rewind(system_tokens_); !s.ok()) return s;
  messages_ = SystemMessages(options_.system_prompt);
  return absl::OkStatus();
}

absl::StatusOr<TurnResult> ChatConversation::Ask(std::string_view user_text,
                                                 const engine::TokenCallback& on_token) {
  TurnResult result;
  const size_t n_system = options_.system_prompt.empty() ? 0 : 1;
  std::vector<engine::ChatMessage> kept = messages_;
  kept.push_back({.role = "user", .content = std::string(user_text)});
  absl::StatusOr<std::vector<engine::TokenId>> prompt =
      chat_.Tokenize(kept, messages_.size(), /*add_generation_prompt=*/true);
  if (!prompt.ok()) return prompt.status();
  int32_t start = position();

  if (!Fits(start, prompt->size())) {
    // The message alone, after the system prompt: does it fit at all?
    const std::vector<engine::ChatMessage> alone = [&] {
      std::vector<engine::ChatMessage> m = SystemMessages(options_.system_prompt);
      m.push_back(kept.back());
      return m;
    }();
    absl::StatusOr<std::vector<engine::TokenId>> alone_tokens =
        chat_.Tokenize(alone, n_system, true);
    if (!alone_tokens.ok()) return alone_tokens.status();
    if (!Fits(system_tokens_, alone_tokens->size())) {
      return absl::ResourceExhaustedError(
          absl::StrCat("the message is too long: with the template it is ", alone_tokens->size(),
                       " tokens, and the context of ", capacity(), " tokens has ",
                       capacity() - system_tokens_ - reply_reserve(), " for it (", system_tokens_,
                       " hold the system prompt, ", reply_reserve(), " are kept for the reply)"));
    }
    if (!options_.context_shift) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the context is full: this turn needs ", prompt->size(), " tokens plus ", reply_reserve(),
          " for the reply, and ", capacity() - start, " of ", capacity(),
          " are free. /reset starts over; --context-shift drops the oldest turns instead"));
    }
    // Drop whole turns (a user message and the reply after it) from the oldest on.
    while (true) {
      size_t end = n_system + 1;  // past the oldest user message
      while (end < kept.size() - 1 && kept[end].role != "user") ++end;
      kept.erase(kept.begin() + static_cast<ptrdiff_t>(n_system),
                 kept.begin() + static_cast<ptrdiff_t>(end));
      ++result.dropped_turns;
      prompt = chat_.Tokenize(kept, n_system, true);
      if (!prompt.ok()) return prompt.status();
      if (Fits(system_tokens_, prompt->size())) break;
    }
    if (absl::Status s = session_.Rewind(system_tokens_); !s.ok()) return s;
    kept.pop_back();
    messages_ = std::move(kept);
    dropped_turns_ += result.dropped_turns;
    start = system_tokens_;
  }

  const int32_t end_tokens = static_cast<int32_t>(chat_.EndOfReply().size());
  engine::SamplingParams params = options_.sampling;
  const int32_t room = capacity() - start - static_cast<int32_t>(prompt->size()) - end_tokens;
  params.max_new_tokens = std::max(0, std::min(options_.sampling.max_new_tokens, room));
  params.seed = options_.sampling.seed + turn_counter_;
  std::vector<engine::TokenId> generated;
  const absl::Status status =
      session_.GenerateFromTokens(*prompt, params, on_token, &generated, &result.stats);
  result.cancelled = absl::IsCancelled(status);
  if (!status.ok() && !result.cancelled) {
    (void)session_.Rewind(start);  // the cache again holds messages_
    return status;
  }
  // Generate leaves the last token unfed when it stops at the limit or on the callback's
  // request: feed what is missing, then the tokens that close the reply.
  const int32_t fed = position() - start - static_cast<int32_t>(prompt->size());
  std::vector<engine::TokenId> tail(generated.begin() + std::min<ptrdiff_t>(fed, generated.size()),
                                    generated.end());
  const std::span<const engine::TokenId> end = chat_.EndOfReply();
  tail.insert(tail.end(), end.begin(), end.end());
  if (!tail.empty()) {
    if (absl::Status s = session_.Prefill(tail); !s.ok()) {
      (void)session_.Rewind(start);
      return s;
    }
  }
  absl::StatusOr<std::string> reply = model_.Detokenize(generated);
  if (!reply.ok()) {
    (void)session_.Rewind(start);
    return reply.status();
  }
  result.reply = *std::move(reply);
  result.context_limited = params.max_new_tokens < options_.sampling.max_new_tokens &&
                           static_cast<int32_t>(generated.size()) == params.max_new_tokens;
  messages_.push_back({.role = "user", .content = std::string(user_text)});
  messages_.push_back({.role = "assistant", .content = result.reply});
  ++turn_counter_;
  return result;
}

}  // namespace fp4lm
