//===- Linear.cpp - Linear layers (linear, mtp_project) on OpenBLAS -------===//
#include "runtime/backends/cpu/Blas.h"
#include "runtime/backends/cpu/Kernels.h"

namespace dsflow::cpu {

using detail::gemm;

template <typename T>
void linearForward(const T *x, const T *w, T *y, int64_t m, int64_t n,
                   int64_t k) {
  // y[m, n] = x[m, k] W[n, k]^T.
  gemm(false, true, m, n, k, T(1), x, k, w, k, T(0), y, n);
}

template <typename T>
void linearBackwardB(const T *dy, const T *w, T *dx, int64_t m, int64_t n,
                     int64_t k) {
  // dx[m, k] += dy[m, n] W[n, k].
  gemm(false, false, m, k, n, T(1), dy, n, w, k, T(1), dx, k);
}

template <typename T>
void linearBackwardW(const T *dy, const T *x, T *dw, int64_t m, int64_t n,
                     int64_t k) {
  // dW[n, k] += dy[m, n]^T x[m, k].
  gemm(true, false, n, k, m, T(1), dy, n, x, k, T(1), dw, k);
}

// eh_proj [H, 2H] is two [H, H] blocks side by side (leading dimension 2H):
// columns [0, H) multiply the embedding, [H, 2H) the hidden state.

template <typename T>
void mtpProjectForward(const T *e, const T *h, const T *ehProj, T *y, int64_t m,
                       int64_t hidden) {
  int64_t ld = 2 * hidden;
  gemm(false, true, m, hidden, hidden, T(1), e, hidden, ehProj, ld, T(0), y,
       hidden);
  gemm(false, true, m, hidden, hidden, T(1), h, hidden, ehProj + hidden, ld,
       T(1), y, hidden);
}

template <typename T>
void mtpProjectBackwardB(const T *dy, const T *ehProj, T *de, T *dh, int64_t m,
                         int64_t hidden) {
  int64_t ld = 2 * hidden;
  gemm(false, false, m, hidden, hidden, T(1), dy, hidden, ehProj, ld, T(1), de,
       hidden);
  gemm(false, false, m, hidden, hidden, T(1), dy, hidden, ehProj + hidden, ld,
       T(1), dh, hidden);
}

template <typename T>
void mtpProjectBackwardW(const T *dy, const T *e, const T *h, T *dehProj,
                         int64_t m, int64_t hidden) {
  int64_t ld = 2 * hidden;
  gemm(true, false, hidden, hidden, m, T(1), dy, hidden, e, hidden, T(1),
       dehProj, ld);
  gemm(true, false, hidden, hidden, m, T(1), dy, hidden, h, hidden, T(1),
       dehProj + hidden, ld);
}

#define DSFLOW_INSTANTIATE(T)                                                  \
  template void linearForward(const T *, const T *, T *, int64_t, int64_t,     \
                              int64_t);                                        \
  template void linearBackwardB(const T *, const T *, T *, int64_t, int64_t,   \
                                int64_t);                                      \
  template void linearBackwardW(const T *, const T *, T *, int64_t, int64_t,   \
                                int64_t);                                      \
  template void mtpProjectForward(const T *, const T *, const T *, T *,        \
                                  int64_t, int64_t);                           \
  template void mtpProjectBackwardB(const T *, const T *, T *, T *, int64_t,   \
                                    int64_t);                                  \
  template void mtpProjectBackwardW(const T *, const T *, const T *, T *,      \
                                    int64_t, int64_t);
DSFLOW_INSTANTIATE(float)
DSFLOW_INSTANTIATE(double)
#undef DSFLOW_INSTANTIATE

} // namespace dsflow::cpu
