// Session: the mutable half of inference (KV cache, scratch, sampler, thread pool) over an
// immutable Model, which it shares ownership of, so it may outlive the Model object.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "engine/engine.h"
#include "engine/kv_cache.h"
#include "engine/model_impl.h"
#include "engine/sampler.h"
#include "engine/transformer.h"
#include "kernels/core/status_macros.h"

namespace engine {
namespace {

// A Session is not thread-safe (engine.h). This turns concurrent use from a second thread into
// a FailedPrecondition error instead of a corrupted KV cache: the first public call in flight
// owns the Session, and calls from the owning thread nest (Step calls Sample and Prefill; a
// TokenCallback may read or rewind the Session it is called from).
class OwnerGuard {
 public:
  absl::Status Enter(const char* call) {
    const std::thread::id me = std::this_thread::get_id();
    std::thread::id none;
    if (owner_.load(std::memory_order_acquire) != me &&
        !owner_.compare_exchange_strong(none, me, std::memory_order_acq_rel)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "Session::", call,
          " called while another thread is using the same Session; a Session is not "
          "thread-safe: use one per thread"));
    }
    ++depth_;
    return absl::OkStatus();
  }
  void Leave() {
    if (--depth_ == 0) owner_.store(std::thread::id(), std::memory_order_release);
  }

 private:
  std::atomic<std::thread::id> owner_{};
  int depth_ = 0;  // only the owning thread touches it
};

class ScopedUse {
 public:
  explicit ScopedUse(OwnerGuard* guard) : guard_(guard) {}
  ~ScopedUse() { guard_->Leave(); }
  ScopedUse(const ScopedUse&) = delete;
  ScopedUse& operator=(const ScopedUse&) = delete;

 private:
  OwnerGuard* guard_;
};

}  // namespace

// First statement of every public Session call that reads or changes its state.
#define FP4LM_SESSION_ENTER(call)                       \
  ENGINE_RETURN_IF_ERROR(impl_->guard.Enter(call));     \
  const ScopedUse session_scoped_use_(&impl_->guard)

struct Session::Impl {
  // The model's state is shared, so a Session that outlives its Model keeps working.
  std::shared_ptr<const Model::Impl> model_owner;
  const Model::Impl* model = nullptr;
  OwnerGuard guard;
  KvCache kv;
  kernels::ThreadPool pool;
  ForwardBuffers buffers;
  std::vector<float> logits;      // [vocab] of the last position fed
  bool has_logits = false;
  std::vector<TokenId> history;   // the tokens in the KV cache, for the repetition penalty
  Sampler sampler{0};
  uint64_t sampler_seed = 0;
  // 1 while KV position 0 holds the implicit full-precision sink of a W4A4 model (a sequence
  // that did not start with the sink token itself); positions the API reports exclude it.
  int32_t sink_offset = 0;
  bool sink_prefix = true;  // SessionOptions::sink_prefix

  Impl(std::shared_ptr<const Model::Impl> m, KvCache cache, int num_threads)
      : model_owner(std::move(m)), model(model_owner.get()), kv(std::move(cache)),
        pool(num_threads) {}

  const model::ModelConfig& config() const { return model->loaded.config; }

