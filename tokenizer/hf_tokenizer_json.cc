// tokenizer.json -> BpeTokenizerConfig (see hf_tokenizer_json.h). nlohmann::json is used
// without exceptions: parse with allow_exceptions=false, and check every type before get<>().
// Component semantics follow the Hugging Face `tokenizers` crate (normalizers/, pre_tokenizers/,
// decoders/, processors/template.rs).
#include "tokenizer/hf_tokenizer_json.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernels/core/status_macros.h"
#include "nlohmann/json.hpp"

namespace engine::tokenizer {
namespace {

using Json = nlohmann::json;

// Ids beyond this are certainly corrupt and would make us allocate gigabytes.
constexpr int64_t kMaxTokenId = 1 << 24;
// Sequence components nest (a Sequence of Sequences); real files use one level. The parsers
// recurse, so a hostile file must not choose the depth.
constexpr int kMaxNesting = 16;

class Reader {
 public:
  explicit Reader(const std::string& source) : source_(source) {}

  absl::Status Error(std::string_view where, std::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": ", absl::string_view(where.data(), where.size()), ": ",
                     absl::string_view(what.data(), what.size())));
  }
  absl::Status Unsupported(std::string_view where, std::string_view what) const {
    return absl::UnimplementedError(
        absl::StrCat(source_, ": ", absl::string_view(where.data(), where.size()), ": ",
                     absl::string_view(what.data(), what.size()), " is not supported"));
  }

  absl::StatusOr<std::string> String(const Json& o, const char* key, std::string_view where,
                                     const char* fallback = nullptr) const {
    if (!o.contains(key) || o[key].is_null()) {
      if (fallback != nullptr) return std::string(fallback);
      return Error(where, absl::StrCat("missing string field '", key, "'"));
    }
    if (!o[key].is_string()) return Error(where, absl::StrCat("'", key, "' is not a string"));
    return o[key].get<std::string>();
  }
  absl::StatusOr<bool> Bool(const Json& o, const char* key, bool fallback,
                            std::string_view where) const {
    if (!o.contains(key) || o[key].is_null()) return fallback;
    if (!o[key].is_boolean()) return Error(where, absl::StrCat("'", key, "' is not a boolean"));
    return o[key].get<bool>();
  }
  absl::StatusOr<int64_t> Int(const Json& o, const char* key, int64_t fallback,
                              std::string_view where) const {
    if (!o.contains(key) || o[key].is_null()) return fallback;
    if (!o[key].is_number_integer()) {
      return Error(where, absl::StrCat("'", key, "' is not an integer"));
    }
    return o[key].get<int64_t>();
  }
  absl::StatusOr<std::string> Type(const Json& o, std::string_view where) const {
    if (!o.is_object()) return Error(where, "expected an object");
    return String(o, "type", where);
  }
  // {"String": s} or {"Regex": r} -> a PCRE2 pattern.
  absl::StatusOr<std::string> Pattern(const Json& o, std::string_view where) const {
    if (!o.contains("pattern") || !o["pattern"].is_object()) {
      return Error(where, "missing object field 'pattern'");
    }
    const Json& p = o["pattern"];
    if (p.contains("String") && p["String"].is_string()) {
      return QuoteRegex(p["String"].get<std::string>());
    }
    if (p.contains("Regex") && p["Regex"].is_string()) return p["Regex"].get<std::string>();
    return Error(where, "'pattern' has neither a String nor a Regex");
  }
  absl::StatusOr<UnicodeRegex> Compile(std::string_view pattern, std::string_view where) const {
    auto regex = UnicodeRegex::Compile(pattern);
    if (!regex.ok()) return Error(where, std::string(regex.status().message()));
    return regex;
  }

 private:
  const std::string& source_;
};

