//===- Dispatch.cpp - MoE dispatch into expert order and combine back -----===//
#include "runtime/backends/cpu/Kernels.h"

#include <algorithm>

namespace dsflow::cpu {

/// Inverts dispatch's rowSource (row -> position t*k + j) into
/// rowOf (position -> row). False when rowSource is not a permutation.
static bool invertRowSource(const int32_t *rowSource, int64_t numRows,
                            std::vector<int32_t> &rowOf) {
  rowOf.assign(numRows, -1);
  for (int64_t r = 0; r < numRows; ++r) {
    int32_t pos = rowSource[r];
    if (pos < 0 || pos >= numRows || rowOf[pos] != -1)
      return false;
    rowOf[pos] = static_cast<int32_t>(r);
  }
  return true;
}

template <typename T>
Status dispatchForward(const T *x, const int32_t *indices, T *rows,
                       int32_t *counts, int32_t *rowSource, int64_t tokens,
                       int64_t topK, int64_t experts, int64_t hidden) {
  const int64_t numSlots = tokens * topK;
  for (int64_t i = 0; i < numSlots; ++i)
    if (indices[i] < 0 || indices[i] >= experts)
      return Status::ExpertIndexOutOfRange;
  // A counting sort by expert, stable in (token, j) order.
  std::vector<int64_t> next(experts, 0);
  for (int64_t i = 0; i < numSlots; ++i)
    ++next[indices[i]];
  int64_t offset = 0;
  for (int64_t e = 0; e < experts; ++e) {
    counts[e] = static_cast<int32_t>(next[e]);
    next[e] = offset;
    offset += counts[e];
  }
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t j = 0; j < topK; ++j) {
      int64_t r = next[indices[t * topK + j]]++;
      rowSource[r] = static_cast<int32_t>(t * topK + j);
      std::copy(x + t * hidden, x + (t + 1) * hidden, rows + r * hidden);
    }
  return Status::Ok;
}

template <typename T>
Status dispatchBackward(const T *dRows, const int32_t *rowSource, T *dx,
                        int64_t tokens, int64_t topK, int64_t hidden) {
  std::vector<int32_t> rowOf;
  if (!invertRowSource(rowSource, tokens * topK, rowOf))
    return Status::BadPermutation;
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t j = 0; j < topK; ++j) {
      const T *src = dRows + static_cast<int64_t>(rowOf[t * topK + j]) * hidden;
      for (int64_t i = 0; i < hidden; ++i)
        dx[t * hidden + i] += src[i];
    }
  return Status::Ok;
}

template <typename T>
Status combineForward(const T *rows, const T *weights, const int32_t *rowSource,
                      T *y, int64_t tokens, int64_t topK, int64_t hidden) {
  std::vector<int32_t> rowOf;
  if (!invertRowSource(rowSource, tokens * topK, rowOf))
    return Status::BadPermutation;
  for (int64_t t = 0; t < tokens; ++t) {
    T *yt = y + t * hidden;
    std::fill(yt, yt + hidden, T(0));
    for (int64_t j = 0; j < topK; ++j) {
      T w = weights[t * topK + j];
      const T *row = rows + static_cast<int64_t>(rowOf[t * topK + j]) * hidden;
      for (int64_t i = 0; i < hidden; ++i)
        yt[i] += w * row[i];
    }
  }
  return Status::Ok;
}

template <typename T>
Status combineBackward(const T *dy, const T *weights, const int32_t *rowSource,
                       T *dRows, int64_t tokens, int64_t topK, int64_t hidden) {
  std::vector<int32_t> rowOf;
  if (!invertRowSource(rowSource, tokens * topK, rowOf))
    return Status::BadPermutation;
  for (int64_t t = 0; t < tokens; ++t) {
    const T *dyt = dy + t * hidden;
    for (int64_t j = 0; j < topK; ++j) {
      int64_t r = rowOf[t * topK + j];
      T w = weights[t * topK + j];
      for (int64_t i = 0; i < hidden; ++i)
        dRows[r * hidden + i] += w * dyt[i];
    }
  }
  return Status::Ok;
}

template <typename T>
Status combineWeightsBackward(const T *rowDots, const T *weights,
                              const int32_t *rowSource, T *dWeights,
                              int64_t tokens, int64_t topK) {
  std::vector<int32_t> rowOf;
  if (!invertRowSource(rowSource, tokens * topK, rowOf))
    return Status::BadPermutation;
  for (int64_t p = 0; p < tokens * topK; ++p)
    if (weights[p] != T(0))
      dWeights[p] += rowDots[rowOf[p]] / weights[p];
  return Status::Ok;
}

#define DSFLOW_INSTANTIATE(T)                                                  \
  template Status dispatchForward(const T *, const int32_t *, T *, int32_t *,  \
                                  int32_t *, int64_t, int64_t, int64_t,        \
                                  int64_t);                                    \
  template Status dispatchBackward(const T *, const int32_t *, T *, int64_t,   \
                                   int64_t, int64_t);                          \
  template Status combineForward(const T *, const T *, const int32_t *, T *,   \
                                 int64_t, int64_t, int64_t);                   \
  template Status combineBackward(const T *, const T *, const int32_t *, T *,  \
                                  int64_t, int64_t, int64_t);                  \
  template Status combineWeightsBackward(                                      \
      const T *, const T *, const int32_t *, T *, int64_t, int64_t);
DSFLOW_INSTANTIATE(float)
DSFLOW_INSTANTIATE(double)
#undef DSFLOW_INSTANTIATE

} // namespace dsflow::cpu
