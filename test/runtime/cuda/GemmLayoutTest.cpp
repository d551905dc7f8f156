//===- GemmLayoutTest.cpp - Row-major GEMMs as cuBLASLt sees them ---------===//
//
// Evaluates the column-major call toColumnMajor describes exactly as cuBLASLt
// defines it (element (r, c) of a layout at r + c * ld) and compares it with
// the row-major product cpu::detail::gemm computes, for every transpose pair
// with padded leading dimensions.
//
//===----------------------------------------------------------------------===//
#include "runtime/backends/cuda/GemmLayout.h"
#include "runtime/backends/cpu/Blas.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace dsflow::cuda {
namespace {

/// D = alpha op(A) op(B) + beta D over column-major layouts.
void columnMajorGemm(const ColumnMajorGemm &g, float alpha, const float *a,
                     const float *b, float beta, float *d) {
  auto at = [](const float *x, const ColumnMajorLayout &l, bool trans,
               int64_t row, int64_t col) {
    int64_t r = trans ? col : row, c = trans ? row : col;
    EXPECT_LT(r, l.rows);
    EXPECT_LT(c, l.cols);
    return x[r + c * l.ld];
  };
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t j = 0; j < g.n; ++j) {
      double sum = 0;
      for (int64_t l = 0; l < g.k; ++l)
        sum += double(at(a, g.a, g.transA, i, l)) * at(b, g.b, g.transB, l, j);
      float &out = d[i + j * g.c.ld];
      out = float(alpha * sum + beta * out);
    }
}

TEST(GemmLayout, ColumnMajorCallComputesTheRowMajorProduct) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> value(-1, 1);
  const int64_t m = 5, n = 7, k = 3, pad = 2;
  for (bool transA : {false, true})
    for (bool transB : {false, true}) {
      RowMajorGemm g;
      g.transA = transA;
      g.transB = transB;
      g.m = m, g.n = n, g.k = k;
      g.lda = (transA ? m : k) + pad;
      g.ldb = (transB ? k : n) + pad;
      g.ldc = n + pad;
      std::vector<float> a((transA ? k : m) * g.lda),
          b((transB ? n : k) * g.ldb), c(m * g.ldc);
      for (float *x : {a.data(), b.data(), c.data()})
        for (size_t i = 0; i < (x == a.data()   ? a.size()
                                : x == b.data() ? b.size()
                                                : c.size());
             ++i)
          x[i] = value(rng);
      std::vector<float> expected = c, actual = c;
      cpu::detail::gemm(transA, transB, m, n, k, 0.5f, a.data(), g.lda,
                        b.data(), g.ldb, 1.0f, expected.data(), g.ldc);
      ColumnMajorGemm col = toColumnMajor(g);
      EXPECT_EQ(col.m, n);
      EXPECT_EQ(col.n, m);
      // cuBLASLt's A is the row-major B.
      columnMajorGemm(col, 0.5f, b.data(), a.data(), 1.0f, actual.data());
      for (size_t i = 0; i < c.size(); ++i)
        EXPECT_NEAR(actual[i], expected[i], 1e-5)
            << "transA " << transA << " transB " << transB << " at " << i;
    }
}

} // namespace
} // namespace dsflow::cuda
