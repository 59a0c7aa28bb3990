// The few fields of sentencepiece's ModelProto that fp4lm reads and writes, in plain C++ types,
// with a hand-written protobuf wire-format encoder/decoder: Debian's libsentencepiece-dev ships
// no sentencepiece_model.pb.h (DESIGN.md "Dependency facts"). Field numbers are those of
// sentencepiece's src/sentencepiece_model.proto.
#ifndef FP4LM_TOKENIZER_SPM_MODEL_PROTO_H_
#define FP4LM_TOKENIZER_SPM_MODEL_PROTO_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace engine::tokenizer {

// ModelProto.SentencePiece.Type (also the GGUF tokenizer.ggml.token_type values).
enum SpmPieceType : int32_t {
  kSpmNormal = 1,
  kSpmUnknown = 2,
  kSpmControl = 3,
  kSpmUserDefined = 4,
  kSpmUnused = 5,
  kSpmByte = 6,
};

// TrainerSpec.ModelType.
enum SpmModelType : int32_t { kSpmUnigram = 1, kSpmBpe = 2, kSpmWord = 3, kSpmChar = 4 };

struct SpmPiece {
  std::string piece;
  float score = 0.0f;
  int32_t type = kSpmNormal;
};

// Defaults are the proto2 defaults, so a parsed message without a field reads as the library
// would read it.
struct SpmModelProto {
  std::vector<SpmPiece> pieces;  // field 1

  // trainer_spec (field 2)
  int32_t model_type = kSpmUnigram;            // 3
  int32_t vocab_size = 8000;                   // 4
  bool treat_whitespace_as_suffix = false;     // 24
  bool byte_fallback = false;                  // 35
  int32_t unk_id = 0;                          // 40
  int32_t bos_id = 1;                          // 41
  int32_t eos_id = 2;                          // 42
  int32_t pad_id = -1;                         // 43
  std::string unk_surface = " \xE2\x81\x87 ";  // 44 (" ⁇ ", what Decode prints for <unk>)
  std::string unk_piece = "<unk>";             // 45
  std::string bos_piece = "<s>";               // 46
  std::string eos_piece = "</s>";              // 47
  std::string pad_piece = "<pad>";             // 48

  // normalizer_spec (field 3)
  std::string normalizer_name;            // 1
  bool has_precompiled_charsmap = false;  // 2 (parsed only: we never write a charsmap)
  bool add_dummy_prefix = true;           // 3
  bool remove_extra_whitespaces = true;   // 4
  bool escape_whitespaces = true;         // 5

  // Parse only: byte offset, in the parsed buffer, of each piece's `type` varint value (npos
  // when the field is absent), so a type can be patched in place (see PatchPieceType).
  std::vector<size_t> type_offsets;
};

// Encodes the fields above as a serialized ModelProto accepted by
// SentencePieceProcessor::LoadFromSerializedProto.
std::string SerializeSpmModelProto(const SpmModelProto& model);

// Decodes a serialized ModelProto (e.g. tokenizer.model). Unknown fields are skipped; a
// malformed message is a DataLoss error naming `source`.
absl::StatusOr<SpmModelProto> ParseSpmModelProto(std::string_view bytes, const std::string& source);

// Rewrites the type of piece `index` in a buffer parsed by ParseSpmModelProto. Types are
// one-byte varints (1..6), so the buffer keeps its length.
absl::Status PatchPieceType(const SpmModelProto& parsed, size_t index, int32_t new_type,
                            std::string* bytes);

}  // namespace engine::tokenizer

#endif  // FP4LM_TOKENIZER_SPM_MODEL_PROTO_H_
