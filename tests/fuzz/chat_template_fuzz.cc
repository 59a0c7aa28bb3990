// Fuzz target: a model's Jinja chat template (family recognition by markers) and a
// conversation rendered and tokenized with it. Input: the template source, then optionally a
// NUL byte and messages separated by 0x01 bytes, each a role byte (system, user, assistant or
// an invalid role, by value mod 4) followed by the content; a template name (chatml, ...)
// instead of a Jinja source picks that family. Tokenization uses a small byte-fallback BPE
// vocabulary that knows every family's markers as special tokens.
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/fuzz/fuzz_targets.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace engine::fuzz {
namespace {

const tokenizer::Tokenizer& MarkerTokenizer() {
  static const tokenizer::Tokenizer* tok = [] {
    std::string vocab;
    for (int b = 0; b < 256; ++b) {
      absl::StrAppend(&vocab, b == 0 ? "" : ",", "\"", absl::StrFormat("<0x%02X>", b), "\":", b);
    }
    absl::StrAppend(&vocab, ",\"\xE2\x96\x81\":256");
    constexpr const char* kMarkers[] = {
        "<|im_start|>", "<|im_end|>", "<s>", "</s>", "[INST]", "[/INST]", "<<SYS>>", "<</SYS>>",
        "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
        "<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>", "<|user|>", "<|assistant|>",
        "<|system|>", "<|endoftext|>"};
    std::string added;
    int id = 257;
    for (const char* m : kMarkers) {
      absl::StrAppend(&added, id == 257 ? "" : ",", "{\"id\":", id, ",\"content\":\"", m,
                      "\",\"special\":true}");
      ++id;
    }
    const std::string json = absl::StrCat(
        "{\"model\":{\"type\":\"BPE\",\"byte_fallback\":true,\"vocab\":{", vocab,
        "},\"merges\":[]},\"added_tokens\":[", added,
        "],\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"\xE2\x96\x81\","
        "\"prepend_scheme\":\"first\"},\"decoder\":{\"type\":\"Metaspace\"}}");
    absl::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> t =
        tokenizer::Tokenizer::FromHfTokenizerJsonText(json, "chat fuzz vocabulary");
    if (!t.ok()) {
      std::fprintf(stderr, "chat_template fuzz: %s\n", t.status().ToString().c_str());
      std::abort();  // the fixed vocabulary above is broken: a bug in this file
    }
    return t->release();
  }();
  return *tok;
}

}  // namespace

absl::Status FuzzChatTemplate(FuzzInput data) {
  std::string_view text = AsText(data);
  std::string_view conversation;
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos) {
    conversation = text.substr(nul + 1);
    text = text.substr(0, nul);
  }
  std::vector<tokenizer::ChatMessage> messages;
  constexpr const char* kRoles[] = {"system", "user", "assistant", "tool"};
  while (!conversation.empty()) {
    const size_t end = std::min(conversation.find('\x01'), conversation.size());
    const std::string_view record = conversation.substr(0, end);
    if (!record.empty()) {
      messages.push_back({kRoles[static_cast<uint8_t>(record[0]) % 4],
                          std::string(record.substr(1))});
    }
    conversation.remove_prefix(std::min(end + 1, conversation.size()));
  }
  if (messages.empty()) messages = {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Yo"}};

  absl::StatusOr<tokenizer::ChatTemplate> chat = tokenizer::ChatTemplate::FromName(text);
  if (!chat.ok()) chat = tokenizer::ChatTemplate::FromJinja(text);
  if (!chat.ok()) return chat.status();
  (void)chat->name();
  (void)chat->markers();
  for (const bool prompt : {false, true}) (void)chat->RenderText(messages, prompt);
  absl::StatusOr<std::vector<tokenizer::RenderedMessage>> rendered = chat->Render(messages);
  if (!rendered.ok()) return rendered.status();
  for (size_t first = 0; first <= rendered->size(); ++first) {
    const std::vector<tokenizer::ChatSegment> segments = tokenizer::ChatSegments(
        std::span<const tokenizer::RenderedMessage>(*rendered).subspan(first),
        chat->generation_prompt());
    absl::StatusOr<std::vector<tokenizer::TokenId>> ids =
        tokenizer::TokenizeChat(MarkerTokenizer(), *chat, segments);
    if (!ids.ok()) return ids.status();
  }
  const tokenizer::ChatSegment end[] = {{chat->end_of_reply(), false}};
  return tokenizer::TokenizeChat(MarkerTokenizer(), *chat, end).status();
}

}  // namespace engine::fuzz
