//===- BalanceLoss.cpp - The sequence-wise balance loss --------------------===//
#include "runtime/backends/cpu/Kernels.h"

#include <vector>

namespace dsflow::cpu {
namespace {

/// f_i of every run: E / (k S) times the run's tokens that chose expert i.
/// Returns false on an expert index out of range.
bool loadFractions(const int32_t *indices, int64_t tokens, int64_t experts,
                   int64_t topK, int64_t sequences, std::vector<double> &f) {
  int64_t perRun = tokens / sequences;
  f.assign(sequences * experts, 0.0);
  double unit = double(experts) / double(topK * perRun);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t j = 0; j < topK; ++j) {
      int32_t e = indices[t * topK + j];
      if (e < 0 || e >= experts)
        return false;
      f[(t / perRun) * experts + e] += unit;
    }
  return true;
}

bool validShape(int64_t tokens, int64_t experts, int64_t topK,
                int64_t sequences) {
  return tokens > 0 && experts > 0 && topK > 0 && sequences > 0 &&
         tokens % sequences == 0;
}

} // namespace

template <typename T>
Status balanceLossForward(const T *scores, const int32_t *indices, T *loss,
                          int64_t tokens, int64_t experts, int64_t topK,
                          int64_t sequences, double alpha) {
  if (!validShape(tokens, experts, topK, sequences))
    return Status::BadGateConfig;
  std::vector<double> f;
  if (!loadFractions(indices, tokens, experts, topK, sequences, f))
    return Status::ExpertIndexOutOfRange;
  int64_t perRun = tokens / sequences;
  double total = 0;
  for (int64_t t = 0; t < tokens; ++t) {
    const T *s = scores + t * experts;
    double sum = 0;
    for (int64_t e = 0; e < experts; ++e)
      sum += double(s[e]);
    const double *fRun = f.data() + (t / perRun) * experts;
    for (int64_t e = 0; e < experts; ++e)
      total += fRun[e] * double(s[e]) / sum;
  }
  // alpha * sum_i f_i P_i per run (P_i = mean over the run), mean over runs.
  *loss = static_cast<T>(alpha * total / double(perRun) / double(sequences));
  return Status::Ok;
}

template <typename T>
Status balanceLossBackward(T dLoss, const T *scores, const int32_t *indices,
                           T *dScores, int64_t tokens, int64_t experts,
                           int64_t topK, int64_t sequences, double alpha) {
  if (!validShape(tokens, experts, topK, sequences))
    return Status::BadGateConfig;
  std::vector<double> f;
  if (!loadFractions(indices, tokens, experts, topK, sequences, f))
    return Status::ExpertIndexOutOfRange;
  int64_t perRun = tokens / sequences;
  double scale = double(dLoss) * alpha / double(perRun) / double(sequences);
  for (int64_t t = 0; t < tokens; ++t) {
    const T *s = scores + t * experts;
    const double *fRun = f.data() + (t / perRun) * experts;
    double sum = 0, weighted = 0;
    for (int64_t e = 0; e < experts; ++e) {
      sum += double(s[e]);
      weighted += fRun[e] * double(s[e]);
    }
    // d/ds_e of sum_i f_i s_i / sum_j s_j = (f_e - weighted / sum) / sum.
    for (int64_t e = 0; e < experts; ++e)
      dScores[t * experts + e] +=
          static_cast<T>(scale * (fRun[e] - weighted / sum) / sum);
  }
  return Status::Ok;
}

#define INSTANTIATE(T)                                                         \
  template Status balanceLossForward<T>(const T *, const int32_t *, T *,       \
                                        int64_t, int64_t, int64_t, int64_t,    \
                                        double);                               \
  template Status balanceLossBackward<T>(T, const T *, const int32_t *, T *,   \
                                         int64_t, int64_t, int64_t, int64_t,   \
                                         double);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

} // namespace dsflow::cpu
