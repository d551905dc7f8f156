//===- HostFfnBasics.h - FfnSteps engine basics, host -----------*- C++ -*-===//
//
// What a test's engine for runtime/backends/cpu/FfnSteps.h needs besides its
// GEMM forms: OpenBLAS GEMMs, zeroed scratch arrays, SwiGLU and its gradient,
// row dots, as the CPU backend's own engine (cpu/Ffn.cpp) computes them.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_TEST_UNIT_HOSTFFNBASICS_H
#define DSFLOW_TEST_UNIT_HOSTFFNBASICS_H

#include "io/Status.h"
#include "runtime/backends/cpu/Blas.h"
#include "runtime/backends/cpu/Kernels.h"

#include <deque>
#include <vector>

namespace dsflow {

class HostFfnBasics {
public:
  io::Status error() const { return std::nullopt; }
  void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
            float alpha, const float *a, int64_t lda, const float *b,
            int64_t ldb, float beta, float *c, int64_t ldc) {
    cpu::detail::gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c,
                      ldc);
  }
  float *scratch(int64_t elements) {
    return arrays.emplace_back(elements, 0.0f).data();
  }
  void swiglu(const float *g, const float *u, float *act, int64_t count) {
    cpu::swigluForward(g, u, act, count);
  }
  void swigluGrad(const float *dAct, const float *g, const float *u, float *dG,
                  float *dU, int64_t count) {
    cpu::swigluBackward(dAct, g, u, dG, dU, count);
  }
  void rowDots(const float *a, const float *b, float *dots, int64_t rows,
               int64_t cols) {
    for (int64_t i = 0; i < rows; ++i) {
      float dot = 0;
      for (int64_t j = 0; j < cols; ++j)
        dot += a[i * cols + j] * b[i * cols + j];
      dots[i] = dot;
    }
  }

private:
  std::deque<std::vector<float>> arrays; // Stable addresses.
};

} // namespace dsflow

#endif // DSFLOW_TEST_UNIT_HOSTFFNBASICS_H
