//===- MoeGate.cpp - DeepSeek-V3's router: scores, selection, gradients ---===//
#include "runtime/backends/cpu/Kernels.h"

#include <cmath>
#include <limits>

namespace dsflow::cpu {

/// The eligible index with the largest value; ties go to the lower index.
/// Returns -1 when nothing is eligible.
template <typename T, typename Eligible>
static int64_t argmax(const T *values, int64_t n, Eligible eligible) {
  int64_t best = -1;
  for (int64_t i = 0; i < n; ++i)
    if (eligible(i) && (best < 0 || values[i] > values[best]))
      best = i;
  return best;
}

/// Group-limited top-k of one token. `biased` holds scores + bias; writes the
/// chosen experts to `chosen` in descending biased score.
template <typename T>
static void selectExperts(const std::vector<T> &biased, const MoeGateParams &p,
                          int32_t *chosen) {
  const int64_t numExperts = p.experts;
  const int64_t groupSize = numExperts / p.groups;
  std::vector<char> allowed(numExperts, 1);
  if (p.groups > 1 && p.groupsPerToken < p.groups) {
    std::vector<T> groupScore(p.groups);
    for (int64_t g = 0; g < p.groups; ++g) {
      const T *member = biased.data() + g * groupSize;
      T best = -std::numeric_limits<T>::infinity(), second = best;
      for (int64_t i = 0; i < groupSize; ++i) {
        if (member[i] > best) {
          second = best;
          best = member[i];
        } else if (member[i] > second) {
          second = member[i];
        }
      }
      bool topTwo = p.scoreFunction == ScoreFunction::Sigmoid && groupSize > 1;
      groupScore[g] = topTwo ? best + second : best;
    }
    std::vector<char> keep(p.groups, 0);
    for (int64_t m = 0; m < p.groupsPerToken; ++m) {
      int64_t g = argmax(groupScore.data(), p.groups,
                         [&](int64_t i) { return !keep[i]; });
      keep[g] = 1;
    }
    for (int64_t e = 0; e < numExperts; ++e)
      allowed[e] = keep[e / groupSize];
  }
  for (int64_t j = 0; j < p.topK; ++j) {
    int64_t e = argmax(biased.data(), numExperts,
                       [&](int64_t i) { return allowed[i] != 0; });
    allowed[e] = 0;
    chosen[j] = static_cast<int32_t>(e);
  }
}

/// Whether the attributes let every token choose k distinct experts.
static bool validGateConfig(const MoeGateParams &p) {
  if (p.experts < 1 || p.groups < 1 || p.experts % p.groups != 0)
    return false;
  if (p.groupsPerToken < 1 || p.groupsPerToken > p.groups)
    return false;
  int64_t allowed = p.groupsPerToken * (p.experts / p.groups);
  return p.topK >= 1 && p.topK <= allowed;
}

template <typename T>
Status moeGateForward(const T *x, const T *w, const T *bias, T *weights,
                      int32_t *indices, T *scores, const MoeGateParams &p) {
  if (!validGateConfig(p))
    return Status::BadGateConfig;
  const int64_t numExperts = p.experts, k = p.topK;
  linearForward(x, w, scores, p.tokens, numExperts, p.hidden);
  std::vector<T> biased(numExperts);
  for (int64_t t = 0; t < p.tokens; ++t) {
    T *s = scores + t * numExperts;
    if (p.scoreFunction == ScoreFunction::Sigmoid) {
      for (int64_t e = 0; e < numExperts; ++e)
        s[e] = T(1) / (T(1) + std::exp(-s[e]));
    } else {
      T maxLogit = -std::numeric_limits<T>::infinity();
      for (int64_t e = 0; e < numExperts; ++e)
        maxLogit = std::max(maxLogit, s[e]);
      T sum = 0;
      for (int64_t e = 0; e < numExperts; ++e) {
        s[e] = std::exp(s[e] - maxLogit);
        sum += s[e];
      }
      for (int64_t e = 0; e < numExperts; ++e)
        s[e] /= sum;
    }
    for (int64_t e = 0; e < numExperts; ++e)
      biased[e] = s[e] + bias[e];
    int32_t *idx = indices + t * k;
    selectExperts(biased, p, idx);

    T *wt = weights + t * k;
    T sum = 0;
    for (int64_t j = 0; j < k; ++j) {
      wt[j] = s[idx[j]];
      sum += wt[j];
    }
    T denom = p.normalizeTopK ? sum + T(1e-20) : T(1);
    for (int64_t j = 0; j < k; ++j)
      wt[j] = wt[j] / denom * static_cast<T>(p.routeScale);
  }
  return Status::Ok;
}

template <typename T>
Status moeGateLogitsGrad(const T *dWeights, const T *dScores, const T *scores,
                         const int32_t *indices, T *dLogits,
                         const MoeGateParams &p) {
  const int64_t numExperts = p.experts, k = p.topK;
  for (int64_t i = 0; i < p.tokens * k; ++i)
    if (indices[i] < 0 || indices[i] >= numExperts)
      return Status::ExpertIndexOutOfRange;
  const T routeScale = static_cast<T>(p.routeScale);
  std::vector<T> dS(numExperts);
  for (int64_t t = 0; t < p.tokens; ++t) {
    const T *s = scores + t * numExperts;
    const int32_t *idx = indices + t * k;
    // d scores: the balance loss's part, then the chosen weights' part.
    for (int64_t e = 0; e < numExperts; ++e)
      dS[e] = dScores ? dScores[t * numExperts + e] : T(0);
    if (dWeights) {
      const T *dw = dWeights + t * k;
      if (p.normalizeTopK) {
        // w_j = c s_j / D with D = sum_l s_l + 1e-20:
        // d s_l = c (dw_l / D - sum_j dw_j s_j / D^2).
        T denom = 0, dot = 0;
        for (int64_t j = 0; j < k; ++j) {
          denom += s[idx[j]];
          dot += dw[j] * s[idx[j]];
        }
        denom += T(1e-20);
        for (int64_t j = 0; j < k; ++j)
          dS[idx[j]] += routeScale * (dw[j] / denom - dot / (denom * denom));
      } else {
        for (int64_t j = 0; j < k; ++j)
          dS[idx[j]] += routeScale * dw[j];
      }
    }
    T *dl = dLogits + t * numExperts;
    if (p.scoreFunction == ScoreFunction::Sigmoid) {
      for (int64_t e = 0; e < numExperts; ++e)
        dl[e] = dS[e] * s[e] * (T(1) - s[e]);
    } else {
      T dot = 0;
      for (int64_t e = 0; e < numExperts; ++e)
        dot += dS[e] * s[e];
      for (int64_t e = 0; e < numExperts; ++e)
        dl[e] = s[e] * (dS[e] - dot);
    }
  }
  return Status::Ok;
}

template <typename T>
Status moeGateBackwardB(const T *dWeights, const T *dScores, const T *scores,
                        const int32_t *indices, const T *w, T *dx,
                        const MoeGateParams &p) {
  std::vector<T> dLogits(p.tokens * p.experts);
  Status status =
      moeGateLogitsGrad(dWeights, dScores, scores, indices, dLogits.data(), p);
  if (status != Status::Ok)
    return status;
  linearBackwardB(dLogits.data(), w, dx, p.tokens, p.experts, p.hidden);
  return Status::Ok;
}

template <typename T>
Status moeGateBackwardW(const T *dWeights, const T *dScores, const T *scores,
                        const int32_t *indices, const T *x, T *dw,
                        const MoeGateParams &p) {
  std::vector<T> dLogits(p.tokens * p.experts);
  Status status =
      moeGateLogitsGrad(dWeights, dScores, scores, indices, dLogits.data(), p);
  if (status != Status::Ok)
    return status;
  linearBackwardW(dLogits.data(), x, dw, p.tokens, p.experts, p.hidden);
  return Status::Ok;
}

#define DSFLOW_INSTANTIATE(T)                                                  \
  template Status moeGateForward(const T *, const T *, const T *, T *,         \
                                 int32_t *, T *, const MoeGateParams &);       \
  template Status moeGateLogitsGrad(const T *, const T *, const T *,           \
                                    const int32_t *, T *,                      \
                                    const MoeGateParams &);                    \
  template Status moeGateBackwardB(const T *, const T *, const T *,            \
                                   const int32_t *, const T *, T *,            \
                                   const MoeGateParams &);                     \
  template Status moeGateBackwardW(const T *, const T *, const T *,            \
                                   const int32_t *, const T *, T *,            \
                                   const MoeGateParams &);
DSFLOW_INSTANTIATE(float)
DSFLOW_INSTANTIATE(double)
#undef DSFLOW_INSTANTIATE

} // namespace dsflow::cpu
