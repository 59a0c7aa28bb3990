// Pre-tokenizer steps and llama.cpp's `pre` table (see pre_tokenizer.h). Regexes are applied in
// sequence, each only inside the pieces the previous one produced (so a look-ahead never sees
// past a piece), which is what both llama.cpp's unicode_regex_split and Hugging Face's Sequence
// do.
#include "tokenizer/pre_tokenizer.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernels/core/status_macros.h"

namespace engine::tokenizer {
namespace {

// llama.cpp llama-vocab.cpp, llm_tokenizer_bpe: the regex lists per pre-tokenizer type.
constexpr std::string_view kLlama3Pattern =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr std::string_view kQwen2Pattern =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

bool OneOf(std::string_view s, std::initializer_list<std::string_view> names) {
  for (std::string_view n : names) {
    if (s == n) return true;
  }
  return false;
}

// Splits `piece` at the matches of `regex` according to `behavior`.
absl::Status SplitPiece(const std::string& piece, const UnicodeRegex& regex, SplitBehavior behavior,
                        bool invert, std::vector<std::string>* out) {
  ENGINE_ASSIGN_OR_RETURN(const auto matches, regex.FindAll(piece));
  // Alternating spans of non-matches and matches covering the piece.
  struct Span {
    size_t begin, end;
    bool match;
  };
  std::vector<Span> spans;
  size_t pos = 0;
  for (const auto& [b, e] : matches) {
    if (b > pos) spans.push_back({pos, b, invert});
    spans.push_back({b, e, !invert});
    pos = e;
  }
  if (pos < piece.size()) spans.push_back({pos, piece.size(), invert});

  std::vector<std::string> result;
  bool pending_merge_next = false;  // the last result piece is a match waiting for its next
  bool last_was_match = false;
  for (const Span& s : spans) {
    std::string text = piece.substr(s.begin, s.end - s.begin);
    switch (behavior) {
      case SplitBehavior::kIsolated:
        result.push_back(std::move(text));
        break;
      case SplitBehavior::kRemoved:
        if (!s.match) result.push_back(std::move(text));
        break;
      case SplitBehavior::kMergedWithPrevious:
        if (s.match && !result.empty() && !last_was_match) {
          result.back() += text;
        } else {
          result.push_back(std::move(text));
        }
        break;
      case SplitBehavior::kMergedWithNext:
        if (!s.match && pending_merge_next) {
          result.back() += text;
        } else {
          result.push_back(std::move(text));
        }
        pending_merge_next = s.match;
        break;
      case SplitBehavior::kContiguous:
        if (s.match && last_was_match) {
          result.back() += text;
        } else {
          result.push_back(std::move(text));
        }
        break;
    }
    last_was_match = s.match;
  }
  for (auto& r : result) {
    if (!r.empty()) out->push_back(std::move(r));
  }
  return absl::OkStatus();
}

void ReplaceAll(std::string* s, std::string_view from, std::string_view to) {
  size_t pos = 0;
  while ((pos = s->find(from, pos)) != std::string::npos) {
    s->replace(pos, from.size(), to);
    pos += to.size();
  }
}

}  // namespace

void PreTokenizer::AddRegexSplit(UnicodeRegex regex, SplitBehavior behavior, bool invert) {
  Step step;
  step.kind = Step::Kind::kRegexSplit;
  step.regex = std::make_shared<const UnicodeRegex>(std::move(regex));
  step.behavior = behavior;
  step.invert = invert;
  steps_.push_back(std::move(step));
}

void PreTokenizer::AddPrefixSpace() {
  Step step;
  step.kind = Step::Kind::kPrefixSpace;
  steps_.push_back(std::move(step));
}

void PreTokenizer::AddMetaspace(std::string replacement, PrependScheme scheme, bool split) {
  Step step;
  step.kind = Step::Kind::kMetaspace;
  step.replacement = std::move(replacement);
  step.scheme = scheme;
  step.split = split;
  steps_.push_back(std::move(step));
}

absl::Status PreTokenizer::Run(std::string_view text, bool first_fragment,
                               std::vector<std::string>* words) const {
  std::vector<std::string> pieces;
  if (!text.empty()) pieces.emplace_back(text);
  std::vector<std::string> next;
  for (const Step& step : steps_) {
    next.clear();
    for (size_t i = 0; i < pieces.size(); ++i) {
      std::string& piece = pieces[i];
      switch (step.kind) {
        case Step::Kind::kRegexSplit:
          ENGINE_RETURN_IF_ERROR(SplitPiece(piece, *step.regex, step.behavior, step.invert, &next));
          break;
        case Step::Kind::kPrefixSpace:
          if (piece.empty() || piece[0] != ' ') piece.insert(piece.begin(), ' ');
          next.push_back(std::move(piece));
          break;
        case Step::Kind::kMetaspace: {
          ReplaceAll(&piece, " ", step.replacement);
          const bool prepend = step.scheme == PrependScheme::kAlways ||
                               (step.scheme == PrependScheme::kFirst && first_fragment && i == 0);
          if (prepend && piece.compare(0, step.replacement.size(), step.replacement) != 0) {
            piece.insert(0, step.replacement);
          }
          if (!step.split) {
            next.push_back(std::move(piece));
            break;
          }
          // Each word starts at a replacement character (MergedWithNext).
          size_t begin = 0;
          while (begin < piece.size()) {
            size_t end = piece.find(step.replacement, begin + 1);
            if (end == std::string::npos) end = piece.size();
            next.push_back(piece.substr(begin, end - begin));
            begin = end;
          }
          break;
        }
      }
    }
    pieces.swap(next);
  }
  for (auto& p : pieces) words->push_back(std::move(p));
  return absl::OkStatus();
}

absl::StatusOr<PreTokenizer> PreTokenizerForGgufPre(std::string_view pre, bool* ignore_merges) {
  *ignore_merges = false;
  std::vector<std::string_view> patterns;
  if (pre == "default") {
    patterns = {"[\\p{P}\\$\\+<=>\\^~\\|]+", kGpt2Pattern, "\\p{N}+", "[0-9][0-9][0-9]"};
  } else if (OneOf(pre, {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
                         "midm-2.0", "lfm2", "dbrx", "smaug-bpe"})) {
    patterns = {kLlama3Pattern};
    // llama.cpp sets ignore_merges for the llama3 names (not for dbrx / smaug-bpe).
    *ignore_merges = !OneOf(pre, {"dbrx", "smaug-bpe"});
  } else if (OneOf(pre, {"qwen2", "stablelm2", "hunyuan"})) {
    patterns = {kQwen2Pattern};
  } else if (OneOf(pre, {"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone",
                         "minerva-7b"})) {
    patterns = {"\\p{N}", kGpt2Pattern};
  } else {
    // "gpt2", "gpt-2", "mpt", "olmo", "jais", "phi-2", ... use the GPT-2 pattern. So does any
    // name we do not know: GPT-2's is the pattern most byte-level vocabularies were trained
    // with, and being close is better than refusing the model.
    patterns = {kGpt2Pattern};
  }
  PreTokenizer p;
  for (std::string_view pattern : patterns) {
    ENGINE_ASSIGN_OR_RETURN(UnicodeRegex regex, UnicodeRegex::Compile(pattern));
    p.AddRegexSplit(std::move(regex), SplitBehavior::kIsolated, /*invert=*/false);
  }
  return p;
}

std::string QuoteRegex(std::string_view literal) {
  std::string out;
  for (const char c : literal) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x80 && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      if (c == '\r') {
        out += "\\r";
        continue;
      }
      if (c == '\t') {
        out += "\\t";
        continue;
      }
      if (u < 0x20 || u == 0x7F) {
        static const char* hex = "0123456789ABCDEF";
        out += "\\x{";
        out += hex[u >> 4];
        out += hex[u & 15];
        out += '}';
        continue;
      }
      out += '\\';
    }
    out += c;
  }
  return out;
}

}  // namespace engine::tokenizer
