// Model: loading (format detection, tokenizer, info) and tokenization; ChatTemplate, the public
// face of tokenizer/chat_template.h.
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/engine.h"
#include "engine/internal.h"
#include "engine/model_impl.h"
#include "engine/observer.h"
#include "engine/tokenizer_loader.h"
#include "kernels/core/cpu_features.h"
#include "kernels/cpu/fp4_gemm.h"
#include "kernels/core/status_macros.h"
#include "model/model_loader.h"
#include "tokenizer/chat_template.h"

namespace engine {

const char* Version() { return FP4LM_VERSION; }

const char* ActivationPointName(ActivationPoint point) {
  switch (point) {
    case ActivationPoint::kAttnInput:
      return "attn_input";
    case ActivationPoint::kAttnOutput:
      return "attn_output";
    case ActivationPoint::kFfnInput:
      return "ffn_input";
    case ActivationPoint::kDownInput:
      return "down_input";
  }
  return "unknown";
}

namespace {

std::string ComputePath(const kernels::CpuFeatures& f, bool w4a4) {
  const char* isa = f.avx512f ? "avx512f" : (f.avx2 && f.fma) ? "avx2+fma" : "generic";
  if (!w4a4) return absl::StrCat("cpu f32 (", isa, ")");
  return absl::StrCat("cpu w4a4 (fp4 gemm: ", kernels::Fp4GemmPathDescription(),
                      "; attention and head f32: ", isa, ")");
}

ModelInfo MakeInfo(const model::LoadedModel& m, const tokenizer::Tokenizer& tok,
                   const std::string& tokenizer_description, int32_t num_threads) {
  const model::ModelConfig& c = m.config;
  ModelInfo info;
  info.path = m.path;
  info.format = model::ModelFormatName(m.format);
  info.architecture = c.architecture;
  info.model_dim = c.model_dim;
  info.ffn_dim = c.ffn_dim;
  info.n_layers = c.n_layers;
  info.n_heads = c.n_heads;
  info.n_kv_heads = c.n_kv_heads;
  info.head_dim = c.head_dim;
  info.vocab_size = c.vocab_size;
  info.max_seq_len = c.max_seq_len;
  info.norm_eps = c.norm_eps;
  info.rope_theta = c.rope_theta;
  info.rope_style = model::RopeStyleName(c.rope_style);
  info.tied_embeddings = c.tied_embeddings;
  info.parameter_count = c.ParameterCount();
  const bool w4a4 = !m.weights.fp4.empty();
  info.weight_format = w4a4 ? "w4a4 (fp4 weights and activations, static scales)" : "f32";
  info.tokenizer = tokenizer_description;
  info.bos_id = tok.bos_id();
  info.eos_id = tok.eos_id();
  info.chat_template = m.chat_template;
  const kernels::CpuFeatures features = kernels::DetectCpuFeatures();
  info.cpu_features = features.ToString();
  info.compute_path = ComputePath(features, w4a4);
  for (const auto& [key, value] : m.weights.fp4.metadata) {
    info.quantization.push_back({key, value});
  }
  info.num_threads = num_threads;
  for (const model::SourceTensorInfo& t : m.tensors) {
    info.tensors.push_back(TensorSummary{.name = t.name, .dtype = t.dtype, .shape = t.shape});
  }
  return info;
}

}  // namespace

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const ModelOptions& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("no model path given");
  if (options.num_threads < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_threads must be >= 0, got ", options.num_threads));
  }
  auto impl = std::make_unique<Impl>();
  ENGINE_ASSIGN_OR_RETURN(impl->loaded, model::LoadModelFile(options.path));
  const int32_t vocab_size = impl->loaded.config.vocab_size;
  std::string description;
  if (!options.tokenizer_path.empty()) {
    ENGINE_ASSIGN_OR_RETURN(impl->tokenizer, LoadTokenizerFile(options.tokenizer_path, vocab_size));
    const std::string_view kind = impl->tokenizer->kind();
    description = absl::StrCat(absl::string_view(kind.data(), kind.size()), " (",
                               options.tokenizer_path, ")");
  } else {
    ENGINE_ASSIGN_OR_RETURN(impl->tokenizer, LoadTokenizer(impl->loaded.tokenizer, vocab_size));
    description = DescribeTokenizerSource(impl->loaded.tokenizer);
  }
  ENGINE_ASSIGN_OR_RETURN(impl->backend,
                          PrepareBackendWeights(impl->loaded.config, impl->loaded.weights));
  impl->num_threads = options.num_threads > 0
                          ? options.num_threads
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  impl->info = MakeInfo(impl->loaded, *impl->tokenizer, description, impl->num_threads);
  return std::unique_ptr<Model>(new Model(std::move(impl)));
}

