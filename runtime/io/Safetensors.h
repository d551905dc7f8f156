//===- Safetensors.h - Reading safetensors files ----------------*- C++ -*-===//
//
// The Hugging Face safetensors format: an 8-byte little-endian header length N,
// N bytes of JSON header, then the data region. The header maps each tensor
// name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to
// the data region) and may hold "__metadata__", a map of strings to strings.
//
// The reader checks what the reference implementation checks, with one-line
// errors naming the file: the header length fits the file, the header is a JSON
// object without duplicate keys, every dtype is known, every shape matches its
// byte range, and the byte ranges tile the data region exactly (no overlap, no
// gap, nothing out of range). The whole file is read into memory.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_IO_SAFETENSORS_H
#define DSFLOW_IO_SAFETENSORS_H

#include "io/DType.h"
#include "io/Status.h"

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace dsflow::io {

using Shape = std::vector<int64_t>;
using Metadata = std::map<std::string, std::string>;

/// "[2, 3]".
std::string formatShape(const Shape &shape);

/// The product of the dimensions, or nullopt if one is negative or it
/// overflows.
std::optional<uint64_t> elementCount(const Shape &shape);

/// The header larger than this is refused, as the reference implementation
/// does.
constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

/// One tensor of a file, as its header describes it.
struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  uint64_t begin = 0; ///< Offset in the data region.
  uint64_t end = 0;
  uint64_t byteSize() const { return end - begin; }
};

/// A validated safetensors file held in memory.
class SafetensorsFile {
public:
  /// Reads and validates the file at `path`.
  static Expected<SafetensorsFile> load(const std::string &path);
  /// Validates `bytes`; `sourceName` is the file name used in errors.
  static Expected<SafetensorsFile> parse(std::vector<uint8_t> bytes,
                                         const std::string &sourceName);

  const std::string &source() const { return sourceName; }
  /// All tensors, sorted by name.
  const std::vector<TensorInfo> &tensors() const { return infos; }
  const Metadata &metadata() const { return meta; }

  /// The tensor called `name`, or null.
  const TensorInfo *find(const std::string &name) const;
  /// The tensor called `name`, checked to have `dtype` and `shape`.
  Expected<const TensorInfo *> lookup(const std::string &name, DType dtype,
                                      const Shape &shape) const;
  /// The bytes of `info` (little-endian elements).
  const uint8_t *data(const TensorInfo &info) const {
    return bytes.data() + dataStart + info.begin;
  }

  /// The elements of tensor `name`, checked to be of T's dtype and `shape`.
  template <typename T>
  Expected<std::vector<T>> read(const std::string &name,
                                const Shape &shape) const {
    Expected<const TensorInfo *> info = lookup(name, DTypeOf<T>::value, shape);
    if (!info)
      return info.error();
    std::vector<T> values((*info)->byteSize() / sizeof(T));
    if (!values.empty())
      std::memcpy(values.data(), data(**info), (*info)->byteSize());
    return values;
  }

  /// Tensor `name` of `shape` as floats, converted from F32, BF16 or F64.
  Expected<std::vector<float>> readAsFloat(const std::string &name,
                                           const Shape &shape) const;

private:
  std::string sourceName;
  std::vector<uint8_t> bytes;
  uint64_t dataStart = 0;
  std::vector<TensorInfo> infos;
  Metadata meta;
};

} // namespace dsflow::io

#endif // DSFLOW_IO_SAFETENSORS_H
