// GGUF container constants, metadata value types and ggml tensor types with their block
// geometry, as defined by llama.cpp (ggml/include/gguf.h, ggml/include/ggml.h,
// ggml/src/ggml-common.h). One definition for the parser, the writer and the dequantizer.
#ifndef FP4LM_MODEL_GGUF_FORMAT_H_
#define FP4LM_MODEL_GGUF_FORMAT_H_

#include <cstdint>

namespace engine::model::gguf {

// File layout (all integers little-endian):
//   "GGUF" | u32 version | u64 tensor_count | u64 kv_count
//   kv_count x   { string key | u32 value_type | value }
//   tensor_count x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   padding to `alignment` | tensor data (each tensor at data_start + offset)
// string = u64 length + bytes (no terminator); array value = u32 elem_type | u64 n | elements.
// ne is innermost-first: ne[0] is the contiguous row length.
inline constexpr uint8_t kMagic[4] = {'G', 'G', 'U', 'F'};
inline constexpr uint32_t kVersion = 3;            // what we write; we read 2 and 3
inline constexpr uint32_t kDefaultAlignment = 32;  // when general.alignment is absent
inline constexpr const char* kAlignmentKey = "general.alignment";
inline constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS

// Sanity bounds on a hostile header, far above any real file (SmolLM2 has 272 tensors and
// 33 keys); the bytes-remaining checks are the real guard, these keep messages clear.
inline constexpr uint64_t kMaxTensorCount = uint64_t{1} << 24;
inline constexpr uint64_t kMaxKvCount = uint64_t{1} << 24;
inline constexpr uint32_t kMaxArrayNesting = 4;  // arrays of arrays, in practice never used
inline constexpr uint32_t kMaxAlignment = uint32_t{1} << 20;
// A metadata string (chat templates are kilobytes) and an array (a 256k-token vocabulary, or a
// tokenizer file embedded as uint8) stay far below these.
inline constexpr uint64_t kMaxStringBytes = uint64_t{1} << 26;
inline constexpr uint64_t kMaxArrayElements = uint64_t{1} << 28;

enum class ValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

constexpr bool IsKnownValueType(uint32_t t) { return t <= 12; }

constexpr const char* ValueTypeName(ValueType t) {
  switch (t) {
    case ValueType::kUint8:
      return "uint8";
    case ValueType::kInt8:
      return "int8";
    case ValueType::kUint16:
      return "uint16";
    case ValueType::kInt16:
      return "int16";
    case ValueType::kUint32:
      return "uint32";
    case ValueType::kInt32:
      return "int32";
    case ValueType::kFloat32:
      return "float32";
    case ValueType::kBool:
      return "bool";
    case ValueType::kString:
      return "string";
    case ValueType::kArray:
      return "array";
    case ValueType::kUint64:
      return "uint64";
    case ValueType::kInt64:
      return "int64";
    case ValueType::kFloat64:
      return "float64";
  }
  return "unknown";
}

// Bytes of one element of a fixed-size type; 0 for string and array (variable size).
constexpr uint32_t ValueTypeSize(ValueType t) {
  switch (t) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kBool:
      return 1;
    case ValueType::kUint16:
    case ValueType::kInt16:
      return 2;
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kFloat32:
      return 4;
    case ValueType::kUint64:
    case ValueType::kInt64:
    case ValueType::kFloat64:
      return 8;
    case ValueType::kString:
    case ValueType::kArray:
      return 0;
  }
  return 0;
}

// The fewest bytes one element of type `t` can occupy in a file (string: its u64 length;
// array: its u32 type and u64 count). Bounds element counts against the bytes remaining.
constexpr uint32_t MinEncodedSize(ValueType t) {
  if (t == ValueType::kString) return 8;
  if (t == ValueType::kArray) return 12;
  return ValueTypeSize(t);
}

// ggml tensor types (ggml.h numbering; gaps are types removed from ggml).
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kMXFP4 = 39,
};

inline constexpr int64_t kQK_K = 256;  // super-block size of the K-quants

// Block geometry of a ggml type: `block_size` elements are stored in `type_size` bytes
// (ggml's blck_size / type_size). Unknown type numbers have name == nullptr.
struct GgmlTypeTraits {
  const char* name = nullptr;
  int64_t block_size = 0;
  int64_t type_size = 0;
};

