//===- GemmLayout.cpp - Row-major GEMMs as cuBLASLt sees them -------------===//
#include "runtime/backends/cuda/GemmLayout.h"

namespace dsflow::cuda {

ColumnMajorGemm toColumnMajor(const RowMajorGemm &g) {
  ColumnMajorGemm c;
  c.transA = g.transB;
  c.transB = g.transA;
  c.m = g.n;
  c.n = g.m;
  c.k = g.k;
  // Row-major B is op(B) [k, n] stored [k, n] (or [n, k] transposed): as
  // column-major that is [n, k] (or [k, n]), cuBLASLt's A before its op.
  c.a = g.transB ? ColumnMajorLayout{g.k, g.n, g.ldb}
                 : ColumnMajorLayout{g.n, g.k, g.ldb};
  c.b = g.transA ? ColumnMajorLayout{g.m, g.k, g.lda}
                 : ColumnMajorLayout{g.k, g.m, g.lda};
  c.c = {g.n, g.m, g.ldc};
  return c;
}

} // namespace dsflow::cuda