  absl::Status CheckTokens(std::span<const TokenId> tokens) const {
    if (tokens.empty()) return absl::InvalidArgumentError("no tokens to process");
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (tokens[i] < 0 || tokens[i] >= config().vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat("token ", i, " has id ", tokens[i],
                                                       ", outside the vocabulary [0, ",
                                                       config().vocab_size, ")"));
      }
    }
    return kv.CheckRoom(static_cast<int32_t>(tokens.size()) + (NeedsImplicitSink(tokens) ? 1 : 0));
  }

  // Feeds tokens in chunks of kMaxBatchTokens; writes the last position's logits, or every
  // position's into `all_logits` when it is not null.
  void Run(std::span<const TokenId> tokens, std::vector<float>* all_logits) {
    const int64_t vocab = config().vocab_size;
    if (all_logits != nullptr) all_logits->resize(tokens.size() * vocab);
    logits.resize(vocab);
    size_t first = 0;
    if (UseSink(tokens)) {
      PrefillSink(all_logits);
      first = 1;
    } else if (NeedsImplicitSink(tokens)) {
      PrefillSink(nullptr);
      sink_offset = 1;
    }
    for (size_t begin = first; begin < tokens.size(); begin += kMaxBatchTokens) {
      const size_t count = std::min<size_t>(kMaxBatchTokens, tokens.size() - begin);
      ForwardArgs args{.config = &config(),
                       .weights = &model->loaded.weights,
                       .backend = &model->backend,
                       .tokens = tokens.subspan(begin, count),
                       .all_logits = all_logits != nullptr,
                       .logits = all_logits != nullptr ? all_logits->data() + begin * vocab
                                                       : logits.data()};
      Forward(args, kv, pool, buffers);
    }
    if (all_logits != nullptr) {
      std::copy(all_logits->end() - vocab, all_logits->end(), logits.begin());
    }
    history.insert(history.end(), tokens.begin(), tokens.end());
    has_logits = true;
  }

  // W4A4 models keep the attention sink (the BOS at position 0) in full precision: its keys,
  // values and next-token logits were computed by the FP32 model at quantization time.
  bool UseSink(std::span<const TokenId> tokens) const {
    const model::Fp4Sink& sink = model->loaded.weights.fp4.sink;
    return !sink.empty() && kv.size() == 0 && tokens[0] == sink.token;
  }
  // A sequence that starts with another token still gets the sink at position 0 (the fixed
  // sink prefix): otherwise its first token becomes the attention sink, with massive
  // activations that its static W4A4 scales clip.
  bool NeedsImplicitSink(std::span<const TokenId> tokens) const {
    const model::Fp4Sink& sink = model->loaded.weights.fp4.sink;
    return sink_prefix && !sink.empty() && kv.size() == 0 && tokens[0] != sink.token;
  }
  void PrefillSink(std::vector<float>* all_logits) {
    const model::ModelConfig& c = config();
    const model::Fp4Sink& sink = model->loaded.weights.fp4.sink;
    const int64_t kvd = c.kv_dim();
    for (int32_t l = 0; l < c.n_layers; ++l) {
      for (int64_t h = 0; h < c.n_kv_heads; ++h) {
        const int64_t dst = h * kv.capacity() * c.head_dim;  // position 0
        std::copy_n(sink.keys + l * kvd + h * c.head_dim, c.head_dim, kv.keys(l) + dst);
        std::copy_n(sink.values + l * kvd + h * c.head_dim, c.head_dim, kv.values(l) + dst);
      }
    }
    kv.Grow(1);
    std::copy_n(sink.logits, c.vocab_size, logits.begin());
    if (all_logits != nullptr) std::copy_n(sink.logits, c.vocab_size, all_logits->begin());
  }
};

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::~Session() = default;

absl::StatusOr<std::unique_ptr<Session>> Session::Create(const Model& model,
                                                         const SessionOptions& options) {
  const model::ModelConfig& c = model.impl_->loaded.config;
  if (options.max_seq_len < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_seq_len must be >= 0, got ", options.max_seq_len));
  }
  const int32_t capacity = options.max_seq_len > 0 ? options.max_seq_len : c.max_seq_len;
  // One more slot for the implicit sink prefix of W4A4 models (not counted in capacity()).
  const bool sink_slot =
      options.sink_prefix && !model.impl_->loaded.weights.fp4.sink.empty();
  ENGINE_ASSIGN_OR_RETURN(KvCache kv, KvCache::Create(KvCacheShape{.n_layers = c.n_layers,
                                                                    .n_kv_heads = c.n_kv_heads,
                                                                    .head_dim = c.head_dim,
                                                                    .capacity = capacity + (sink_slot ? 1 : 0)}));
  auto impl = std::make_unique<Impl>(model.impl_, std::move(kv), model.impl_->num_threads);
  impl->sink_prefix = sink_slot;
  return std::unique_ptr<Session>(new Session(std::move(impl)));
}

absl::Status Session::Prefill(std::span<const TokenId> tokens) {
  FP4LM_SESSION_ENTER("Prefill");
  ENGINE_RETURN_IF_ERROR(impl_->CheckTokens(tokens));
  impl_->Run(tokens, nullptr);
  return absl::OkStatus();
}

absl::Status Session::PrefillAllLogits(std::span<const TokenId> tokens,
                                       std::vector<float>* logits) {
  FP4LM_SESSION_ENTER("PrefillAllLogits");
  if (logits == nullptr) return absl::InvalidArgumentError("logits output is null");
  ENGINE_RETURN_IF_ERROR(impl_->CheckTokens(tokens));
  impl_->Run(tokens, logits);
  return absl::OkStatus();
}

absl::StatusOr<TokenId> Session::Sample(const SamplingParams& params) {
  FP4LM_SESSION_ENTER("Sample");
  if (!impl_->has_logits) {
    return absl::FailedPreconditionError(
        "Sample/Step called before Prefill (or after Rewind): no logits to sample from");
  }
  ENGINE_RETURN_IF_ERROR(ValidateSamplingParams(params));
  if (params.seed != impl_->sampler_seed) {
    impl_->sampler.Reseed(params.seed);
    impl_->sampler_seed = params.seed;
  }
  return impl_->sampler.Sample(impl_->logits, params, impl_->history);
}

