// libengine: load a model, open sessions, generate text.
//
// Threading: a Model is immutable after Load() and may be shared by any number of Sessions on
// any threads. A Session is not thread-safe; use one per conversation (or per thread). A call
// on a Session while another thread is inside a call on it fails with FailedPrecondition
// (best effort: the const accessors position(), capacity() and Logits() are not checked, and
// reading them during another thread's call is undefined).
// Lifetimes: a Session shares ownership of its model's weights and tokenizer, so it may outlive
// the Model object. A ChatTemplate must not outlive its Model.
//
// Lifetimes of what is returned by reference or view: Model::info() and ChatTemplate's strings
// and EndOfReply() live as long as their object; Session::Logits() is valid until the next
// call that changes the Session (Prefill, Step, Generate*, Rewind). Everything else is returned
// by value.
//
// Linking: CMake `find_package(fp4lm)` then `target_link_libraries(app PRIVATE fp4lm::engine)`,
// or pkg-config `fp4lm`. C++20. The headers need only Abseil's Status types.
//
// Errors: every fallible call returns absl::Status / absl::StatusOr. Codes used:
//   InvalidArgument     bad options, token id out of range, malformed file contents
//   NotFound            model or tokenizer file missing, a tensor missing from it, or no chat
//                       template in a model that ChatTemplate::Create is asked to use
//   DataLoss            truncated / corrupt file
//   Unimplemented       unsupported architecture, file version or tensor type
//   ResourceExhausted   the prompt or generation does not fit in the context (KV cache), or
//                       the weights or KV cache would need more memory than the machine (or
//                       its cgroup) has: checked before allocating
//   FailedPrecondition  Sample()/Step() before Prefill() or after Rewind(), Rewind() past the
//                       current position, a Session used from two threads at once
//   Cancelled           the stream callback asked to stop
#ifndef FP4LM_ENGINE_INCLUDE_ENGINE_ENGINE_H_
#define FP4LM_ENGINE_INCLUDE_ENGINE_ENGINE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/options.h"

namespace engine {
namespace model {
struct LoadedModel;
}
namespace tokenizer {
class Tokenizer;
}
struct BackendWeights;

using TokenId = int32_t;

// The library's semantic version, "MAJOR.MINOR.PATCH".
const char* Version();

struct TensorSummary {
  std::string name;
  std::string dtype;           // as stored in the file: "F32", "BF16", "Q4_1", ...
  std::vector<int64_t> shape;  // outermost-first
};

struct ModelInfo {
  std::string path;
  std::string format;        // "llama2.c", "huggingface", "gguf"
  std::string architecture;  // "llama", "mistral", "qwen2"
  int32_t model_dim = 0;
  int32_t ffn_dim = 0;
  int32_t n_layers = 0;
  int32_t n_heads = 0;
  int32_t n_kv_heads = 0;
  int32_t head_dim = 0;
  int32_t vocab_size = 0;
  int32_t max_seq_len = 0;
  float norm_eps = 0.0f;
  float rope_theta = 0.0f;
  std::string rope_style;     // "interleaved pairs" or "halves"
  bool tied_embeddings = false;
  int64_t parameter_count = 0;
  std::string weight_format;  // how the engine computes: "f32" or "w4a4 (...)"
  // W4A4 models: how they were quantized (method, formats, sink, calibration data, version).
  std::vector<std::pair<std::string, std::string>> quantization;
  std::string tokenizer;      // "sentencepiece (tokenizer.model)", "bpe (gguf gpt2, pre=smollm)"
  TokenId bos_id = -1;
  TokenId eos_id = -1;
  std::string chat_template;  // empty if the model has none
  std::string cpu_features;   // e.g. "avx512f avx512vnni avx2 fma"
  std::string compute_path;   // the kernels in use, e.g. "cpu f32 avx512"
  int32_t num_threads = 0;
  std::vector<TensorSummary> tensors;
};

class Model {
 public:
  static absl::StatusOr<std::unique_ptr<Model>> Load(const ModelOptions& options);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelInfo& info() const;

  // Encodes text. `add_bos` prepends BOS if the vocabulary has one; `parse_special` makes
  // special-token text such as "<|im_start|>" map to its token (never the case by default, so
  // user text cannot inject control tokens).
  absl::StatusOr<std::vector<TokenId>> Tokenize(std::string_view text, bool add_bos,
                                                bool parse_special = false) const;
  absl::StatusOr<std::string> Detokenize(std::span<const TokenId> tokens) const;
  // True for EOS and the other end-of-generation tokens of the vocabulary.
  bool IsEndOfGeneration(TokenId token) const;

  struct Impl;  // internal; opaque to users

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  friend class Session;
  friend const model::LoadedModel& LoadedModelOf(const Model&);
  friend const tokenizer::Tokenizer& TokenizerOf(const Model&);
  friend const BackendWeights& BackendOf(const Model&);
  // Shared with every Session created from this Model (see "Lifetimes" above).
  std::shared_ptr<Impl> impl_;
};

// One message of a conversation.
struct ChatMessage {
  std::string role;  // "system" (first message only), "user" or "assistant"
  std::string content;
};

// A chat format: renders a conversation the way the model was trained to see it and tokenizes
// it. No Jinja engine: the model's template (ModelInfo::chat_template) is recognised by its
// markers as one of the known families and rendered by code written for that family.
//
// Template markup goes through the vocabulary's special tokens; message text is always plain
// text, so a message cannot inject a control token such as "<|im_end|>".
//
// Immutable after Create(): may be used from any thread. Must not outlive its Model.
class ChatTemplate {
 public:
  // The template names Create() accepts: chatml, llama2, llama3, mistral, zephyr, gemma.
  static std::vector<std::string> KnownNames();

