//===- FfnSteps.h - The SwiGLU FFN's steps, for any engine ------*- C++ -*-===//
//
// One FFN over a block of n rows x [n, H]: G = x gate^T, U = x up^T (both
// [n, I], saved for the backward), A = silu(G) * U, y = A down^T; and its
// data and weight gradients. Written once for every backend: the CPU
// (Ffn.cpp) and the CUDA backend (runtime/backends/cuda/DeviceFfn.cpp) pass an
// engine E with
//   e.gemm(...)                         as cpu::detail::gemm (LinearGemms.h);
//   e.scratch(elements)                 a zeroed array, alive as long as e;
//   e.swiglu(g, u, act, count)          act = silu(g) * u;
//   e.swigluGrad(dAct, g, u, dG, dU, count)  dG += ..., dU += ...;
//   e.rowDots(a, b, dots, rows, cols)   dots[i] = <a_i, b_i>;
//   e.alongColumns(x, rows, cols)       x as a GEMM contracting over its
//   e.alongRows(x, rows, cols)          columns (rows) reads it: quantized to
//                                       E4M3 and back with --fp8, else x.
// In and Out are the engine's read and written array types.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_BACKENDS_CPU_FFNSTEPS_H
#define DSFLOW_RUNTIME_BACKENDS_CPU_FFNSTEPS_H

#include "runtime/backends/cpu/LinearGemms.h"

#include <utility>

namespace dsflow::cpu {

template <typename E> auto gemmOf(E &e) {
  return
      [&e](auto &&...args) { e.gemm(std::forward<decltype(args)>(args)...); };
}

template <typename E, typename In, typename Out>
void ffnForwardWith(E &e, In x, In gate, In up, In down, Out y, Out g, Out u,
                    int64_t n, int64_t hidden, int64_t inter) {
  In xq = e.alongColumns(x, n, hidden);
  linearForwardWith(gemmOf(e), xq, gate, g, n, inter, hidden);
  linearForwardWith(gemmOf(e), xq, up, u, n, inter, hidden);
  Out act = e.scratch(n * inter);
  e.swiglu(g, u, act, n * inter);
  linearForwardWith(gemmOf(e), e.alongColumns(act, n, inter), down, y, n,
                    hidden, inter);
}

/// dG and dU (fresh arrays) from dy: dA = dy down, then swiglu's backward.
/// With `rowDots`: rowDots[i] = <dA_i, A_i>, A as the down-projection read it.
template <typename E, typename In, typename Out>
std::pair<Out, Out> ffnPreActGradsWith(E &e, In dy, In down, In g, In u,
                                       Out rowDots, bool withRowDots, int64_t n,
                                       int64_t hidden, int64_t inter) {
  Out dAct = e.scratch(n * inter);
  linearBackwardBWith(gemmOf(e), e.alongColumns(dy, n, hidden), down, dAct, n,
                      hidden, inter);
  if (withRowDots) {
    Out act = e.scratch(n * inter);
    e.swiglu(g, u, act, n * inter);
    e.rowDots(dAct, e.alongColumns(act, n, inter), rowDots, n, inter);
  }
  Out dG = e.scratch(n * inter), dU = e.scratch(n * inter);
  e.swigluGrad(dAct, g, u, dG, dU, n * inter);
  return {dG, dU};
}

template <typename E, typename In, typename Out>
void ffnBackwardBWith(E &e, In dy, In gate, In up, In down, In g, In u, Out dx,
                      Out rowDots, bool withRowDots, int64_t n, int64_t hidden,
                      int64_t inter) {
  auto [dG, dU] = ffnPreActGradsWith<E, In, Out>(e, dy, down, g, u, rowDots,
                                                 withRowDots, n, hidden, inter);
  linearBackwardBWith(gemmOf(e), e.alongColumns(dG, n, inter), gate, dx, n,
                      inter, hidden);
  linearBackwardBWith(gemmOf(e), e.alongColumns(dU, n, inter), up, dx, n, inter,
                      hidden);
}

template <typename E, typename In, typename Out>
void ffnBackwardWWith(E &e, In dy, In x, In down, In g, In u, Out dGate,
                      Out dUp, Out dDown, int64_t n, int64_t hidden,
                      int64_t inter) {
  Out act = e.scratch(n * inter);
  e.swiglu(g, u, act, n * inter);
  linearBackwardWWith(gemmOf(e), e.alongRows(dy, n, hidden),
                      e.alongRows(act, n, inter), dDown, n, hidden, inter);
  auto [dG, dU] = ffnPreActGradsWith<E, In, Out>(e, dy, down, g, u, Out(),
                                                 false, n, hidden, inter);
  In xq = e.alongRows(x, n, hidden);
  linearBackwardWWith(gemmOf(e), e.alongRows(dG, n, inter), xq, dGate, n, inter,
                      hidden);
  linearBackwardWWith(gemmOf(e), e.alongRows(dU, n, inter), xq, dUp, n, inter,
                      hidden);
}

} // namespace dsflow::cpu

#endif // DSFLOW_RUNTIME_BACKENDS_CPU_FFNSTEPS_H