absl::Status ParseNormalizer(const Reader& r, const Json& n, BpeTokenizerConfig* c,
                             int depth = 0) {
  if (n.is_null()) return absl::OkStatus();
  ENGINE_ASSIGN_OR_RETURN(const std::string type, r.Type(n, "normalizer"));
  if (type == "Sequence") {
    if (depth >= kMaxNesting) {
      return r.Error("normalizer", absl::StrCat("Sequences nested deeper than ", kMaxNesting));
    }
    if (!n.contains("normalizers") || !n["normalizers"].is_array()) {
      return r.Error("normalizer", "Sequence without a 'normalizers' array");
    }
    for (const Json& child : n["normalizers"]) {
      ENGINE_RETURN_IF_ERROR(ParseNormalizer(r, child, c, depth + 1));
    }
    return absl::OkStatus();
  }
  BpeNormalizerStep step;
  if (type == "Prepend") {
    step.kind = BpeNormalizerStep::Kind::kPrepend;
    ENGINE_ASSIGN_OR_RETURN(step.text, r.String(n, "prepend", "normalizer Prepend"));
  } else if (type == "Replace") {
    step.kind = BpeNormalizerStep::Kind::kReplace;
    ENGINE_ASSIGN_OR_RETURN(const std::string pattern, r.Pattern(n, "normalizer Replace"));
    ENGINE_ASSIGN_OR_RETURN(step.content, r.String(n, "content", "normalizer Replace"));
    ENGINE_ASSIGN_OR_RETURN(UnicodeRegex regex, r.Compile(pattern, "normalizer Replace"));
    step.regex = std::make_shared<const UnicodeRegex>(std::move(regex));
  } else {
    // NFC/NFKC/Lowercase/BertNormalizer/...: would need Unicode tables we do not carry.
    return r.Unsupported("normalizer", absl::StrCat("type '", type, "'"));
  }
  c->normalizer.push_back(std::move(step));
  return absl::OkStatus();
}

absl::StatusOr<SplitBehavior> ParseBehavior(const Reader& r, const std::string& name) {
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  return r.Error("pre_tokenizer Split", absl::StrCat("unknown behavior '", name, "'"));
}

absl::Status AddSplit(const Reader& r, PreTokenizer* p, std::string_view pattern,
                      SplitBehavior behavior, bool invert) {
  ENGINE_ASSIGN_OR_RETURN(UnicodeRegex regex, r.Compile(pattern, "pre_tokenizer"));
  p->AddRegexSplit(std::move(regex), behavior, invert);
  return absl::OkStatus();
}

absl::StatusOr<PrependScheme> ParsePrependScheme(const Reader& r, const Json& o,
                                                 std::string_view where) {
  if (o.contains("prepend_scheme") && o["prepend_scheme"].is_string()) {
    const std::string s = o["prepend_scheme"].get<std::string>();
    if (s == "always") return PrependScheme::kAlways;
    if (s == "first") return PrependScheme::kFirst;
    if (s == "never") return PrependScheme::kNever;
    return r.Error(where, absl::StrCat("unknown prepend_scheme '", s, "'"));
  }
  // Older files: add_prefix_space (default true).
  ENGINE_ASSIGN_OR_RETURN(const bool add, r.Bool(o, "add_prefix_space", true, where));
  return add ? PrependScheme::kAlways : PrependScheme::kNever;
}