  // `name` empty: the model's own template. NotFound if the model has none; InvalidArgument
  // (listing the known names) if it is not one of the known families.
  // `name` given: that family, whatever the model says; InvalidArgument (listing the known
  // names) if there is no such template.
  static absl::StatusOr<std::unique_ptr<ChatTemplate>> Create(const Model& model,
                                                              std::string_view name = {});
  ~ChatTemplate();
  ChatTemplate(const ChatTemplate&) = delete;
  ChatTemplate& operator=(const ChatTemplate&) = delete;

  const std::string& name() const;  // "chatml", ...
  // The system prompt the model's template writes when a conversation has none (SmolLM2:
  // "You are a helpful AI assistant named SmolLM, trained by Hugging Face"); "" if none.
  const std::string& default_system_prompt() const;

  // The conversation as text; with the opening of the assistant's reply when
  // `add_generation_prompt`. InvalidArgument for a role other than system/user/assistant or a
  // system message that is not the first.
  absl::StatusOr<std::string> Render(std::span<const ChatMessage> messages,
                                     bool add_generation_prompt) const;

  // The tokens of messages[first, messages.size()) as they appear in the whole conversation
  // (plus the reply's opening when `add_generation_prompt`). No BOS is added beyond what the
  // template writes. Incremental use: a chat that has fed the tokens of messages [0, first)
  // feeds only these. Each call tokenizes its range on its own, so text never merges into one
  // token across `first` (in these formats turns are separated by special tokens wherever the
  // vocabulary has them). InvalidArgument if first > messages.size(), or as Render().
  absl::StatusOr<std::vector<TokenId>> Tokenize(std::span<const ChatMessage> messages,
                                                size_t first, bool add_generation_prompt) const;

  // The tokens that close an assistant reply (ChatML: "<|im_end|>\n"). Session::Generate stops
  // at the end-of-generation token without feeding it: feed these after a reply so that the
  // next turn finds the cache as if the whole conversation had been rendered. The view lives
  // as long as this object.
  std::span<const TokenId> EndOfReply() const;

 private:
  struct Impl;
  explicit ChatTemplate(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Called once per generated token with the newly completed text (never half a UTF-8
// character; may be empty). Return false to stop: Generate() then returns CancelledError.
using TokenCallback = std::function<bool(TokenId token, std::string_view text)>;

struct GenerateStats {
  int32_t prompt_tokens = 0;
  int32_t generated_tokens = 0;
  double prefill_seconds = 0.0;
  double decode_seconds = 0.0;
};

class Session {
 public:
  static absl::StatusOr<std::unique_ptr<Session>> Create(const Model& model,
                                                         const SessionOptions& options = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Runs `tokens` through the model as one batch, appending to the KV cache. May be called
  // again to append a new turn. Afterwards Logits() holds the next-token distribution.
  // ResourceExhausted (and no state change) if they do not fit in the context;
  // InvalidArgument for an out-of-range token id or an empty span.
  absl::Status Prefill(std::span<const TokenId> tokens);

  // Samples the next token from the current logits and returns it. The token is NOT yet in the
  // KV cache: the next Prefill/Step feeds it (Accept-then-feed keeps Logits() of the sampled
  // position readable). FailedPrecondition before the first Prefill.
  absl::StatusOr<TokenId> Sample(const SamplingParams& params);

  // Sample + feed the sampled token, i.e. one decode step. Returns the token.
  absl::StatusOr<TokenId> Step(const SamplingParams& params);

  // Tokenize (with BOS) + Prefill + Step until an end-of-generation token, max_new_tokens, or
  // the callback returns false. An empty prompt means BOS alone. A context that fills up
  // during generation ends it with ResourceExhausted; the tokens generated until then were
  // passed to the callback (and appended to `generated`). Tokens generated are appended
  // to `generated` when it is not null.
  absl::Status Generate(std::string_view prompt, const SamplingParams& params,
                        const TokenCallback& on_token, std::vector<TokenId>* generated = nullptr,
                        GenerateStats* stats = nullptr);
  // The same for a prompt tokenized by the caller (e.g. a chat template tokenized with
  // parse_special); InvalidArgument if `prompt_tokens` is empty.
  absl::Status GenerateFromTokens(std::span<const TokenId> prompt_tokens,
                                  const SamplingParams& params, const TokenCallback& on_token,
                                  std::vector<TokenId>* generated = nullptr,
                                  GenerateStats* stats = nullptr);

  // Logits of the last position fed, in host memory: a view valid until the next mutating call.
  // Empty before the first Prefill and after Rewind.
  std::span<const float> Logits() const;
  // Logits of every position of the last Prefill when it was asked to keep them (eval),
  // [n_tokens, vocab_size] row-major.
  absl::Status PrefillAllLogits(std::span<const TokenId> tokens, std::vector<float>* logits);

  int32_t position() const;  // tokens in the KV cache
  int32_t capacity() const;  // context size in tokens
  // Drops the tokens at positions >= `position` (multi-turn edits, branching evaluation).
  absl::Status Rewind(int32_t position);
  // Rewind(0). Its only failure, another thread using the Session, is a caller bug caught by a
  // debug check (ignored in release builds).
  void Reset();

 private:
  struct Impl;
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace engine

#endif  // FP4LM_ENGINE_INCLUDE_ENGINE_ENGINE_H_
