// The chat template families, rendered by hand after each reference model's Hugging Face
// template (the Jinja source is only searched for markers, never executed).
#include "tokenizer/chat_template.h"

#include <array>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace engine::tokenizer {
namespace {

struct FamilyInfo {
  ChatFamily family;
  std::string_view name;
};
constexpr std::array<FamilyInfo, 6> kFamilies = {{{ChatFamily::kChatMl, "chatml"},
                                                  {ChatFamily::kLlama2, "llama2"},
                                                  {ChatFamily::kLlama3, "llama3"},
                                                  {ChatFamily::kMistral, "mistral"},
                                                  {ChatFamily::kZephyr, "zephyr"},
                                                  {ChatFamily::kGemma, "gemma"}}};

constexpr std::string_view kChatMlMarkers[] = {"<|im_start|>", "<|im_end|>"};
constexpr std::string_view kInstMarkers[] = {"<s>", "</s>", "[INST]", "[/INST]"};
constexpr std::string_view kLlama3Markers[] = {"<|begin_of_text|>", "<|start_header_id|>",
                                               "<|end_header_id|>", "<|eot_id|>"};
constexpr std::string_view kZephyrMarkers[] = {"<|system|>", "<|user|>", "<|assistant|>", "</s>"};
constexpr std::string_view kGemmaMarkers[] = {"<bos>", "<start_of_turn>", "<end_of_turn>"};

std::string KnownList() { return absl::StrJoin(ChatTemplate::KnownNames(), ", "); }

// Jinja's `trim` / Python's str.strip() on the ASCII whitespace.
std::string Strip(std::string_view s) {
  const absl::string_view a(s.data(), s.size());
  return std::string(absl::StripAsciiWhitespace(a));
}
std::string StripTrailing(std::string_view s) {
  const absl::string_view a(s.data(), s.size());
  return std::string(absl::StripTrailingAsciiWhitespace(a));
}

// The default system prompt of a ChatML template: the literal text of a
// '<|im_start|>system\n...<|im_end|>' string in the Jinja source (SmolLM2, Qwen write one when
// the conversation has no system message). Occurrences followed by an expression
// (' + messages[0]['content'] + ') are the template's system branch, not a default.
std::string ChatMlDefaultSystem(std::string_view source) {
  constexpr std::string_view kOpen = "<|im_start|>system";
  constexpr std::string_view kClose = "<|im_end|>";
  for (size_t at = source.find(kOpen); at != std::string_view::npos;
       at = source.find(kOpen, at + 1)) {
    std::string_view rest = source.substr(at + kOpen.size());
    // The newline is a real one (GGUF) or the Jinja escape "\n" (tokenizer_config.json).
    if (rest.starts_with("\\n")) {
      rest.remove_prefix(2);
    } else if (rest.starts_with("\n")) {
      rest.remove_prefix(1);
    } else {
      continue;
    }
    const size_t end = rest.find(kClose);
    if (end == std::string_view::npos || end == 0) continue;
    const std::string_view text = rest.substr(0, end);
    if (text.find_first_of("'\"{}") != std::string_view::npos) continue;  // an expression
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] == 'n') {
        out.push_back('\n');
        ++i;
      } else {
        out.push_back(text[i]);
      }
    }
    return out;
  }
  return "";
}

absl::Status CheckRoles(std::span<const ChatMessage> messages) {
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& role = messages[i].role;
    if (role != "system" && role != "user" && role != "assistant") {
      return absl::InvalidArgumentError(absl::StrCat("chat message ", i, " has role '", role,
                                                     "'; expected system, user or assistant"));
    }
    if (role == "system" && i != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "chat message ", i, " is a system message; only the first message may be one"));
    }
  }
  return absl::OkStatus();
}

// ChatML: <|im_start|>{role}\n{content}<|im_end|>\n
RenderedMessage RenderChatMl(const ChatMessage& m) {
  return {absl::StrCat("<|im_start|>", m.role, "\n"), m.content, "<|im_end|>\n"};
}

// Llama-2 (meta-llama/Llama-2-7b-chat-hf): the system prompt opens the first [INST] block:
// <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s><s>[INST] {user} [/INST]
RenderedMessage RenderLlama2(const ChatMessage& m, bool first_after_system) {
  if (m.role == "system") return {"<s>[INST] <<SYS>>\n", m.content, "\n<</SYS>>\n\n"};
  if (m.role == "user") {
    // The template strips "<<SYS>>...<</SYS>>\n\n" + user as one string: only the user text's
    // end is stripped then.
    if (first_after_system) return {"", StripTrailing(m.content), " [/INST]"};
    return {"<s>[INST] ", Strip(m.content), " [/INST]"};
  }
  return {" ", Strip(m.content), " </s>"};
}