absl::Status ParsePreTokenizer(const Reader& r, const Json& p, BpeTokenizerConfig* c,
                               int depth = 0) {
  if (p.is_null()) return absl::OkStatus();
  ENGINE_ASSIGN_OR_RETURN(const std::string type, r.Type(p, "pre_tokenizer"));
  if (type == "Sequence") {
    if (depth >= kMaxNesting) {
      return r.Error("pre_tokenizer", absl::StrCat("Sequences nested deeper than ", kMaxNesting));
    }
    if (!p.contains("pretokenizers") || !p["pretokenizers"].is_array()) {
      return r.Error("pre_tokenizer", "Sequence without a 'pretokenizers' array");
    }
    for (const Json& child : p["pretokenizers"]) {
      ENGINE_RETURN_IF_ERROR(ParsePreTokenizer(r, child, c, depth + 1));
    }
    return absl::OkStatus();
  }
  if (type == "ByteLevel") {
    // The byte mapping itself happens inside BpeModel (model.byte_level), after all splits.
    ENGINE_ASSIGN_OR_RETURN(const bool prefix,
                            r.Bool(p, "add_prefix_space", true, "pre_tokenizer ByteLevel"));
    ENGINE_ASSIGN_OR_RETURN(const bool use_regex,
                            r.Bool(p, "use_regex", true, "pre_tokenizer ByteLevel"));
    if (prefix) c->pre_tokenizer.AddPrefixSpace();
    if (use_regex) {
      ENGINE_RETURN_IF_ERROR(
          AddSplit(r, &c->pre_tokenizer, kGpt2Pattern, SplitBehavior::kIsolated, false));
    }
    c->model.byte_level = true;
    return absl::OkStatus();
  }
  if (type == "Metaspace") {
    ENGINE_ASSIGN_OR_RETURN(std::string replacement,
                            r.String(p, "replacement", "pre_tokenizer Metaspace", "\xE2\x96\x81"));
    ENGINE_ASSIGN_OR_RETURN(const PrependScheme scheme,
                            ParsePrependScheme(r, p, "pre_tokenizer Metaspace"));
    ENGINE_ASSIGN_OR_RETURN(const bool split, r.Bool(p, "split", true, "pre_tokenizer Metaspace"));
    if (replacement.empty()) return r.Error("pre_tokenizer Metaspace", "empty replacement");
    c->pre_tokenizer.AddMetaspace(std::move(replacement), scheme, split);
    return absl::OkStatus();
  }
  if (type == "Split") {
    ENGINE_ASSIGN_OR_RETURN(const std::string pattern, r.Pattern(p, "pre_tokenizer Split"));
    ENGINE_ASSIGN_OR_RETURN(const std::string behavior,
                            r.String(p, "behavior", "pre_tokenizer Split"));
    ENGINE_ASSIGN_OR_RETURN(const SplitBehavior b, ParseBehavior(r, behavior));
    ENGINE_ASSIGN_OR_RETURN(const bool invert, r.Bool(p, "invert", false, "pre_tokenizer Split"));
    return AddSplit(r, &c->pre_tokenizer, pattern, b, invert);
  }
  if (type == "Digits") {
    ENGINE_ASSIGN_OR_RETURN(const bool individual,
                            r.Bool(p, "individual_digits", false, "pre_tokenizer Digits"));
    return AddSplit(r, &c->pre_tokenizer, individual ? "\\p{N}" : "\\p{N}+",
                    SplitBehavior::kIsolated, false);
  }
  if (type == "Whitespace") {
    return AddSplit(r, &c->pre_tokenizer, "\\w+|[^\\w\\s]+", SplitBehavior::kRemoved, true);
  }
  if (type == "WhitespaceSplit") {
    return AddSplit(r, &c->pre_tokenizer, "\\s+", SplitBehavior::kRemoved, false);
  }
  return r.Unsupported("pre_tokenizer", absl::StrCat("type '", type, "'"));
}

