// Chat templates without a Jinja engine: a model's template is recognised by the markers in its
// Jinja source ("<|im_start|>" is ChatML, ...) and each family is rendered by C++ code that
// follows the Hugging Face template of its reference model. Rendering is per message (markup
// around the message's text) so that a conversation's text is the concatenation of its
// messages' texts: a chat can then feed only the new turn to a KV cache holding the earlier ones.
#ifndef FP4LM_TOKENIZER_CHAT_TEMPLATE_H_
#define FP4LM_TOKENIZER_CHAT_TEMPLATE_H_

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "tokenizer/tokenizer.h"

namespace engine::tokenizer {

enum class ChatFamily { kChatMl, kLlama2, kLlama3, kMistral, kZephyr, kGemma };

struct ChatMessage {
  std::string role;  // "system" (first message only), "user" or "assistant"
  std::string content;
};

// One message as its family renders it. `prefix` and `suffix` are template markup and may hold
// special-token text; `content` is the message's own text (trimmed where the family's template
// trims it) and must never be searched for special tokens.
struct RenderedMessage {
  std::string prefix;
  std::string content;
  std::string suffix;
};

// Immutable value; all methods may be called concurrently.
class ChatTemplate {
 public:
  // The names FromName accepts, in a fixed order: chatml, llama2, llama3, mistral, zephyr, gemma.
  static const std::vector<std::string>& KnownNames();
  // InvalidArgument naming the known templates if `name` is not one of them (case-insensitive).
  static absl::StatusOr<ChatTemplate> FromName(std::string_view name);
  // Recognises the family of a Jinja template by its markers: "<|im_start|>" ChatML,
  // "<|start_header_id|>" Llama-3, "<start_of_turn>" Gemma, "[INST]" with "<<SYS>>" Llama-2,
  // "[INST]" without it Mistral, "<|user|>" Zephyr. A ChatML template that writes a default
  // system prompt when the conversation has none (SmolLM2, Qwen) keeps that prompt.
  // InvalidArgument listing the known templates when no marker is found.
  static absl::StatusOr<ChatTemplate> FromJinja(std::string_view source);

  ChatFamily family() const { return family_; }
  std::string_view name() const;
  // The system prompt the model's template inserts when a conversation has none; "" if none.
  const std::string& default_system_prompt() const { return default_system_; }
  // The special-token texts the family's markup uses (tokenized as special tokens when the
  // vocabulary has them, as plain text otherwise).
  std::span<const std::string_view> markers() const;

  // One RenderedMessage per message. The concatenation of all prefix + content + suffix is what
  // the family's Hugging Face template renders (without generation prompt), except that a
  // conversation holding only a system prompt renders that prompt's opening, which the Jinja
  // templates of Llama-2, Mistral and Gemma (that merge the system prompt into the first user
  // turn) would not show until a user message follows. InvalidArgument for an unknown role or a
  // system message that is not the first.
  absl::StatusOr<std::vector<RenderedMessage>> Render(std::span<const ChatMessage> messages) const;
  // The markup that opens the assistant's reply (appended when add_generation_prompt).
  std::string_view generation_prompt() const;
  // The markup that closes an assistant reply, i.e. the suffix of an assistant message.
  std::string_view end_of_reply() const;
  // The whole conversation as one string.
  absl::StatusOr<std::string> RenderText(std::span<const ChatMessage> messages,
                                         bool add_generation_prompt) const;

 private:
  ChatTemplate(ChatFamily family, std::string default_system)
      : family_(family), default_system_(std::move(default_system)) {}

  ChatFamily family_;
  std::string default_system_;
};

// One piece of rendered chat text: template markup, or a message's content.
struct ChatSegment {
  std::string_view text;
  bool is_content = false;
};

// Tokenizes rendered chat text. Markers found in markup become their special tokens when the
// vocabulary has them; all other text (markup and content alike) is tokenized as plain text
// without special-token parsing, so a message cannot inject a control token. Plain text between
// two special tokens is encoded as one piece, as whole-string tokenization with special-token
// parsing would encode it. No BOS is added: templates that want one write it.
absl::StatusOr<std::vector<TokenId>> TokenizeChat(const Tokenizer& tokenizer,
                                                  const ChatTemplate& chat_template,
                                                  std::span<const ChatSegment> segments);

// The segments of `messages` followed by `tail` markup (e.g. the generation prompt; may be
// empty). The views point into `messages` and `tail`.
std::vector<ChatSegment> ChatSegments(std::span<const RenderedMessage> messages,
                                      std::string_view tail = {});

}  // namespace engine::tokenizer

#endif  // FP4LM_TOKENIZER_CHAT_TEMPLATE_H_