absl::StatusOr<TokenId> Session::Step(const SamplingParams& params) {
  FP4LM_SESSION_ENTER("Step");
  ENGINE_ASSIGN_OR_RETURN(TokenId token, Sample(params));
  const TokenId one[1] = {token};
  ENGINE_RETURN_IF_ERROR(Prefill(one));
  return token;
}

absl::Status Session::Generate(std::string_view prompt, const SamplingParams& params,
                               const TokenCallback& on_token, std::vector<TokenId>* generated,
                               GenerateStats* stats) {
  FP4LM_SESSION_ENTER("Generate");
  const tokenizer::Tokenizer& tok = *impl_->model->tokenizer;
  ENGINE_ASSIGN_OR_RETURN(std::vector<TokenId> tokens,
                          tok.Encode(prompt, tokenizer::EncodeOptions{.add_bos = position() == 0}));
  if (tokens.empty()) {
    if (tok.bos_id() < 0) {
      return absl::InvalidArgumentError("empty prompt and the vocabulary has no BOS token");
    }
    tokens.push_back(tok.bos_id());
  }
  return GenerateFromTokens(tokens, params, on_token, generated, stats);
}

absl::Status Session::GenerateFromTokens(std::span<const TokenId> tokens,
                                         const SamplingParams& params,
                                         const TokenCallback& on_token,
                                         std::vector<TokenId>* generated, GenerateStats* stats) {
  FP4LM_SESSION_ENTER("GenerateFromTokens");
  using Clock = std::chrono::steady_clock;
  const Model::Impl& model = *impl_->model;
  impl_->sampler.Reseed(params.seed);
  impl_->sampler_seed = params.seed;
  GenerateStats local_stats;
  GenerateStats& s = stats != nullptr ? *stats : local_stats;
  s = GenerateStats{.prompt_tokens = static_cast<int32_t>(tokens.size())};
  const Clock::time_point prefill_start = Clock::now();
  ENGINE_RETURN_IF_ERROR(Prefill(tokens));
  const Clock::time_point decode_start = Clock::now();
  s.prefill_seconds = std::chrono::duration<double>(decode_start - prefill_start).count();

  tokenizer::TextStreamer streamer(*model.tokenizer);
  absl::Status status = absl::OkStatus();
  for (int32_t i = 0; i < params.max_new_tokens; ++i) {
    absl::StatusOr<TokenId> token = Sample(params);
    if (!token.ok()) {
      status = token.status();
      break;
    }
    if (model.tokenizer->IsEndOfGeneration(*token)) break;
    ++s.generated_tokens;
    if (generated != nullptr) generated->push_back(*token);
    absl::StatusOr<std::string> text = streamer.Push(*token);
    if (!text.ok()) {
      status = text.status();
      break;
    }
    if (!on_token(*token, *text)) {
      status = absl::CancelledError("generation stopped by the callback");
      break;
    }
    if (i + 1 == params.max_new_tokens) break;  // the last token need not be fed
    const TokenId next[1] = {*token};
    if (absl::Status fed = Prefill(next); !fed.ok()) {
      status = fed;
      break;
    }
  }
  if (const std::string rest = streamer.Flush(); !rest.empty() && status.ok()) {
    on_token(-1, rest);
  }
  s.decode_seconds = std::chrono::duration<double>(Clock::now() - decode_start).count();
  return status;
}

std::span<const float> Session::Logits() const {
  if (!impl_->has_logits) return {};
  return impl_->logits;
}
int32_t Session::position() const { return impl_->kv.size() - impl_->sink_offset; }
int32_t Session::capacity() const {
  return impl_->kv.capacity() - (impl_->sink_prefix ? 1 : 0);
}

absl::Status Session::Rewind(int32_t new_position) {
  FP4LM_SESSION_ENTER("Rewind");
  if (new_position < 0 || new_position > position()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot rewind to position ", new_position, ": the cache holds ", position(), " tokens"));
  }
  // Rewinding to 0 drops the implicit sink too; the next sequence decides whether it needs one.
  impl_->kv.Truncate(new_position == 0 ? 0 : new_position + impl_->sink_offset);
  if (new_position == 0) impl_->sink_offset = 0;
  impl_->history.resize(static_cast<size_t>(new_position));
  // The logits belonged to the last fed position, which may be gone now.
  impl_->has_logits = false;
  return absl::OkStatus();
}

void Session::Reset() {
  const absl::Status rewound = Rewind(0);
  // Fails only when another thread is using the Session: a bug of the caller.
  ENGINE_DCHECK(rewound.ok());
  (void)rewound;
}

}  // namespace engine