const ModelInfo& Model::info() const { return impl_->info; }

absl::StatusOr<std::vector<TokenId>> Model::Tokenize(std::string_view text, bool add_bos,
                                                     bool parse_special) const {
  return impl_->tokenizer->Encode(
      text, tokenizer::EncodeOptions{.add_bos = add_bos, .parse_special = parse_special});
}

absl::StatusOr<std::string> Model::Detokenize(std::span<const TokenId> tokens) const {
  return impl_->tokenizer->Decode(tokens);
}

bool Model::IsEndOfGeneration(TokenId token) const {
  return impl_->tokenizer->IsEndOfGeneration(token);
}

// ---- ChatTemplate ----

struct ChatTemplate::Impl {
  const tokenizer::Tokenizer* tokenizer = nullptr;
  tokenizer::ChatTemplate chat;
  std::string name;
  std::string default_system_prompt;
  std::vector<TokenId> end_of_reply;
};

namespace {

std::vector<tokenizer::ChatMessage> ToTokenizerMessages(std::span<const ChatMessage> messages) {
  std::vector<tokenizer::ChatMessage> out;
  out.reserve(messages.size());
  for (const ChatMessage& m : messages) out.push_back({m.role, m.content});
  return out;
}

}  // namespace

ChatTemplate::ChatTemplate(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ChatTemplate::~ChatTemplate() = default;

std::vector<std::string> ChatTemplate::KnownNames() {
  return tokenizer::ChatTemplate::KnownNames();
}

absl::StatusOr<std::unique_ptr<ChatTemplate>> ChatTemplate::Create(const Model& model,
                                                                   std::string_view name) {
  absl::StatusOr<tokenizer::ChatTemplate> chat = absl::UnknownError("unset");
  if (name.empty()) {
    const ModelInfo& info = model.info();
    if (info.chat_template.empty()) {
      return absl::NotFoundError(absl::StrCat(
          info.path, ": the model has no chat template; name one of: ",
          absl::StrJoin(tokenizer::ChatTemplate::KnownNames(), ", ")));
    }
    chat = tokenizer::ChatTemplate::FromJinja(info.chat_template);
    if (!chat.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(info.path, ": ", chat.status().message()));
    }
  } else {
    ENGINE_ASSIGN_OR_RETURN(chat, tokenizer::ChatTemplate::FromName(name));
  }
  auto impl = std::make_unique<Impl>(Impl{.tokenizer = &TokenizerOf(model), .chat = *chat});
  impl->name = std::string(chat->name());
  impl->default_system_prompt = chat->default_system_prompt();
  const tokenizer::ChatSegment end[] = {{chat->end_of_reply(), false}};
  ENGINE_ASSIGN_OR_RETURN(impl->end_of_reply,
                          tokenizer::TokenizeChat(*impl->tokenizer, impl->chat, end));
  return std::unique_ptr<ChatTemplate>(new ChatTemplate(std::move(impl)));
}

const std::string& ChatTemplate::name() const { return impl_->name; }
const std::string& ChatTemplate::default_system_prompt() const {
  return impl_->default_system_prompt;
}
std::span<const TokenId> ChatTemplate::EndOfReply() const { return impl_->end_of_reply; }

absl::StatusOr<std::string> ChatTemplate::Render(std::span<const ChatMessage> messages,
                                                 bool add_generation_prompt) const {
  return impl_->chat.RenderText(ToTokenizerMessages(messages), add_generation_prompt);
}

absl::StatusOr<std::vector<TokenId>> ChatTemplate::Tokenize(std::span<const ChatMessage> messages,
                                                            size_t first,
                                                            bool add_generation_prompt) const {
  if (first > messages.size()) {
    return absl::InvalidArgumentError(absl::StrCat("chat tokenization from message ", first,
                                                   " of a conversation of ", messages.size()));
  }
  ENGINE_ASSIGN_OR_RETURN(const std::vector<tokenizer::RenderedMessage> rendered,
                          impl_->chat.Render(ToTokenizerMessages(messages)));
  const std::vector<tokenizer::ChatSegment> segments = tokenizer::ChatSegments(
      std::span(rendered).subspan(first),
      add_generation_prompt ? impl_->chat.generation_prompt() : std::string_view());
  return tokenizer::TokenizeChat(*impl_->tokenizer, impl_->chat, segments);
}

}  // namespace engine

namespace engine {

const model::LoadedModel& LoadedModelOf(const Model& model) { return model.impl_->loaded; }
const tokenizer::Tokenizer& TokenizerOf(const Model& model) { return *model.impl_->tokenizer; }
const BackendWeights& BackendOf(const Model& model) { return model.impl_->backend; }

}  // namespace engine
