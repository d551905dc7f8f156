//===- GemmLayout.h - Row-major GEMMs as cuBLASLt sees them -----*- C++ -*-===//
//
// dsflow stores matrices row-major; cuBLASLt reads them column-major. A
// row-major [r, c] matrix with leading dimension ld is the column-major
// [c, r] matrix of the same ld, so row-major C = op(A) op(B) is column-major
// C^T = op(B)^T op(A)^T: cuBLASLt's A is our B and its B our A, with the
// transposes kept and m and n swapped. Kept apart from the cuBLASLt calls so
// that the translation is tested without a GPU.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_BACKENDS_CUDA_GEMMLAYOUT_H
#define DSFLOW_RUNTIME_BACKENDS_CUDA_GEMMLAYOUT_H

#include <cstdint>

namespace dsflow::cuda {

/// Row-major C[m, n] = alpha op(A)[m, k] op(B)[k, n] + beta C, as
/// cpu::detail::gemm takes it (A stored [k, m] when transA, B [n, k] when
/// transB).
struct RowMajorGemm {
  bool transA = false, transB = false;
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
};

/// A column-major matrix as cublasLtMatrixLayoutCreate takes it.
struct ColumnMajorLayout {
  int64_t rows = 0, cols = 0, ld = 0;
};

/// The cuBLASLt call: D = op(A) op(B) over column-major layouts, where A is
/// the row-major B operand and B the row-major A operand (see above).
struct ColumnMajorGemm {
  bool transA = false, transB = false;
  int64_t m = 0, n = 0, k = 0;
  ColumnMajorLayout a, b, c;
};

ColumnMajorGemm toColumnMajor(const RowMajorGemm &g);

} // namespace dsflow::cuda

#endif // DSFLOW_RUNTIME_BACKENDS_CUDA_GEMMLAYOUT_H