// Sizes from the block structs and static_asserts of ggml-common.h.
constexpr GgmlTypeTraits GgmlTypeInfo(uint32_t type) {
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::kF32:
      return {"F32", 1, 4};
    case GgmlType::kF16:
      return {"F16", 1, 2};
    case GgmlType::kQ4_0:
      return {"Q4_0", 32, 2 + 16};
    case GgmlType::kQ4_1:
      return {"Q4_1", 32, 2 + 2 + 16};
    case GgmlType::kQ5_0:
      return {"Q5_0", 32, 2 + 4 + 16};
    case GgmlType::kQ5_1:
      return {"Q5_1", 32, 2 + 2 + 4 + 16};
    case GgmlType::kQ8_0:
      return {"Q8_0", 32, 2 + 32};
    case GgmlType::kQ8_1:
      return {"Q8_1", 32, 2 + 2 + 32};
    case GgmlType::kQ2_K:
      return {"Q2_K", kQK_K, 16 + 64 + 2 + 2};
    case GgmlType::kQ3_K:
      return {"Q3_K", kQK_K, 32 + 64 + 12 + 2};
    case GgmlType::kQ4_K:
      return {"Q4_K", kQK_K, 2 + 2 + 12 + 128};
    case GgmlType::kQ5_K:
      return {"Q5_K", kQK_K, 2 + 2 + 12 + 32 + 128};
    case GgmlType::kQ6_K:
      return {"Q6_K", kQK_K, 128 + 64 + 16 + 2};
    case GgmlType::kQ8_K:
      return {"Q8_K", kQK_K, 4 + 256 + 32};
    case GgmlType::kIQ2_XXS:
      return {"IQ2_XXS", kQK_K, 2 + 64};
    case GgmlType::kIQ2_XS:
      return {"IQ2_XS", kQK_K, 2 + 64 + 8};
    case GgmlType::kIQ3_XXS:
      return {"IQ3_XXS", kQK_K, 2 + 96};
    case GgmlType::kIQ1_S:
      return {"IQ1_S", kQK_K, 2 + 32 + 16};
    case GgmlType::kIQ4_NL:
      return {"IQ4_NL", 32, 2 + 16};
    case GgmlType::kIQ3_S:
      return {"IQ3_S", kQK_K, 2 + 64 + 8 + 32 + 4};
    case GgmlType::kIQ2_S:
      return {"IQ2_S", kQK_K, 2 + 64 + 8 + 8};
    case GgmlType::kIQ4_XS:
      return {"IQ4_XS", kQK_K, 2 + 2 + 4 + 128};
    case GgmlType::kI8:
      return {"I8", 1, 1};
    case GgmlType::kI16:
      return {"I16", 1, 2};
    case GgmlType::kI32:
      return {"I32", 1, 4};
    case GgmlType::kI64:
      return {"I64", 1, 8};
    case GgmlType::kF64:
      return {"F64", 1, 8};
    case GgmlType::kIQ1_M:
      return {"IQ1_M", kQK_K, 32 + 16 + 8};
    case GgmlType::kBF16:
      return {"BF16", 1, 2};
    case GgmlType::kTQ1_0:
      return {"TQ1_0", kQK_K, 48 + 4 + 2};
    case GgmlType::kTQ2_0:
      return {"TQ2_0", kQK_K, 64 + 2};
    case GgmlType::kMXFP4:
      return {"MXFP4", 32, 1 + 16};
  }
  return {};
}

// fp4lm's own tensor types: the packed FP4 codes of a W4A4 linear (model/fp4_weights.h), type
// number kFp4lmTypeBase + Fp4Format (E2M1 1000, E3M0 1001, E1M2 1002). Two 4-bit codes per
// byte, element 2i in the low nibble, so a "block" is 2 elements in 1 byte and a row of
// in_features codes is in_features / 2 bytes (in_features must be even).
//
// Why 1000+: ggml numbers its types densely from 0 (GGML_TYPE_COUNT is 40 at MXFP4 = 39) and
// adds one at a time; forks that added private types used 100..143. 1000 is far above both, so
// no ggml release and no fork type we know of collides with it. The price: llama.cpp's own
// GGUF loader (and gguf-py) refuses any type >= GGML_TYPE_COUNT ("tensor '...' has invalid
// ggml type 1000"), so those tools cannot open a W4A4 file; ParseGguf accepts these types only
// in files whose fp4lm.quantization is "w4a4" and rejects them everywhere else like any other
// unknown type.
inline constexpr uint32_t kFp4lmTypeBase = 1000;
inline constexpr uint32_t kFp4lmTypeCount = 3;  // e2m1, e3m0, e1m2

constexpr bool IsFp4lmType(uint32_t type) {
  return type >= kFp4lmTypeBase && type < kFp4lmTypeBase + kFp4lmTypeCount;
}

constexpr GgmlTypeTraits Fp4lmTypeInfo(uint32_t type) {
  switch (type) {
    case kFp4lmTypeBase + 0:
      return {"FP4LM_E2M1", 2, 1};
    case kFp4lmTypeBase + 1:
      return {"FP4LM_E3M0", 2, 1};
    case kFp4lmTypeBase + 2:
      return {"FP4LM_E1M2", 2, 1};
    default:
      return {};
  }
}

// Any tensor type a parsed file may hold: ggml's, then fp4lm's.
constexpr GgmlTypeTraits TensorTypeInfo(uint32_t type) {
  const GgmlTypeTraits ggml = GgmlTypeInfo(type);
  return ggml.name != nullptr ? ggml : Fp4lmTypeInfo(type);
}

