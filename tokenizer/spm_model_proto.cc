// Protobuf wire format for the ModelProto subset in spm_model_proto.h. Only varint (0),
// 64-bit (1), length-delimited (2) and 32-bit (5) wire types exist in this message; groups are
// rejected. Every read is bounds-checked against the buffer.
#include "tokenizer/spm_model_proto.h"

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernels/core/status_macros.h"

namespace engine::tokenizer {
namespace {

// ---- writing ----

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutTag(int field, int wire_type, std::string* out) {
  PutVarint((static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(wire_type), out);
}

// int32 fields are sign-extended to 64 bits on the wire (so -1 takes ten bytes).
void PutInt32Field(int field, int32_t v, std::string* out) {
  PutTag(field, 0, out);
  PutVarint(static_cast<uint64_t>(static_cast<int64_t>(v)), out);
}

void PutBoolField(int field, bool v, std::string* out) {
  PutTag(field, 0, out);
  PutVarint(v ? 1 : 0, out);
}

void PutBytesField(int field, std::string_view v, std::string* out) {
  PutTag(field, 2, out);
  PutVarint(v.size(), out);
  out->append(v.data(), v.size());
}

void PutFloatField(int field, float v, std::string* out) {
  PutTag(field, 5, out);
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((bits >> (8 * i)) & 0xFF));
}

// ---- reading ----

class WireReader {
 public:
  WireReader(std::string_view bytes, size_t base, const std::string& source)
      : bytes_(bytes), base_(base), source_(source) {}

  bool done() const { return pos_ >= bytes_.size(); }
  size_t absolute_pos() const { return base_ + pos_; }

  absl::StatusOr<uint64_t> Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= bytes_.size()) return Error("truncated varint");
      const uint8_t b = static_cast<uint8_t>(bytes_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return v;
    }
    return Error("varint longer than 10 bytes");
  }

  absl::Status Tag(int* field, int* wire_type) {
    ENGINE_ASSIGN_OR_RETURN(const uint64_t tag, Varint());
    *field = static_cast<int>(tag >> 3);
    *wire_type = static_cast<int>(tag & 7);
    if (*field == 0) return Error("field number 0");
    return absl::OkStatus();
  }

  // A length-delimited payload; `*offset` receives its absolute offset.
  absl::StatusOr<std::string_view> Bytes(size_t* offset = nullptr) {
    ENGINE_ASSIGN_OR_RETURN(const uint64_t n, Varint());
    if (n > bytes_.size() - pos_) {
      return Error(absl::StrCat("length-delimited field of ", n, " bytes but only ",
                                bytes_.size() - pos_, " remain"));
    }
    if (offset != nullptr) *offset = base_ + pos_;
    const std::string_view v = bytes_.substr(pos_, n);
    pos_ += n;
    return v;
  }

  absl::StatusOr<float> Fixed32Float() {
    if (bytes_.size() - pos_ < 4) return Error("truncated 32-bit field");
    uint32_t bits = 0;
    for (int i = 0; i < 4; ++i)
      bits |= static_cast<uint32_t>(static_cast<uint8_t>(bytes_[pos_ + i])) << (8 * i);
    pos_ += 4;
    float v;
    std::memcpy(&v, &bits, sizeof(v));
    return v;
  }

  absl::Status Skip(int wire_type) {
    switch (wire_type) {
      case 0:
        return Varint().status();
      case 1:
        if (bytes_.size() - pos_ < 8) return Error("truncated 64-bit field");
        pos_ += 8;
        return absl::OkStatus();
      case 2:
        return Bytes().status();
      case 5:
        if (bytes_.size() - pos_ < 4) return Error("truncated 32-bit field");
        pos_ += 4;
        return absl::OkStatus();
      default:
        return Error(absl::StrCat("unsupported wire type ", wire_type));
    }
  }

  absl::Status Error(std::string_view what) const {
    return absl::DataLossError(
        absl::StrCat(source_, ": malformed sentencepiece ModelProto at byte ", base_ + pos_, ": ",
                     absl::string_view(what.data(), what.size())));
  }

  absl::Status Expect(int wire_type, int expected, std::string_view field_name) const {
    if (wire_type == expected) return absl::OkStatus();
    return Error(absl::StrCat("field ", absl::string_view(field_name.data(), field_name.size()),
                              " has wire type ", wire_type, ", expected ", expected));
  }

 private:
  std::string_view bytes_;
  size_t base_;
  size_t pos_ = 0;
  const std::string& source_;
};

absl::StatusOr<int32_t> ReadInt32(WireReader& r, int wire_type, std::string_view name) {
  ENGINE_RETURN_IF_ERROR(r.Expect(wire_type, 0, name));
  ENGINE_ASSIGN_OR_RETURN(const uint64_t v, r.Varint());
  return static_cast<int32_t>(static_cast<int64_t>(v));
}

