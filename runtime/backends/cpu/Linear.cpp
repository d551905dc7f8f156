//===- Linear.cpp - Linear layers (linear, mtp_project) on OpenBLAS -------===//
#include "runtime/backends/cpu/Blas.h"
#include "runtime/backends/cpu/Kernels.h"
#include "runtime/backends/cpu/LinearGemms.h"

namespace dsflow::cpu {

namespace {
/// OpenBLAS for the GEMMs of LinearGemms.h.
template <typename T> struct HostGemm {
  void operator()(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
                  T alpha, const T *a, int64_t lda, const T *b, int64_t ldb,
                  T beta, T *c, int64_t ldc) const {
    detail::gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
};
} // namespace

template <typename T>
void linearForward(const T *x, const T *w, T *y, int64_t m, int64_t n,
                   int64_t k) {
  linearForwardWith(HostGemm<T>(), x, w, y, m, n, k);
}

template <typename T>
void linearBackwardB(const T *dy, const T *w, T *dx, int64_t m, int64_t n,
                     int64_t k) {
  linearBackwardBWith(HostGemm<T>(), dy, w, dx, m, n, k);
}

template <typename T>
void linearBackwardW(const T *dy, const T *x, T *dw, int64_t m, int64_t n,
                     int64_t k) {
  linearBackwardWWith(HostGemm<T>(), dy, x, dw, m, n, k);
}

template <typename T>
void mtpProjectForward(const T *e, const T *h, const T *ehProj, T *y, int64_t m,
                       int64_t hidden) {
  mtpProjectForwardWith(HostGemm<T>(), e, h, ehProj, y, m, hidden);
}

template <typename T>
void mtpProjectBackwardB(const T *dy, const T *ehProj, T *de, T *dh, int64_t m,
                         int64_t hidden) {
  mtpProjectBackwardBWith(HostGemm<T>(), dy, ehProj, de, dh, m, hidden);
}

template <typename T>
void mtpProjectBackwardW(const T *dy, const T *e, const T *h, T *dehProj,
                         int64_t m, int64_t hidden) {
  mtpProjectBackwardWWith(HostGemm<T>(), dy, e, h, dehProj, m, hidden);
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