// `fused`: a Fuse decoder ran before, so a Strip applies to the whole text, not each token.
absl::Status ParseDecoder(const Reader& r, const Json& d, bool* fused, BpeTokenizerConfig* c,
                          int depth = 0) {
  if (d.is_null()) return absl::OkStatus();
  ENGINE_ASSIGN_OR_RETURN(const std::string type, r.Type(d, "decoder"));
  BpeDecoderOptions& o = c->decoder;
  if (type == "Sequence") {
    if (depth >= kMaxNesting) {
      return r.Error("decoder", absl::StrCat("Sequences nested deeper than ", kMaxNesting));
    }
    if (!d.contains("decoders") || !d["decoders"].is_array()) {
      return r.Error("decoder", "Sequence without a 'decoders' array");
    }
    for (const Json& child : d["decoders"])
      ENGINE_RETURN_IF_ERROR(ParseDecoder(r, child, fused, c, depth + 1));
    return absl::OkStatus();
  }
  if (type == "ByteLevel") {
    o.byte_level = true;
    return absl::OkStatus();
  }
  if (type == "ByteFallback") {
    o.byte_fallback = true;
    return absl::OkStatus();
  }
  if (type == "Fuse") {
    *fused = true;
    return absl::OkStatus();
  }
  if (type == "Replace") {
    const Json& p = d.contains("pattern") ? d["pattern"] : Json();
    if (!p.is_object() || !p.contains("String") || !p["String"].is_string()) {
      return r.Unsupported("decoder Replace", "a pattern other than {\"String\": ...}");
    }
    ENGINE_ASSIGN_OR_RETURN(std::string content, r.String(d, "content", "decoder Replace"));
    o.replacements.emplace_back(p["String"].get<std::string>(), std::move(content));
    return absl::OkStatus();
  }
  if (type == "Strip") {
    ENGINE_ASSIGN_OR_RETURN(const std::string content, r.String(d, "content", "decoder Strip"));
    ENGINE_ASSIGN_OR_RETURN(const int64_t start, r.Int(d, "start", 0, "decoder Strip"));
    ENGINE_ASSIGN_OR_RETURN(const int64_t stop, r.Int(d, "stop", 0, "decoder Strip"));
    if (content.size() != 1 || start < 0 || stop < 0 || start > 64 || stop > 64) {
      return r.Unsupported("decoder Strip", absl::StrCat("content '", content, "' with start ",
                                                         start, " and stop ", stop));
    }
    o.strip_char = content[0];
    if (*fused) {
      // Stripping the end of the whole text cannot be streamed token by token.
      if (stop != 0) return r.Unsupported("decoder Strip", "stop > 0 after Fuse");
      o.strip_first = static_cast<int>(start);
    } else {
      o.strip_each_start = static_cast<int>(start);
      o.strip_each_stop = static_cast<int>(stop);
    }
    return absl::OkStatus();
  }
  if (type == "Metaspace") {
    ENGINE_ASSIGN_OR_RETURN(std::string replacement,
                            r.String(d, "replacement", "decoder Metaspace", "\xE2\x96\x81"));
    ENGINE_ASSIGN_OR_RETURN(const PrependScheme scheme,
                            ParsePrependScheme(r, d, "decoder Metaspace"));
    o.replacements.emplace_back(std::move(replacement), " ");
    o.strip_char = ' ';
    o.strip_first = scheme == PrependScheme::kNever ? 0 : 1;
    return absl::OkStatus();
  }
  return r.Unsupported("decoder", absl::StrCat("type '", type, "'"));
}

// Returns the token name that a TemplateProcessing "single" template puts first, or "".
absl::StatusOr<std::string> LeadingSpecialToken(const Reader& r, const Json& p, int depth = 0) {
  if (p.is_null()) return std::string();
  ENGINE_ASSIGN_OR_RETURN(const std::string type, r.Type(p, "post_processor"));
  if (type == "Sequence") {
    if (depth >= kMaxNesting) {
      return r.Error("post_processor", absl::StrCat("Sequences nested deeper than ", kMaxNesting));
    }
    if (!p.contains("processors") || !p["processors"].is_array()) return std::string();
    for (const Json& child : p["processors"]) {
      ENGINE_ASSIGN_OR_RETURN(std::string name, LeadingSpecialToken(r, child, depth + 1));
      if (!name.empty()) return name;
    }
    return std::string();
  }
  if (type != "TemplateProcessing") return std::string();  // ByteLevel etc. add no tokens
  if (!p.contains("single") || !p["single"].is_array() || p["single"].empty()) {
    return std::string();
  }
  const Json& first = p["single"][0];
  if (!first.is_object() || !first.contains("SpecialToken")) return std::string();
  return r.String(first["SpecialToken"], "id", "post_processor TemplateProcessing");
}

// tokenizer_config.json's bos_token / eos_token: a string or {"content": ...}.
std::string ConfigTokenText(const Json& config, const char* key) {
  if (!config.is_object() || !config.contains(key)) return "";
  const Json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    return v["content"].get<std::string>();
  }
  return "";
}

}  // namespace

