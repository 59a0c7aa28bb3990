// The conversation behind `fp4lm chat`, apart from the terminal: which messages the KV cache
// holds, feeding only each new turn (KV reuse), closing each reply with the template's
// end-of-turn tokens, the context budget, and dropping the oldest turns (context shift).
// A library of its own so tests/apps/chat_test.cc can drive it without a terminal.
#ifndef FP4LM_APPS_FP4LM_CHAT_SESSION_H_
#define FP4LM_APPS_FP4LM_CHAT_SESSION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/engine.h"

namespace fp4lm {

struct ChatOptions {
  std::string system_prompt;  // "" = no system message
  // When a turn does not fit: false refuses it (ResourceExhausted, nothing changes); true drops
  // the oldest turns, keeping the system prompt, and re-feeds the turns that remain.
  bool context_shift = false;
  // max_new_tokens bounds every reply; the seed of turn i is seed + i.
  engine::SamplingParams sampling;
};

struct TurnResult {
  std::string reply;
  engine::GenerateStats stats;
  bool cancelled = false;        // the callback stopped the reply (it is kept, as far as it got)
  bool context_limited = false;  // the reply stopped because the context was full
  int32_t dropped_turns = 0;     // turns dropped by context shift to make room for this one
};

// Not thread-safe (it drives one Session). `model`, `session` and `chat` must outlive it.
class ChatConversation {
 public:
  // Feeds the system prompt. ResourceExhausted if it leaves no room for a turn.
  static absl::StatusOr<std::unique_ptr<ChatConversation>> Create(const engine::Model& model,
                                                                  engine::Session& session,
                                                                  const engine::ChatTemplate& chat,
                                                                  ChatOptions options);

  // One turn: feeds the user's message (and nothing the cache already holds), streams the reply
  // through `on_token`, then feeds the end-of-turn tokens. A reply stopped by the callback
  // counts as an answer (TurnResult::cancelled). ResourceExhausted, with nothing changed, if the
  // turn does not fit (without context shift, or when the message alone is too long).
  // On any other error the turn is undone.
  absl::StatusOr<TurnResult> Ask(std::string_view user_text, const engine::TokenCallback& on_token);

  // Forgets the conversation, keeping the system prompt (its tokens stay in the cache).
  absl::Status Reset();
  // Replaces the system prompt ("" = none) and starts over. ResourceExhausted, with nothing
  // changed, if it leaves no room for a turn.
  absl::Status SetSystemPrompt(std::string system_prompt);

  const std::string& system_prompt() const { return options_.system_prompt; }
  const std::vector<engine::ChatMessage>& messages() const { return messages_; }
  int32_t position() const { return session_.position(); }
  int32_t capacity() const { return session_.capacity(); }
  int32_t system_tokens() const { return system_tokens_; }
  // Tokens kept free for a reply (and its end-of-turn tokens) when a turn is admitted.
  int32_t reply_reserve() const;
  int32_t turns() const;  // user turns in the cache
  int64_t dropped_turns() const { return dropped_turns_; }

 private:
  ChatConversation(const engine::Model& model, engine::Session& session,
                   const engine::ChatTemplate& chat, ChatOptions options)
      : model_(model), session_(session), chat_(chat), options_(std::move(options)) {}

  std::vector<engine::ChatMessage> SystemMessages(const std::string& system_prompt) const;
  bool Fits(int32_t start, size_t new_tokens) const;

  const engine::Model& model_;
  engine::Session& session_;
  const engine::ChatTemplate& chat_;
  ChatOptions options_;
  std::vector<engine::ChatMessage> messages_;  // all fed: [system], user, assistant, ...
  int32_t system_tokens_ = 0;
  int64_t dropped_turns_ = 0;
  uint64_t turn_counter_ = 0;
};

}  // namespace fp4lm

#endif  // FP4LM_APPS_FP4LM_CHAT_SESSION_H_
