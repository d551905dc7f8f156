//===- Blas.h - OpenBLAS GEMM behind one overloaded function ----*- C++ -*-===//
#ifndef DSFLOW_RUNTIME_BACKENDS_CPU_BLAS_H
#define DSFLOW_RUNTIME_BACKENDS_CPU_BLAS_H

#include <cstdint>

namespace dsflow::cpu::detail {

/// Row-major C[m, n] = alpha * op(A) op(B) + beta * C, where op(A) is [m, k]
/// (A stored [k, m] when transA) and op(B) is [k, n] (B stored [n, k] when
/// transB). Empty products are handled here (OpenBLAS rejects k == 0): C is
/// scaled by beta.
void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
          float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
          float beta, float *c, int64_t ldc);
void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
          double alpha, const double *a, int64_t lda, const double *b,
          int64_t ldb, double beta, double *c, int64_t ldc);

} // namespace dsflow::cpu::detail

#endif // DSFLOW_RUNTIME_BACKENDS_CPU_BLAS_H
