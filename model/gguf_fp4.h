// The W4A4 part of fp4lm's self-contained GGUF model file: how the FP4 linears, their row
// scales, the static activation quantizers and the provenance strings of Fp4ModelWeights
// (model/fp4_weights.h) are laid out in a GGUF v3 llama file. gguf_writer.cc and gguf_reader.cc
// call these for the quantized half; everything else in the file is the FP32 writer's.
//
// A W4A4 file is an ordinary llama GGUF (config, tokenizer, chat template, FP32 token_embd /
// output / output_norm / attn_norm / ffn_norm) plus, N = layer, L = each of attn_q, attn_k,
// attn_v, attn_output, ffn_gate, ffn_up, ffn_down:
//
//   key / tensor                          type                 value
//   fp4lm.format_version                  uint32               1 (newer: Unimplemented)
//   fp4lm.quantization                    string               "w4a4"
//   fp4lm.blk.N.<input>.format            string               "e2m1" | "e3m0" | "e1m2"
//   fp4lm.blk.N.<input>.scale             float32              finite, > 0
//     <input> = attn_input (q/k/v), attn_output (o), ffn_input (gate/up), down_input (down)
//   fp4lm.meta.<key>                      string               Fp4ModelWeights::metadata
//   blk.N.L.weight                        FP4LM_<format>       ne [in, out], out * in / 2 bytes
//                                         (type 1000 + Fp4Format: 1000 e2m1, 1001 e3m0,
//                                          1002 e1m2; gguf_format.h says why 1000)
//   blk.N.L.row_scale                     F32                  ne [out], finite, >= 0
//   blk.N.{attn_q,attn_k,attn_v}.bias     F32                  ne [out], iff the model has
//                                                              q/k/v biases
//
// Codes are fp4_weights.h's canonical layout: row n is in_features / 2 bytes, element 2i in the
// low nibble. Like every GGUF llama file, Q/K rows use interleaved RoPE order: for a
// halves-RoPE model the writer permutes whole rows of wq/wk codes, row scales and biases
// (exact), and the reader reports RopeStyle::kInterleaved.
#ifndef FP4LM_MODEL_GGUF_FP4_H_
#define FP4LM_MODEL_GGUF_FP4_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "model/config.h"
#include "model/fp4_weights.h"
#include "model/gguf_file.h"
#include "model/mapped_file.h"
#include "model/weights.h"

namespace engine::model {

// The tensor type number of weight codes in `format`, and back (nullopt: not an fp4lm type).
uint32_t Fp4GgufType(Fp4Format format);
std::optional<Fp4Format> Fp4FormatFromGgufType(uint32_t type);
// "e2m1" -> kE2M1 etc.; nullopt for anything else.
std::optional<Fp4Format> ParseFp4FormatName(const std::string& name);

// The activation quantizer key prefix of layer `layer`, e.g. "fp4lm.blk.3.ffn_input".
std::string Fp4ActKey(int layer, const char* input);

// ---- Writing ----

// Adds fp4lm.format_version, fp4lm.quantization and fp4lm.meta.*. Refuses empty or duplicate
// metadata keys (`source` names the model in errors).
absl::Status AddFp4ModelKeys(const Fp4ModelWeights& fp4, const std::string& source,
                             gguf::GgufBuilder& b);
// Adds layer `layer`'s activation quantizer keys and its linears' codes, row scales and biases,
// for a model that passed ModelWeights::Validate; refuses row scales that are negative or not
// finite. Q/K rows are permuted to interleaved order when config.rope_style is kHalves. The
// builder keeps views of unpermuted data: `l` must outlive the builder's Write.
// Adds the full-precision attention sink (keys, values, logits), if the model has one.
absl::Status AddFp4Sink(const ModelConfig& config, const Fp4Sink& sink, const std::string& source,
                        gguf::GgufBuilder& builder);
absl::Status AddFp4Layer(const ModelConfig& config, const Fp4LayerWeights& l, int layer,
                         const std::string& source, gguf::GgufBuilder& b);

// ---- Reading ----

// Whether the file claims to be fp4lm-quantized (has fp4lm.quantization or
// fp4lm.format_version).
bool IsFp4lmQuantized(const gguf::GgufFile& file);
// fp4lm.format_version must be 1..kFp4lmFormatVersionCurrent (newer: Unimplemented naming the
// version) and fp4lm.quantization "w4a4" (anything else: Unimplemented).
absl::Status CheckFp4Header(const gguf::GgufFile& file);
// Fills weights->fp4 from a file that passed CheckFp4Header: codes are views into `mapping`
// (kept alive by *weights), row scales and biases F32 in place. Every tensor and key is checked
// against `config` first; errors name the GGUF tensor or key.
absl::Status ReadFp4Weights(const gguf::GgufFile& file,
                            const std::shared_ptr<const MappedFile>& mapping,
                            const ModelConfig& config, ModelWeights* weights);

}  // namespace engine::model

#endif  // FP4LM_MODEL_GGUF_FP4_H_