absl::StatusOr<BpeTokenizerConfig> BpeConfigFromHfJson(std::string_view json,
                                                       const std::string& source,
                                                       const HfTokenizerOptions& options) {
  const Reader r(source);
  const Json root = Json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not a valid JSON object"));
  }
  if (!root.contains("model") || !root["model"].is_object()) {
    return r.Error("model", "missing object field 'model'");
  }
  const Json& model = root["model"];
  const bool looks_bpe = model.contains("vocab") && model.contains("merges");
  ENGINE_ASSIGN_OR_RETURN(const std::string model_type,
                          r.String(model, "type", "model", looks_bpe ? "BPE" : ""));
  if (model_type != "BPE") {
    return r.Unsupported("model", absl::StrCat("type '", model_type, "' (only BPE is)"));
  }
  // operator[] of a const json on a missing key is undefined behaviour (found by fuzzing: a
  // model with "type": "BPE" and no vocab).
  if (!model.contains("vocab")) return r.Error("model", "missing object field 'vocab'");
  if (!model.contains("merges")) return r.Error("model", "missing array field 'merges'");

  BpeTokenizerConfig c;
  c.source = source;

  // Vocabulary: {"token": id}.
  if (!model["vocab"].is_object()) return r.Error("model.vocab", "expected an object");
  absl::flat_hash_map<std::string, TokenId> vocab;
  int64_t max_id = -1;
  for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
    if (!it.value().is_number_integer()) {
      return r.Error("model.vocab", absl::StrCat("id of '", it.key(), "' is not an integer"));
    }
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || id >= kMaxTokenId) {
      return r.Error("model.vocab",
                     absl::StrCat("id ", id, " of '", it.key(), "' is out of range"));
    }
    vocab.emplace(it.key(), static_cast<TokenId>(id));
    max_id = std::max(max_id, id);
  }

  // Added tokens may lie beyond the model's vocabulary.
  const Json empty_array = Json::array();
  const Json& added = root.contains("added_tokens") && root["added_tokens"].is_array()
                          ? root["added_tokens"]
                          : empty_array;
  for (const Json& a : added) {
    const std::string where = "added_tokens";
    if (!a.is_object()) return r.Error(where, "entry is not an object");
    BpeAddedToken t;
    ENGINE_ASSIGN_OR_RETURN(const int64_t id, r.Int(a, "id", -1, where));
    if (id < 0 || id >= kMaxTokenId) return r.Error(where, absl::StrCat("bad id ", id));
    t.id = static_cast<TokenId>(id);
    ENGINE_ASSIGN_OR_RETURN(t.content, r.String(a, "content", where));
    ENGINE_ASSIGN_OR_RETURN(t.special, r.Bool(a, "special", false, where));
    ENGINE_ASSIGN_OR_RETURN(t.normalized, r.Bool(a, "normalized", !t.special, where));
    ENGINE_ASSIGN_OR_RETURN(t.lstrip, r.Bool(a, "lstrip", false, where));
    ENGINE_ASSIGN_OR_RETURN(t.rstrip, r.Bool(a, "rstrip", false, where));
    ENGINE_ASSIGN_OR_RETURN(const bool single_word, r.Bool(a, "single_word", false, where));
    if (single_word) return r.Unsupported(where, absl::StrCat("single_word for '", t.content, "'"));
    t.control = t.special;
    max_id = std::max(max_id, id);
    c.added_tokens.push_back(std::move(t));
  }
  // The token table has max_id + 1 entries: ids must not claim far more tokens than the file
  // holds. Real vocabularies are dense (added tokens follow the model's, maybe after a gap).
  const int64_t entries = static_cast<int64_t>(vocab.size() + c.added_tokens.size());
  if (max_id >= 2 * entries + 1024) {
    return r.Error("model.vocab", absl::StrCat("token ids go up to ", max_id, " for only ",
                                               entries, " tokens (expected dense ids 0..n-1)"));
  }
  c.tokens.assign(static_cast<size_t>(max_id + 1), std::string());
  for (const auto& [text, id] : vocab) c.tokens[id] = text;
  for (const BpeAddedToken& t : c.added_tokens) {
    if (c.tokens[t.id].empty()) c.tokens[t.id] = t.content;
  }

  // Merges: "a b" strings (split at the space) or [a, b] pairs.
  if (!model["merges"].is_array()) return r.Error("model.merges", "expected an array");
  for (const Json& m : model["merges"]) {
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        return r.Error("model.merges", absl::StrCat("'", s, "' is not two tokens"));
      }
      c.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      c.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      return r.Error("model.merges", "entry is neither \"a b\" nor [a, b]");
    }
  }

  ENGINE_ASSIGN_OR_RETURN(const std::string unk, r.String(model, "unk_token", "model", ""));
  if (!unk.empty()) {
    const auto it = vocab.find(unk);
    if (it == vocab.end())
      return r.Error("model.unk_token", absl::StrCat("'", unk, "' not in vocab"));
    c.model.unk_id = it->second;
  }
  ENGINE_ASSIGN_OR_RETURN(c.model.byte_fallback, r.Bool(model, "byte_fallback", false, "model"));
  ENGINE_ASSIGN_OR_RETURN(c.model.fuse_unk, r.Bool(model, "fuse_unk", false, "model"));
  ENGINE_ASSIGN_OR_RETURN(c.model.ignore_merges, r.Bool(model, "ignore_merges", false, "model"));
  if (model.contains("dropout") && model["dropout"].is_number() &&
      model["dropout"].get<double>() > 0.0) {
    return r.Unsupported("model", "BPE dropout");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    ENGINE_ASSIGN_OR_RETURN(const std::string affix, r.String(model, key, "model", ""));
    if (!affix.empty()) return r.Unsupported("model", key);
  }

  const Json null_json;
  ENGINE_RETURN_IF_ERROR(
      ParseNormalizer(r, root.contains("normalizer") ? root["normalizer"] : null_json, &c));
  ENGINE_RETURN_IF_ERROR(
      ParsePreTokenizer(r, root.contains("pre_tokenizer") ? root["pre_tokenizer"] : null_json, &c));
  bool fused = false;
  ENGINE_RETURN_IF_ERROR(
      ParseDecoder(r, root.contains("decoder") ? root["decoder"] : null_json, &fused, &c));

  // BOS: what the post-processor puts first; then tokenizer_config.json; then explicit ids.
  const auto id_of = [&](const std::string& text) -> TokenId {
    for (const BpeAddedToken& t : c.added_tokens) {
      if (t.content == text) return t.id;
    }
    const auto it = vocab.find(text);
    return it == vocab.end() ? -1 : it->second;
  };
  ENGINE_ASSIGN_OR_RETURN(
      const std::string lead,
      LeadingSpecialToken(r, root.contains("post_processor") ? root["post_processor"] : null_json));
  if (!lead.empty()) {
    c.bos_id = id_of(lead);
    c.add_bos = c.bos_id >= 0;
  }
  if (!options.tokenizer_config_json.empty()) {
    const Json config = Json::parse(options.tokenizer_config_json.begin(),
                                    options.tokenizer_config_json.end(), nullptr, false);
    if (config.is_discarded() || !config.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": tokenizer_config.json is not a valid JSON object"));
    }
    if (const std::string bos = ConfigTokenText(config, "bos_token"); !bos.empty()) {
      if (c.bos_id < 0) c.bos_id = id_of(bos);
    }
    if (const std::string eos = ConfigTokenText(config, "eos_token"); !eos.empty()) {
      c.eos_id = id_of(eos);
    }
    if (lead.empty() && config.contains("add_bos_token") && config["add_bos_token"].is_boolean()) {
      c.add_bos = config["add_bos_token"].get<bool>() && c.bos_id >= 0;
    }
  }
  if (options.bos_id >= 0) c.bos_id = options.bos_id;
  if (options.eos_id >= 0) c.eos_id = options.eos_id;
  return c;
}

}  // namespace engine::tokenizer
