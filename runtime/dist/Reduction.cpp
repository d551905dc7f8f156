//===- Reduction.cpp - The fixed-order sum every transport uses -----------===//
#include "dist/Reduction.h"

#include <cstring>

namespace dsflow::dist {

template <typename T>
static void accumulateTyped(void *acc, const void *in, int64_t count) {
  T *a = static_cast<T *>(acc);
  const T *b = static_cast<const T *>(in);
  for (int64_t i = 0; i < count; ++i)
    a[i] += b[i];
}

void accumulate(ElemType type, void *acc, const void *in, int64_t count) {
  switch (type) {
  case ElemType::F32:
    return accumulateTyped<float>(acc, in, count);
  case ElemType::F64:
    return accumulateTyped<double>(acc, in, count);
  case ElemType::I64:
    // Through unsigned: wraps like two's complement instead of being UB.
    return accumulateTyped<uint64_t>(acc, in, count);
  }
}

void sumBlocksInOrder(ElemType type, const void *blocks, int n, int64_t count,
                      void *out) {
  int64_t blockBytes = count * elemBytes(type);
  const char *base = static_cast<const char *>(blocks);
  if (out != blocks && blockBytes > 0)
    std::memcpy(out, base, static_cast<size_t>(blockBytes));
  for (int s = 1; s < n; ++s)
    accumulate(type, out, base + s * blockBytes, count);
}

} // namespace dsflow::dist
