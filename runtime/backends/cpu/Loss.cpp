//===- Loss.cpp - Mean cross-entropy of logits against labels -------------===//
#include "runtime/backends/cpu/Kernels.h"

#include <algorithm>
#include <cmath>

namespace dsflow::cpu {

static bool labelsInRange(const int32_t *labels, int64_t tokens,
                          int64_t vocab) {
  return std::all_of(labels, labels + tokens,
                     [&](int32_t l) { return l >= 0 && l < vocab; });
}

template <typename T>
Status crossEntropyForward(const T *logits, const int32_t *labels, T *loss,
                           T *lse, int64_t tokens, int64_t vocab) {
  if (!labelsInRange(labels, tokens, vocab))
    return Status::LabelOutOfRange;
  double total = 0;
  for (int64_t n = 0; n < tokens; ++n) {
    const T *row = logits + n * vocab;
    T maxLogit = *std::max_element(row, row + vocab);
    T sum = 0;
    for (int64_t v = 0; v < vocab; ++v)
      sum += std::exp(row[v] - maxLogit);
    lse[n] = maxLogit + std::log(sum);
    total += static_cast<double>(lse[n] - row[labels[n]]);
  }
  *loss = static_cast<T>(tokens == 0 ? 0.0 : total / tokens);
  return Status::Ok;
}

template <typename T>
Status crossEntropyBackward(const T *logits, const int32_t *labels,
                            const T *lse, T dLoss, T *dlogits, int64_t tokens,
                            int64_t vocab) {
  if (!labelsInRange(labels, tokens, vocab))
    return Status::LabelOutOfRange;
  T perToken = dLoss / static_cast<T>(tokens);
  for (int64_t n = 0; n < tokens; ++n) {
    const T *row = logits + n * vocab;
    T *drow = dlogits + n * vocab;
    for (int64_t v = 0; v < vocab; ++v) {
      T p = std::exp(row[v] - lse[n]);
      drow[v] += (p - (v == labels[n] ? T(1) : T(0))) * perToken;
    }
  }
  return Status::Ok;
}

#define DSFLOW_INSTANTIATE(T)                                                  \
  template Status crossEntropyForward(const T *, const int32_t *, T *, T *,    \
                                      int64_t, int64_t);                       \
  template Status crossEntropyBackward(const T *, const int32_t *, const T *,  \
                                       T, T *, int64_t, int64_t);
DSFLOW_INSTANTIATE(float)
DSFLOW_INSTANTIATE(double)
#undef DSFLOW_INSTANTIATE

} // namespace dsflow::cpu