absl::StatusOr<bool> ReadBool(WireReader& r, int wire_type, std::string_view name) {
  ENGINE_RETURN_IF_ERROR(r.Expect(wire_type, 0, name));
  ENGINE_ASSIGN_OR_RETURN(const uint64_t v, r.Varint());
  return v != 0;
}

absl::StatusOr<std::string> ReadString(WireReader& r, int wire_type, std::string_view name) {
  ENGINE_RETURN_IF_ERROR(r.Expect(wire_type, 2, name));
  ENGINE_ASSIGN_OR_RETURN(const std::string_view v, r.Bytes());
  return std::string(v);
}

absl::Status ParsePiece(std::string_view bytes, size_t base, const std::string& source,
                        SpmPiece* piece, size_t* type_offset) {
  WireReader r(bytes, base, source);
  *type_offset = std::string::npos;
  while (!r.done()) {
    int field = 0, wt = 0;
    ENGINE_RETURN_IF_ERROR(r.Tag(&field, &wt));
    switch (field) {
      case 1: {
        ENGINE_ASSIGN_OR_RETURN(piece->piece, ReadString(r, wt, "piece"));
        break;
      }
      case 2: {
        ENGINE_RETURN_IF_ERROR(r.Expect(wt, 5, "score"));
        ENGINE_ASSIGN_OR_RETURN(piece->score, r.Fixed32Float());
        break;
      }
      case 3: {
        const size_t at = r.absolute_pos();
        ENGINE_ASSIGN_OR_RETURN(piece->type, ReadInt32(r, wt, "type"));
        *type_offset = at;
        break;
      }
      default:
        ENGINE_RETURN_IF_ERROR(r.Skip(wt));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseTrainerSpec(std::string_view bytes, size_t base, const std::string& source,
                              SpmModelProto* m) {
  WireReader r(bytes, base, source);
  while (!r.done()) {
    int field = 0, wt = 0;
    ENGINE_RETURN_IF_ERROR(r.Tag(&field, &wt));
    switch (field) {
      case 3: {
        ENGINE_ASSIGN_OR_RETURN(m->model_type, ReadInt32(r, wt, "model_type"));
        break;
      }
      case 4: {
        ENGINE_ASSIGN_OR_RETURN(m->vocab_size, ReadInt32(r, wt, "vocab_size"));
        break;
      }
      case 24: {
        ENGINE_ASSIGN_OR_RETURN(m->treat_whitespace_as_suffix,
                                ReadBool(r, wt, "treat_whitespace_as_suffix"));
        break;
      }
      case 35: {
        ENGINE_ASSIGN_OR_RETURN(m->byte_fallback, ReadBool(r, wt, "byte_fallback"));
        break;
      }
      case 40: {
        ENGINE_ASSIGN_OR_RETURN(m->unk_id, ReadInt32(r, wt, "unk_id"));
        break;
      }
      case 41: {
        ENGINE_ASSIGN_OR_RETURN(m->bos_id, ReadInt32(r, wt, "bos_id"));
        break;
      }
      case 42: {
        ENGINE_ASSIGN_OR_RETURN(m->eos_id, ReadInt32(r, wt, "eos_id"));
        break;
      }
      case 43: {
        ENGINE_ASSIGN_OR_RETURN(m->pad_id, ReadInt32(r, wt, "pad_id"));
        break;
      }
      case 44: {
        ENGINE_ASSIGN_OR_RETURN(m->unk_surface, ReadString(r, wt, "unk_surface"));
        break;
      }
      case 45: {
        ENGINE_ASSIGN_OR_RETURN(m->unk_piece, ReadString(r, wt, "unk_piece"));
        break;
      }
      case 46: {
        ENGINE_ASSIGN_OR_RETURN(m->bos_piece, ReadString(r, wt, "bos_piece"));
        break;
      }
      case 47: {
        ENGINE_ASSIGN_OR_RETURN(m->eos_piece, ReadString(r, wt, "eos_piece"));
        break;
      }
      case 48: {
        ENGINE_ASSIGN_OR_RETURN(m->pad_piece, ReadString(r, wt, "pad_piece"));
        break;
      }
      default:
        ENGINE_RETURN_IF_ERROR(r.Skip(wt));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseNormalizerSpec(std::string_view bytes, size_t base, const std::string& source,
                                 SpmModelProto* m) {
  WireReader r(bytes, base, source);
  while (!r.done()) {
    int field = 0, wt = 0;
    ENGINE_RETURN_IF_ERROR(r.Tag(&field, &wt));
    switch (field) {
      case 1: {
        ENGINE_ASSIGN_OR_RETURN(m->normalizer_name, ReadString(r, wt, "name"));
        break;
      }
      case 2: {
        ENGINE_ASSIGN_OR_RETURN(const std::string charsmap,
                                ReadString(r, wt, "precompiled_charsmap"));
        m->has_precompiled_charsmap = !charsmap.empty();
        break;
      }
      case 3: {
        ENGINE_ASSIGN_OR_RETURN(m->add_dummy_prefix, ReadBool(r, wt, "add_dummy_prefix"));
        break;
      }
      case 4: {
        ENGINE_ASSIGN_OR_RETURN(m->remove_extra_whitespaces,
                                ReadBool(r, wt, "remove_extra_whitespaces"));
        break;
      }
      case 5: {
        ENGINE_ASSIGN_OR_RETURN(m->escape_whitespaces, ReadBool(r, wt, "escape_whitespaces"));
        break;
      }
      default:
        ENGINE_RETURN_IF_ERROR(r.Skip(wt));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string SerializeSpmModelProto(const SpmModelProto& m) {
  std::string out;
  std::string sub;
  for (const SpmPiece& p : m.pieces) {
    sub.clear();
    PutBytesField(1, p.piece, &sub);
    PutFloatField(2, p.score, &sub);
    PutInt32Field(3, p.type, &sub);
    PutBytesField(1, sub, &out);
  }

  sub.clear();
  PutInt32Field(3, m.model_type, &sub);
  PutInt32Field(4, m.vocab_size, &sub);
  PutBoolField(24, m.treat_whitespace_as_suffix, &sub);
  PutBoolField(35, m.byte_fallback, &sub);
  PutInt32Field(40, m.unk_id, &sub);
  PutInt32Field(41, m.bos_id, &sub);
  PutInt32Field(42, m.eos_id, &sub);
  PutInt32Field(43, m.pad_id, &sub);
  PutBytesField(44, m.unk_surface, &sub);
  PutBytesField(45, m.unk_piece, &sub);
  PutBytesField(46, m.bos_piece, &sub);
  PutBytesField(47, m.eos_piece, &sub);
  PutBytesField(48, m.pad_piece, &sub);
  PutBytesField(2, sub, &out);

  sub.clear();
  PutBytesField(1, m.normalizer_name, &sub);
  PutBoolField(3, m.add_dummy_prefix, &sub);
  PutBoolField(4, m.remove_extra_whitespaces, &sub);
  PutBoolField(5, m.escape_whitespaces, &sub);
  PutBytesField(3, sub, &out);
  return out;
}

absl::StatusOr<SpmModelProto> ParseSpmModelProto(std::string_view bytes,
                                                 const std::string& source) {
  SpmModelProto m;
  WireReader r(bytes, 0, source);
  while (!r.done()) {
    int field = 0, wt = 0;
    ENGINE_RETURN_IF_ERROR(r.Tag(&field, &wt));
    if (field >= 1 && field <= 3) {
      ENGINE_RETURN_IF_ERROR(r.Expect(wt, 2,
                                      field == 1   ? "pieces"
                                      : field == 2 ? "trainer_spec"
                                                   : "normalizer_spec"));
      size_t offset = 0;
      ENGINE_ASSIGN_OR_RETURN(const std::string_view payload, r.Bytes(&offset));
      if (field == 1) {
        SpmPiece piece;
        size_t type_offset = std::string::npos;
        ENGINE_RETURN_IF_ERROR(ParsePiece(payload, offset, source, &piece, &type_offset));
        m.pieces.push_back(std::move(piece));
        m.type_offsets.push_back(type_offset);
      } else if (field == 2) {
        ENGINE_RETURN_IF_ERROR(ParseTrainerSpec(payload, offset, source, &m));
      } else {
        ENGINE_RETURN_IF_ERROR(ParseNormalizerSpec(payload, offset, source, &m));
      }
    } else {
      ENGINE_RETURN_IF_ERROR(r.Skip(wt));
    }
  }
  if (m.pieces.empty()) {
    return absl::DataLossError(
        absl::StrCat(source, ": sentencepiece ModelProto has no pieces (not a tokenizer.model?)"));
  }
  return m;
}

absl::Status PatchPieceType(const SpmModelProto& parsed, size_t index, int32_t new_type,
                            std::string* bytes) {
  if (index >= parsed.type_offsets.size() || parsed.type_offsets[index] == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("piece ", index, " has no type field to patch"));
  }
  const size_t at = parsed.type_offsets[index];
  if (at >= bytes->size() || new_type < 1 || new_type > 127 ||
      (static_cast<uint8_t>((*bytes)[at]) & 0x80) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("type of piece ", index, " is not a one-byte varint"));
  }
  (*bytes)[at] = static_cast<char>(new_type);
  return absl::OkStatus();
}

}  // namespace engine::tokenizer
