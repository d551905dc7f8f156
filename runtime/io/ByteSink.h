//===- ByteSink.h - A destination for serialized bytes ----------*- C++ -*-===//
//
// Writers (safetensors, checkpoints) stream into a ByteSink; it counts the
// bytes and keeps their FNV-1a 64 checksum as they pass. FileSink
// (AtomicFile.h) writes to a file, StringSink keeps the bytes in memory.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_IO_BYTESINK_H
#define DSFLOW_IO_BYTESINK_H

#include "io/Fnv1a.h"
#include "io/Status.h"

#include <cstdint>
#include <string>

namespace dsflow::io {

class ByteSink {
public:
  virtual ~ByteSink() = default;

  /// Appends `size` bytes; an error leaves the sink unusable.
  Status write(const void *data, size_t size) {
    if (Status error = writeBytes(data, size))
      return error;
    count += size;
    hash = fnv1a64(data, size, hash);
    return std::nullopt;
  }

  uint64_t bytesWritten() const { return count; }
  /// FNV-1a 64 of everything written so far.
  uint64_t checksum() const { return hash; }

protected:
  virtual Status writeBytes(const void *data, size_t size) = 0;

private:
  uint64_t count = 0;
  uint64_t hash = kFnv1a64Offset;
};

/// Keeps the bytes in memory.
class StringSink : public ByteSink {
public:
  const std::string &bytes() const { return buffer; }

protected:
  Status writeBytes(const void *data, size_t size) override {
    buffer.append(static_cast<const char *>(data), size);
    return std::nullopt;
  }

private:
  std::string buffer;
};

} // namespace dsflow::io

#endif // DSFLOW_IO_BYTESINK_H
