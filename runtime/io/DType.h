//===- DType.h - Element types of safetensors files -------------*- C++ -*-===//
//
// The element types of the safetensors format, declared in the order of the
// reference implementation's Dtype enum: the writer lays tensors out by this
// order (descending) and then by name, as the reference does.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_IO_DTYPE_H
#define DSFLOW_IO_DTYPE_H

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace dsflow::io {

enum class DType {
  Bool,
  U8,
  I8,
  F8E5M2,
  F8E4M3,
  I16,
  U16,
  F16,
  BF16,
  I32,
  U32,
  F32,
  F64,
  I64,
  U64,
};

/// The name used in safetensors headers ("F32", "BF16", "F8_E4M3", ...).
const char *dtypeName(DType dtype);

/// The DType named `name` in a safetensors header; nullopt if unknown.
std::optional<DType> parseDType(const std::string &name);

/// Bytes per element.
size_t dtypeSize(DType dtype);

/// The bits of one bfloat16 value (see BFloat16.h for conversions).
struct BF16 {
  uint16_t bits;
};

/// The DType of a C++ element type, for typed reads and writes.
template <typename T> struct DTypeOf;
template <> struct DTypeOf<float> {
  static constexpr DType value = DType::F32;
};
template <> struct DTypeOf<double> {
  static constexpr DType value = DType::F64;
};
template <> struct DTypeOf<BF16> {
  static constexpr DType value = DType::BF16;
};
template <> struct DTypeOf<int32_t> {
  static constexpr DType value = DType::I32;
};
template <> struct DTypeOf<int64_t> {
  static constexpr DType value = DType::I64;
};
template <> struct DTypeOf<uint8_t> {
  static constexpr DType value = DType::U8;
};

} // namespace dsflow::io

#endif // DSFLOW_IO_DTYPE_H