// Mistral (mistralai/Mistral-7B-Instruct-v0.1): <s>[INST] {user} [/INST]{assistant}</s>[INST] ...
// The template has no system role; the system prompt opens the first user turn as
// "{system}\n\n{user}", as later Mistral templates and llama.cpp do.
RenderedMessage RenderMistral(const ChatMessage& m, bool first, bool first_after_system) {
  const std::string bos = first ? "<s>" : "";
  if (m.role == "system") return {"<s>[INST] ", m.content, "\n\n"};
  if (m.role == "user") {
    if (first_after_system) return {"", m.content, " [/INST]"};
    return {absl::StrCat(bos, "[INST] "), m.content, " [/INST]"};
  }
  return {bos, m.content, "</s>"};
}

// Llama-3 (meta-llama/Meta-Llama-3-8B-Instruct):
// <|begin_of_text|><|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>
RenderedMessage RenderLlama3(const ChatMessage& m, bool first) {
  return {absl::StrCat(first ? "<|begin_of_text|>" : "", "<|start_header_id|>", m.role,
                       "<|end_header_id|>\n\n"),
          Strip(m.content), "<|eot_id|>"};
}

// Zephyr (HuggingFaceH4/zephyr-7b-beta, TinyLlama-Chat): <|{role}|>\n{content}</s>\n
RenderedMessage RenderZephyr(const ChatMessage& m) {
  return {absl::StrCat("<|", m.role, "|>\n"), m.content, "</s>\n"};
}

// Gemma (google/gemma-7b-it): <bos><start_of_turn>user\n{content}<end_of_turn>\n
// <start_of_turn>model\n{content}<end_of_turn>\n. No system role: the system prompt opens the
// first user turn as "{system}\n\n{user}", as Gemma 3's template does.
RenderedMessage RenderGemma(const ChatMessage& m, bool first, bool first_after_system) {
  const std::string bos = first ? "<bos>" : "";
  if (m.role == "system") return {"<bos><start_of_turn>user\n", Strip(m.content), "\n\n"};
  if (m.role == "user") {
    if (first_after_system) return {"", Strip(m.content), "<end_of_turn>\n"};
    return {absl::StrCat(bos, "<start_of_turn>user\n"), Strip(m.content), "<end_of_turn>\n"};
  }
  return {absl::StrCat(bos, "<start_of_turn>model\n"), Strip(m.content), "<end_of_turn>\n"};
}

}  // namespace

const std::vector<std::string>& ChatTemplate::KnownNames() {
  static const std::vector<std::string>* const names = [] {
    auto* v = new std::vector<std::string>();
    for (const FamilyInfo& f : kFamilies) v->emplace_back(f.name);
    return v;
  }();
  return *names;
}

absl::StatusOr<ChatTemplate> ChatTemplate::FromName(std::string_view name) {
  const std::string lower = absl::AsciiStrToLower(absl::string_view(name.data(), name.size()));
  for (const FamilyInfo& f : kFamilies) {
    if (lower == f.name) return ChatTemplate(f.family, "");
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown chat template '",
                                                 absl::string_view(name.data(), name.size()),
                                                 "'; known templates: ", KnownList()));
}

absl::StatusOr<ChatTemplate> ChatTemplate::FromJinja(std::string_view source) {
  const auto has = [&](std::string_view marker) {
    return source.find(marker) != std::string_view::npos;
  };
  if (has("<|start_header_id|>")) return ChatTemplate(ChatFamily::kLlama3, "");
  if (has("<|im_start|>")) return ChatTemplate(ChatFamily::kChatMl, ChatMlDefaultSystem(source));
  if (has("<start_of_turn>")) return ChatTemplate(ChatFamily::kGemma, "");
  if (has("[INST]")) {
    return ChatTemplate(has("<<SYS>>") ? ChatFamily::kLlama2 : ChatFamily::kMistral, "");
  }
  if (has("<|user|>")) return ChatTemplate(ChatFamily::kZephyr, "");
  return absl::InvalidArgumentError(absl::StrCat(
      "chat template not recognised: it has none of the markers of the known templates (",
      KnownList(), ")"));
}

std::string_view ChatTemplate::name() const {
  for (const FamilyInfo& f : kFamilies) {
    if (f.family == family_) return f.name;
  }
  return "unknown";
}

std::span<const std::string_view> ChatTemplate::markers() const {
  switch (family_) {
    case ChatFamily::kChatMl:
      return kChatMlMarkers;
    case ChatFamily::kLlama2:
    case ChatFamily::kMistral:
      return kInstMarkers;
    case ChatFamily::kLlama3:
      return kLlama3Markers;
    case ChatFamily::kZephyr:
      return kZephyrMarkers;
    case ChatFamily::kGemma:
      return kGemmaMarkers;
  }
  return {};
}

std::string_view ChatTemplate::generation_prompt() const {
  switch (family_) {
    case ChatFamily::kChatMl:
      return "<|im_start|>assistant\n";
    case ChatFamily::kLlama2:
    case ChatFamily::kMistral:
      return "";
    case ChatFamily::kLlama3:
      return "<|start_header_id|>assistant<|end_header_id|>\n\n";
    case ChatFamily::kZephyr:
      return "<|assistant|>\n";
    case ChatFamily::kGemma:
      return "<start_of_turn>model\n";
  }
  return "";
}

