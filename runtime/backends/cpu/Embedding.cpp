//===- Embedding.cpp - Embedding lookup and its weight gradient -----------===//
#include "runtime/backends/cpu/Kernels.h"

#include <algorithm>

namespace dsflow::cpu {

static bool idsInRange(const int32_t *ids, int64_t tokens, int64_t vocab) {
  return std::all_of(ids, ids + tokens,
                     [&](int32_t id) { return id >= 0 && id < vocab; });
}

template <typename T>
Status embeddingForward(const T *table, const int32_t *ids, T *y,
                        int64_t tokens, int64_t vocab, int64_t hidden) {
  if (!idsInRange(ids, tokens, vocab))
    return Status::TokenIdOutOfRange;
  for (int64_t n = 0; n < tokens; ++n) {
    const T *row = table + static_cast<int64_t>(ids[n]) * hidden;
    std::copy(row, row + hidden, y + n * hidden);
  }
  return Status::Ok;
}

template <typename T>
Status embeddingBackwardW(const T *dy, const int32_t *ids, T *dtable,
                          int64_t tokens, int64_t vocab, int64_t hidden) {
  if (!idsInRange(ids, tokens, vocab))
    return Status::TokenIdOutOfRange;
  for (int64_t n = 0; n < tokens; ++n) {
    T *row = dtable + static_cast<int64_t>(ids[n]) * hidden;
    for (int64_t i = 0; i < hidden; ++i)
      row[i] += dy[n * hidden + i];
  }
  return Status::Ok;
}

#define DSFLOW_INSTANTIATE(T)                                                  \
  template Status embeddingForward(const T *, const int32_t *, T *, int64_t,   \
                                   int64_t, int64_t);                          \
  template Status embeddingBackwardW(const T *, const int32_t *, T *, int64_t, \
                                     int64_t, int64_t);
DSFLOW_INSTANTIATE(float)
DSFLOW_INSTANTIATE(double)
#undef DSFLOW_INSTANTIATE

} // namespace dsflow::cpu
