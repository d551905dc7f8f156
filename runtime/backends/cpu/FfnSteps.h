//===- FfnSteps.h - The SwiGLU FFN's steps, for any engine ------*- C++ -*-===//
//
// One FFN over a block of n rows x [n, H]: G = x gate^T, U = x up^T (both
// [n, I], saved for the backward), A = silu(G) * U, y = A down^T; and its
// data and weight gradients. Written once for every backend: the CPU
// (Ffn.cpp) and the CUDA backend (runtime/backends/cuda/DeviceFfn.cpp) pass an
// engine E with
//   e.linearForward(x, w, y, n, out, in)    y = x w^T      (LinearGemms.h's
//   e.linearBackwardB(dy, w, dx, n, out, in) dx += dy w     three forms, for
//   e.linearBackwardW(dy, x, dw, n, out, in) dw += dy^T x   w [out, in]);
//   e.downProjection(g, u, down, y, n, hidden, inter)  y = (silu(g) * u)
//                                       down^T (an engine may fuse SwiGLU
//                                       into the GEMM's operand);
//   e.scratch(elements)                 a zeroed array, alive as long as e;
//   e.swiglu(g, u, act, count)          act = silu(g) * u;
//   e.swigluGrad(dAct, g, u, dG, dU, count)  dG += ..., dU += ...;
//   e.rowDots(a, b, dots, rows, cols)   dots[i] = <a_i, b_i>;
//   e.alongColumns(x, rows, cols)       x as a GEMM contracting over its
//                                       columns reads it (quantized to E4M3
//                                       and back with --fp8, else x).
// EmulatedFfnGemms below gives the three forms from e.gemm (as
// cpu::detail::gemm) and the operands as the GEMMs read them; an engine that
// multiplies FP8 operands itself (the GPU's tensor cores) replaces them.
// In and Out are the engine's read and written array types.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_BACKENDS_CPU_FFNSTEPS_H
#define DSFLOW_RUNTIME_BACKENDS_CPU_FFNSTEPS_H

#include "runtime/backends/cpu/LinearGemms.h"

#include <cstdint>
#include <map>
#include <utility>

namespace dsflow::cpu {

template <typename E> auto gemmOf(E &e) {
  return
      [&e](auto &&...args) { e.gemm(std::forward<decltype(args)>(args)...); };
}

/// A key for an engine's array: its address.
inline uintptr_t arrayKey(const void *p) { return uintptr_t(p); }

/// The three GEMM forms of an engine E (derived from this) from E::gemm and
/// E::readCopy(x, rows, cols, overRows): x as a GEMM contracting over its
/// columns (overRows: its rows) reads it. Each array's copy is made once per
/// engine (FfnSteps writes an array before any GEMM reads it and not after).
template <typename E, typename In, typename Out> class EmulatedFfnGemms {
public:
  In alongColumns(In x, int64_t rows, int64_t cols) {
    return readAs(x, rows, cols, false);
  }
  In alongRows(In x, int64_t rows, int64_t cols) {
    return readAs(x, rows, cols, true);
  }
  void linearForward(In x, In w, Out y, int64_t n, int64_t out, int64_t in) {
    linearForwardWith(gemmOf(self()), alongColumns(x, n, in), w, y, n, out, in);
  }
  void linearBackwardB(In dy, In w, Out dx, int64_t n, int64_t out,
                       int64_t in) {
    linearBackwardBWith(gemmOf(self()), alongColumns(dy, n, out), w, dx, n, out,
                        in);
  }
  void linearBackwardW(In dy, In x, Out dw, int64_t n, int64_t out,
                       int64_t in) {
    linearBackwardWWith(gemmOf(self()), alongRows(dy, n, out),
                        alongRows(x, n, in), dw, n, out, in);
  }
  void downProjection(In g, In u, In down, Out y, int64_t n, int64_t hidden,
                      int64_t inter) {
    Out act = self().scratch(n * inter);
    self().swiglu(g, u, act, n * inter);
    linearForward(act, down, y, n, hidden, inter);
  }

private:
  E &self() { return static_cast<E &>(*this); }
  In readAs(In x, int64_t rows, int64_t cols, bool overRows) {
    auto key = std::make_pair(arrayKey(x), overRows);
    auto known = copies.find(key);
    if (known != copies.end())
      return known->second;
    In copy = self().readCopy(x, rows, cols, overRows);
    copies.emplace(key, copy);
    return copy;
  }
  std::map<std::pair<uintptr_t, bool>, In> copies;
};

template <typename E, typename In, typename Out>
void ffnForwardWith(E &e, In x, In gate, In up, In down, Out y, Out g, Out u,
                    int64_t n, int64_t hidden, int64_t inter) {
  e.linearForward(x, gate, g, n, inter, hidden);
  e.linearForward(x, up, u, n, inter, hidden);
  e.downProjection(g, u, down, y, n, hidden, inter);
}

/// dG and dU (fresh arrays) from dy: dA = dy down, then swiglu's backward.
/// With `rowDots`: rowDots[i] = <dA_i, A_i>, A as the down-projection read it.
template <typename E, typename In, typename Out>
std::pair<Out, Out> ffnPreActGradsWith(E &e, In dy, In down, In g, In u,
                                       Out rowDots, bool withRowDots, int64_t n,
                                       int64_t hidden, int64_t inter) {
  Out dAct = e.scratch(n * inter);
  e.linearBackwardB(dy, down, dAct, n, hidden, inter);
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
  e.linearBackwardB(dG, gate, dx, n, inter, hidden);
  e.linearBackwardB(dU, up, dx, n, inter, hidden);
}

template <typename E, typename In, typename Out>
void ffnBackwardWWith(E &e, In dy, In x, In down, In g, In u, Out dGate,
                      Out dUp, Out dDown, int64_t n, int64_t hidden,
                      int64_t inter) {
  Out act = e.scratch(n * inter);
  e.swiglu(g, u, act, n * inter);
  e.linearBackwardW(dy, act, dDown, n, hidden, inter);
  auto [dG, dU] = ffnPreActGradsWith<E, In, Out>(e, dy, down, g, u, Out(),
                                                 false, n, hidden, inter);
  e.linearBackwardW(dG, x, dGate, n, inter, hidden);
  e.linearBackwardW(dU, x, dUp, n, inter, hidden);
}

} // namespace dsflow::cpu

#endif // DSFLOW_RUNTIME_BACKENDS_CPU_FFNSTEPS_H