static_assert(GgmlTypeInfo(static_cast<uint32_t>(GgmlType::kQ4_1)).type_size == 20);
static_assert(GgmlTypeInfo(static_cast<uint32_t>(GgmlType::kQ4_K)).type_size == 144);
static_assert(GgmlTypeInfo(static_cast<uint32_t>(GgmlType::kQ5_K)).type_size == 176);
static_assert(GgmlTypeInfo(static_cast<uint32_t>(GgmlType::kQ6_K)).type_size == 210);
static_assert(GgmlTypeInfo(4).name == nullptr, "Q4_2 was removed from ggml");
static_assert(GgmlTypeInfo(kFp4lmTypeBase).name == nullptr, "fp4lm types are not ggml types");
static_assert(Fp4lmTypeInfo(kFp4lmTypeBase + kFp4lmTypeCount).name == nullptr);

// Metadata keys of llama-architecture files (llama.cpp gguf-py/gguf/constants.py) and ours.
namespace keys {
inline constexpr const char* kArchitecture = "general.architecture";
inline constexpr const char* kName = "general.name";
inline constexpr const char* kFileType = "general.file_type";
// Prefixed with "<architecture>.":
inline constexpr const char* kContextLength = "context_length";
inline constexpr const char* kEmbeddingLength = "embedding_length";
inline constexpr const char* kFeedForwardLength = "feed_forward_length";
inline constexpr const char* kBlockCount = "block_count";
inline constexpr const char* kHeadCount = "attention.head_count";
inline constexpr const char* kHeadCountKv = "attention.head_count_kv";
inline constexpr const char* kKeyLength = "attention.key_length";
inline constexpr const char* kValueLength = "attention.value_length";
inline constexpr const char* kRmsEps = "attention.layer_norm_rms_epsilon";
inline constexpr const char* kRopeFreqBase = "rope.freq_base";
inline constexpr const char* kRopeDimensionCount = "rope.dimension_count";
inline constexpr const char* kVocabSize = "vocab_size";
// Tokenizer (tokenizer.ggml.*) and chat template.
inline constexpr const char* kTokModel = "tokenizer.ggml.model";
inline constexpr const char* kTokPre = "tokenizer.ggml.pre";
inline constexpr const char* kTokTokens = "tokenizer.ggml.tokens";
inline constexpr const char* kTokScores = "tokenizer.ggml.scores";
inline constexpr const char* kTokTypes = "tokenizer.ggml.token_type";
inline constexpr const char* kTokMerges = "tokenizer.ggml.merges";
inline constexpr const char* kTokBos = "tokenizer.ggml.bos_token_id";
inline constexpr const char* kTokEos = "tokenizer.ggml.eos_token_id";
inline constexpr const char* kTokUnk = "tokenizer.ggml.unknown_token_id";
inline constexpr const char* kTokPad = "tokenizer.ggml.padding_token_id";
inline constexpr const char* kTokAddBos = "tokenizer.ggml.add_bos_token";
inline constexpr const char* kTokAddSpacePrefix = "tokenizer.ggml.add_space_prefix";
inline constexpr const char* kChatTemplate = "tokenizer.chat_template";
// fp4lm's own: a non-GGUF tokenizer file embedded whole. kind is "sentencepiece", "llama2c" or
// "hf-tokenizer-json"; file is a uint8 array (a string is accepted too); the ids are the
// tokenizer_config.json hints of TokenizerSource (written only when known).
inline constexpr const char* kFp4lmTokKind = "fp4lm.tokenizer.kind";
inline constexpr const char* kFp4lmTokFile = "fp4lm.tokenizer.file";
inline constexpr const char* kFp4lmTokBos = "fp4lm.tokenizer.bos_token_id";
inline constexpr const char* kFp4lmTokEos = "fp4lm.tokenizer.eos_token_id";
// fp4lm W4A4 files (model/gguf_fp4.h has the full table): the format version (uint32) and the
// quantization scheme (string "w4a4"); per-layer activation quantizers under
// "fp4lm.blk.<N>.<input>.{format,scale}"; free-form provenance as "fp4lm.meta.<key>" strings.
inline constexpr const char* kFp4lmFormatVersion = "fp4lm.format_version";
inline constexpr const char* kFp4lmQuantization = "fp4lm.quantization";
inline constexpr const char* kFp4lmMetaPrefix = "fp4lm.meta.";
// The full-precision attention sink (model/fp4_weights.h Fp4Sink): its token id, and F32
// tensors of its keys and values ([n_layers * kv_dim], interleaved RoPE order) and logits.
inline constexpr const char* kFp4lmSinkToken = "fp4lm.sink.token";
inline constexpr const char* kFp4lmSinkKeys = "fp4lm.sink.keys";
inline constexpr const char* kFp4lmSinkValues = "fp4lm.sink.values";
inline constexpr const char* kFp4lmSinkLogits = "fp4lm.sink.logits";
inline constexpr const char* kFp4lmW4A4 = "w4a4";
}  // namespace keys

// The newest fp4lm.format_version this code reads and the one it writes.
inline constexpr uint32_t kFp4lmFormatVersionCurrent = 1;

}  // namespace engine::model::gguf

#endif  // FP4LM_MODEL_GGUF_FORMAT_H_
