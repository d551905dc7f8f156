//===- Blas.cpp - OpenBLAS GEMM behind one overloaded function ------------===//
#include "runtime/backends/cpu/Blas.h"

#include <cblas.h>

namespace dsflow::cpu::detail {

/// Handles the products OpenBLAS cannot take; returns true when it did.
template <typename T>
static bool handleEmpty(int64_t m, int64_t n, int64_t k, T beta, T *c,
                        int64_t ldc) {
  if (m == 0 || n == 0)
    return true;
  if (k != 0)
    return false;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
  return true;
}

static CBLAS_TRANSPOSE trans(bool t) { return t ? CblasTrans : CblasNoTrans; }

void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
          float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
          float beta, float *c, int64_t ldc) {
  if (handleEmpty(m, n, k, beta, c, ldc))
    return;
  cblas_sgemm(CblasRowMajor, trans(transA), trans(transB), m, n, k, alpha, a,
              lda, b, ldb, beta, c, ldc);
}

void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
          double alpha, const double *a, int64_t lda, const double *b,
          int64_t ldb, double beta, double *c, int64_t ldc) {
  if (handleEmpty(m, n, k, beta, c, ldc))
    return;
  cblas_dgemm(CblasRowMajor, trans(transA), trans(transB), m, n, k, alpha, a,
              lda, b, ldb, beta, c, ldc);
}

} // namespace dsflow::cpu::detail
