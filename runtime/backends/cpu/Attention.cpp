//===- Attention.cpp - Causal MLA attention core, forward and backward ----===//
#include "runtime/backends/cpu/Kernels.h"
#include "runtime/backends/cpu/Parallel.h"

#include <cmath>
#include <limits>

namespace dsflow::cpu {

namespace {
/// Row pointers into the five inputs for one (batch, head).
template <typename T> struct MlaView {
  const T *qNope, *qPe, *kNope, *kPe, *v;
  const MlaShape &s;
  int64_t b, h;

  int64_t headRow(int64_t i) const { return (b * s.seq + i) * s.heads + h; }
  const T *qn(int64_t i) const { return qNope + headRow(i) * s.nopeDim; }
  const T *qp(int64_t i) const { return qPe + headRow(i) * s.ropeDim; }
  const T *kn(int64_t j) const { return kNope + headRow(j) * s.nopeDim; }
  const T *kp(int64_t j) const { return kPe + (b * s.seq + j) * s.ropeDim; }
  const T *vv(int64_t j) const { return v + headRow(j) * s.valueDim; }

  /// scale * <[qNope_i, qPe_i], [kNope_j, kPe_j]>.
  T score(int64_t i, int64_t j, T scale) const {
    T dot = 0;
    for (int64_t d = 0; d < s.nopeDim; ++d)
      dot += qn(i)[d] * kn(j)[d];
    for (int64_t d = 0; d < s.ropeDim; ++d)
      dot += qp(i)[d] * kp(j)[d];
    return dot * scale;
  }
};
} // namespace

template <typename T>
void mlaAttentionForward(const T *qNope, const T *qPe, const T *kNope,
                         const T *kPe, const T *v, T *out, T *lse,
                         const MlaShape &shape, double scale) {
  const T sc = static_cast<T>(scale);
  const int64_t vd = shape.valueDim;
  // Sequences are independent: one per worker, bitwise the same serially.
  parallelFor(shape.batch, [&](int64_t b) {
    std::vector<T> scores(shape.seq);
    for (int64_t h = 0; h < shape.heads; ++h) {
      MlaView<T> view{qNope, qPe, kNope, kPe, v, shape, b, h};
      for (int64_t i = 0; i < shape.seq; ++i) {
        T maxScore = -std::numeric_limits<T>::infinity();
        for (int64_t j = 0; j <= i; ++j) {
          scores[j] = view.score(i, j, sc);
          maxScore = std::max(maxScore, scores[j]);
        }
        T sum = 0;
        for (int64_t j = 0; j <= i; ++j)
          sum += std::exp(scores[j] - maxScore);
        T rowLse = maxScore + std::log(sum);
        lse[view.headRow(i)] = rowLse;
        T *o = out + view.headRow(i) * vd;
        for (int64_t d = 0; d < vd; ++d)
          o[d] = 0;
        for (int64_t j = 0; j <= i; ++j) {
          T p = std::exp(scores[j] - rowLse);
          for (int64_t d = 0; d < vd; ++d)
            o[d] += p * view.vv(j)[d];
        }
      }
    }
  });
}

template <typename T>
void mlaAttentionBackward(const T *dOut, const T *qNope, const T *qPe,
                          const T *kNope, const T *kPe, const T *v,
                          const T *lse, T *dqNope, T *dqPe, T *dkNope, T *dkPe,
                          T *dv, const MlaShape &shape, double scale) {
  const T sc = static_cast<T>(scale);
  const int64_t nd = shape.nopeDim, rd = shape.ropeDim, vd = shape.valueDim;
  // Each sequence writes only its own rows (dk_pe too): one per worker.
  parallelFor(shape.batch, [&](int64_t b) {
    std::vector<T> probs(shape.seq), dProbs(shape.seq);
    for (int64_t h = 0; h < shape.heads; ++h) {
      MlaView<T> view{qNope, qPe, kNope, kPe, v, shape, b, h};
      for (int64_t i = 0; i < shape.seq; ++i) {
        const T *dO = dOut + view.headRow(i) * vd;
        T rowLse = lse[view.headRow(i)];
        // p_j, dp_j = <dO, v_j> and D = sum_j p_j dp_j (= <dO, out_i>).
        T rowDot = 0;
        for (int64_t j = 0; j <= i; ++j) {
          probs[j] = std::exp(view.score(i, j, sc) - rowLse);
          T dp = 0;
          for (int64_t d = 0; d < vd; ++d)
            dp += dO[d] * view.vv(j)[d];
          dProbs[j] = dp;
          rowDot += probs[j] * dp;
        }
        T *dqn = dqNope + view.headRow(i) * nd;
        T *dqp = dqPe + view.headRow(i) * rd;
        for (int64_t j = 0; j <= i; ++j) {
          // d score_ij, including the softmax scale.
          T ds = probs[j] * (dProbs[j] - rowDot) * sc;
          T *dkn = dkNope + view.headRow(j) * nd;
          T *dkp = dkPe + (b * shape.seq + j) * rd;
          T *dvj = dv + view.headRow(j) * vd;
          for (int64_t d = 0; d < nd; ++d) {
            dqn[d] += ds * view.kn(j)[d];
            dkn[d] += ds * view.qn(i)[d];
          }
          for (int64_t d = 0; d < rd; ++d) {
            dqp[d] += ds * view.kp(j)[d];
            dkp[d] += ds * view.qp(i)[d];
          }
          for (int64_t d = 0; d < vd; ++d)
            dvj[d] += probs[j] * dO[d];
        }
      }
    }
  });
}

#define DSFLOW_INSTANTIATE(T)                                                  \
  template void mlaAttentionForward(const T *, const T *, const T *,           \
                                    const T *, const T *, T *, T *,            \
                                    const MlaShape &, double);                 \
  template void mlaAttentionBackward(                                          \
      const T *, const T *, const T *, const T *, const T *, const T *,        \
      const T *, T *, T *, T *, T *, T *, const MlaShape &, double);
DSFLOW_INSTANTIATE(float)
DSFLOW_INSTANTIATE(double)
#undef DSFLOW_INSTANTIATE

} // namespace dsflow::cpu