std::string_view ChatTemplate::end_of_reply() const {
  switch (family_) {
    case ChatFamily::kChatMl:
      return "<|im_end|>\n";
    case ChatFamily::kLlama2:
      return " </s>";
    case ChatFamily::kMistral:
      return "</s>";
    case ChatFamily::kLlama3:
      return "<|eot_id|>";
    case ChatFamily::kZephyr:
      return "</s>\n";
    case ChatFamily::kGemma:
      return "<end_of_turn>\n";
  }
  return "";
}

absl::StatusOr<std::vector<RenderedMessage>> ChatTemplate::Render(
    std::span<const ChatMessage> messages) const {
  if (absl::Status roles = CheckRoles(messages); !roles.ok()) return roles;
  const bool has_system = !messages.empty() && messages[0].role == "system";
  std::vector<RenderedMessage> out;
  out.reserve(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    const bool first = i == 0;
    const bool first_after_system = has_system && i == 1;
    switch (family_) {
      case ChatFamily::kChatMl:
        out.push_back(RenderChatMl(m));
        break;
      case ChatFamily::kLlama2:
        out.push_back(RenderLlama2(m, first_after_system));
        break;
      case ChatFamily::kMistral:
        out.push_back(RenderMistral(m, first, first_after_system));
        break;
      case ChatFamily::kLlama3:
        out.push_back(RenderLlama3(m, first));
        break;
      case ChatFamily::kZephyr:
        out.push_back(RenderZephyr(m));
        break;
      case ChatFamily::kGemma:
        out.push_back(RenderGemma(m, first, first_after_system));
        break;
    }
  }
  // The template's own default system prompt, written before a conversation that has none.
  if (!out.empty() && !has_system && !default_system_.empty()) {
    out[0].prefix = absl::StrCat(RenderChatMl({"system", default_system_}).prefix, default_system_,
                                 "<|im_end|>\n", out[0].prefix);
  }
  return out;
}

absl::StatusOr<std::string> ChatTemplate::RenderText(std::span<const ChatMessage> messages,
                                                     bool add_generation_prompt) const {
  absl::StatusOr<std::vector<RenderedMessage>> rendered = Render(messages);
  if (!rendered.ok()) return rendered.status();
  std::string out;
  for (const RenderedMessage& r : *rendered) absl::StrAppend(&out, r.prefix, r.content, r.suffix);
  if (add_generation_prompt) {
    const std::string_view g = generation_prompt();
    out.append(g.data(), g.size());
  }
  return out;
}

std::vector<ChatSegment> ChatSegments(std::span<const RenderedMessage> messages,
                                      std::string_view tail) {
  std::vector<ChatSegment> out;
  for (const RenderedMessage& r : messages) {
    out.push_back({r.prefix, false});
    out.push_back({r.content, true});
    out.push_back({r.suffix, false});
  }
  if (!tail.empty()) out.push_back({tail, false});
  return out;
}

absl::StatusOr<std::vector<TokenId>> TokenizeChat(const Tokenizer& tokenizer,
                                                  const ChatTemplate& chat_template,
                                                  std::span<const ChatSegment> segments) {
  std::vector<TokenId> out;
  std::string plain;
  const auto flush = [&]() -> absl::Status {
    if (plain.empty()) return absl::OkStatus();
    absl::StatusOr<std::vector<TokenId>> ids =
        tokenizer.Encode(plain, EncodeOptions{.add_bos = false, .parse_special = false});
    if (!ids.ok()) return ids.status();
    out.insert(out.end(), ids->begin(), ids->end());
    plain.clear();
    return absl::OkStatus();
  };
  const std::span<const std::string_view> markers = chat_template.markers();
  for (const ChatSegment& segment : segments) {
    if (segment.is_content) {
      plain.append(segment.text);
      continue;
    }
    std::string_view rest = segment.text;
    while (!rest.empty()) {
      // The leftmost marker; at one position the longest.
      size_t hit = std::string_view::npos;
      std::string_view marker;
      for (const std::string_view m : markers) {
        const size_t at = rest.find(m);
        if (at < hit || (at == hit && at != std::string_view::npos && m.size() > marker.size())) {
          hit = at;
          marker = m;
        }
      }
      if (hit == std::string_view::npos) {
        plain.append(rest);
        break;
      }
      plain.append(rest.substr(0, hit));
      const TokenId id = tokenizer.FindSpecialToken(marker);
      if (id >= 0) {
        if (absl::Status s = flush(); !s.ok()) return s;
        out.push_back(id);
      } else {
        plain.append(marker);  // the vocabulary has no such token: plain text
      }
      rest.remove_prefix(hit + marker.size());
    }
  }
  if (absl::Status s = flush(); !s.ok()) return s;
  return out;
}

}  // namespace engine::tokenizer
