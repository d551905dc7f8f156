//===- LinearGemms.h - The linear layers' GEMMs, any backend ----*- C++ -*-===//
//
// How linear and mtp_project (forward, B-grad, W-grad) decompose into
// row-major GEMMs, written once for every backend: the CPU runs them on
// OpenBLAS (Linear.cpp), the CUDA backend on cuBLASLt
// (runtime/backends/cuda/DeviceGemms.cpp). `gemm` is called as
// cpu::detail::gemm (Blas.h); In and Out are the operand types (host pointers,
// or device arrays that offset by elements).
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_BACKENDS_CPU_LINEARGEMMS_H
#define DSFLOW_RUNTIME_BACKENDS_CPU_LINEARGEMMS_H

#include <cstdint>

namespace dsflow::cpu {

/// y[m, n] = x[m, k] W[n, k]^T.
template <typename Gemm, typename In, typename Out>
void linearForwardWith(Gemm &&gemm, In x, In w, Out y, int64_t m, int64_t n,
                       int64_t k) {
  gemm(false, true, m, n, k, 1, x, k, w, k, 0, y, n);
}

/// dx[m, k] += dy[m, n] W[n, k].
template <typename Gemm, typename In, typename Out>
void linearBackwardBWith(Gemm &&gemm, In dy, In w, Out dx, int64_t m, int64_t n,
                         int64_t k) {
  gemm(false, false, m, k, n, 1, dy, n, w, k, 1, dx, k);
}

/// dW[n, k] += dy[m, n]^T x[m, k].
template <typename Gemm, typename In, typename Out>
void linearBackwardWWith(Gemm &&gemm, In dy, In x, Out dw, int64_t m, int64_t n,
                         int64_t k) {
  gemm(true, false, n, k, m, 1, dy, n, x, k, 1, dw, k);
}

// eh_proj [H, 2H] is two [H, H] blocks side by side (leading dimension 2H):
// columns [0, H) multiply the embedding, [H, 2H) the hidden state.

template <typename Gemm, typename In, typename Out>
void mtpProjectForwardWith(Gemm &&gemm, In e, In h, In ehProj, Out y, int64_t m,
                           int64_t hidden) {
  int64_t ld = 2 * hidden;
  gemm(false, true, m, hidden, hidden, 1, e, hidden, ehProj, ld, 0, y, hidden);
  gemm(false, true, m, hidden, hidden, 1, h, hidden, ehProj + hidden, ld, 1, y,
       hidden);
}

template <typename Gemm, typename In, typename Out>
void mtpProjectBackwardBWith(Gemm &&gemm, In dy, In ehProj, Out de, Out dh,
                             int64_t m, int64_t hidden) {
  int64_t ld = 2 * hidden;
  gemm(false, false, m, hidden, hidden, 1, dy, hidden, ehProj, ld, 1, de,
       hidden);
  gemm(false, false, m, hidden, hidden, 1, dy, hidden, ehProj + hidden, ld, 1,
       dh, hidden);
}

template <typename Gemm, typename In, typename Out>
void mtpProjectBackwardWWith(Gemm &&gemm, In dy, In e, In h, Out dehProj,
                             int64_t m, int64_t hidden) {
  int64_t ld = 2 * hidden;
  gemm(true, false, hidden, hidden, m, 1, dy, hidden, e, hidden, 1, dehProj,
       ld);
  gemm(true, false, hidden, hidden, m, 1, dy, hidden, h, hidden, 1,
       dehProj + hidden, ld);
}

} // namespace dsflow::cpu

#endif // DSFLOW_RUNTIME_BACKENDS_CPU_LINEARGEMMS_H
