//===- SafetensorsWriter.h - Writing safetensors files ----------*- C++ -*-===//
//
// Writes files byte-identical to the reference implementation's: tensors laid
// out by descending dtype (U64, I64, F64, F32, ..., BOOL, which keeps every
// tensor aligned to its element size) and then by name; the compact JSON header
// lists "__metadata__" first and then the tensors in data order, and is padded
// with spaces to a multiple of 8 bytes.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_IO_SAFETENSORSWRITER_H
#define DSFLOW_IO_SAFETENSORSWRITER_H

#include "io/AtomicFile.h"
#include "io/ByteSink.h"
#include "io/Safetensors.h"

#include <functional>

namespace dsflow::io {

/// A tensor to write. Its bytes come from `data` (byteSize bytes, not owned)
/// or, when `produce` is set, from `produce`, which must write exactly byteSize
/// bytes (e.g. copying from a device in chunks).
struct TensorRef {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  const void *data = nullptr;
  uint64_t byteSize = 0;
  std::function<Status(ByteSink &)> produce;

  /// A tensor whose bytes are `values` (which must outlive the write).
  template <typename T>
  static TensorRef of(std::string name, Shape shape,
                      const std::vector<T> &values) {
    TensorRef ref;
    ref.name = std::move(name);
    ref.dtype = DTypeOf<T>::value;
    ref.shape = std::move(shape);
    ref.data = values.data();
    ref.byteSize = values.size() * sizeof(T);
    return ref;
  }
};

/// Streams a safetensors file into `sink`; `sourceName` names it in errors.
/// Refuses empty, duplicate or reserved names and sizes that do not match
/// shapes.
Status writeSafetensors(ByteSink &sink, const std::vector<TensorRef> &tensors,
                        const Metadata &metadata,
                        const std::string &sourceName);

/// Writes a safetensors file at `path` atomically (see AtomicFile.h). When
/// `digest` is given it receives the file's size and FNV-1a 64 checksum.
Status saveSafetensors(const std::string &path,
                       const std::vector<TensorRef> &tensors,
                       const Metadata &metadata = {},
                       FileDigest *digest = nullptr);

} // namespace dsflow::io

#endif // DSFLOW_IO_SAFETENSORSWRITER_H
