//===- Fnv1a.h - FNV-1a 64-bit checksum -------------------------*- C++ -*-===//
//
// The checksum stored in checkpoint manifests: cheap, streaming, and enough to
// catch torn writes and flipped bytes (it is not a defence against tampering).
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_IO_FNV1A_H
#define DSFLOW_IO_FNV1A_H

#include <cstddef>
#include <cstdint>

namespace dsflow::io {

constexpr uint64_t kFnv1a64Offset = 0xcbf29ce484222325ull;
constexpr uint64_t kFnv1a64Prime = 0x100000001b3ull;

/// Extends the FNV-1a 64 hash `state` by `size` bytes; start from
/// kFnv1a64Offset.
inline uint64_t fnv1a64(const void *data, size_t size,
                        uint64_t state = kFnv1a64Offset) {
  const auto *bytes = static_cast<const unsigned char *>(data);
  for (size_t i = 0; i < size; ++i) {
    state ^= bytes[i];
    state *= kFnv1a64Prime;
  }
  return state;
}

} // namespace dsflow::io

#endif // DSFLOW_IO_FNV1A_H
