//===- Ffn.cpp - SwiGLU FFNs: routed experts and shared experts -----------===//
#include "runtime/backends/cpu/Kernels.h"

namespace dsflow::cpu {

// One FFN over a block of `n` rows x [n, H]: G = x gate^T, U = x up^T (both
// [n, I], saved), A = silu(G) * U, y = A down^T.

template <typename T>
static void ffnForward(const T *x, const T *gate, const T *up, const T *down,
                       T *y, T *g, T *u, int64_t n, int64_t hidden,
                       int64_t inter) {
  linearForward(x, gate, g, n, inter, hidden);
  linearForward(x, up, u, n, inter, hidden);
  std::vector<T> act(n * inter);
  swigluForward(g, u, act.data(), n * inter);
  linearForward(act.data(), down, y, n, hidden, inter);
}

/// dG and dU (overwritten) from dy: dA = dy down, then swiglu's backward.
template <typename T>
static void ffnPreActGrads(const T *dy, const T *down, const T *g, const T *u,
                           std::vector<T> &dG, std::vector<T> &dU, int64_t n,
                           int64_t hidden, int64_t inter) {
  std::vector<T> dAct(n * inter, T(0));
  linearBackwardB(dy, down, dAct.data(), n, hidden, inter);
  dG.assign(n * inter, T(0));
  dU.assign(n * inter, T(0));
  swigluBackward(dAct.data(), g, u, dG.data(), dU.data(), n * inter);
}

template <typename T>
static void ffnBackwardB(const T *dy, const T *gate, const T *up, const T *down,
                         const T *g, const T *u, T *dx, int64_t n,
                         int64_t hidden, int64_t inter) {
  std::vector<T> dG, dU;
  ffnPreActGrads(dy, down, g, u, dG, dU, n, hidden, inter);
  linearBackwardB(dG.data(), gate, dx, n, inter, hidden);
  linearBackwardB(dU.data(), up, dx, n, inter, hidden);
}

template <typename T>
static void ffnBackwardW(const T *dy, const T *x, const T *down, const T *g,
                         const T *u, T *dGate, T *dUp, T *dDown, int64_t n,
                         int64_t hidden, int64_t inter) {
  std::vector<T> act(n * inter);
  swigluForward(g, u, act.data(), n * inter);
  linearBackwardW(dy, act.data(), dDown, n, hidden, inter);
  std::vector<T> dG, dU;
  ffnPreActGrads(dy, down, g, u, dG, dU, n, hidden, inter);
  linearBackwardW(dG.data(), x, dGate, n, inter, hidden);
  linearBackwardW(dU.data(), x, dUp, n, inter, hidden);
}

/// Non-negative counts adding up to the rows.
static bool validCounts(const int32_t *counts, int64_t experts,
                        int64_t numRows) {
  int64_t total = 0;
  for (int64_t e = 0; e < experts; ++e) {
    if (counts[e] < 0)
      return false;
    total += counts[e];
  }
  return total == numRows;
}

template <typename T>
Status expertFfnForward(const T *rows, const int32_t *counts,
                        const T *const *gate, const T *const *up,
                        const T *const *down, T *y, T *savedGate, T *savedUp,
                        int64_t numRows, int64_t experts, int64_t hidden,
                        int64_t inter) {
  if (!validCounts(counts, experts, numRows))
    return Status::BadExpertCounts;
  int64_t first = 0;
  for (int64_t e = 0; e < experts; ++e) {
    ffnForward(rows + first * hidden, gate[e], up[e], down[e],
               y + first * hidden, savedGate + first * inter,
               savedUp + first * inter, counts[e], hidden, inter);
    first += counts[e];
  }
  return Status::Ok;
}

template <typename T>
Status expertFfnBackwardB(const T *dy, const int32_t *counts,
                          const T *const *gate, const T *const *up,
                          const T *const *down, const T *savedGate,
                          const T *savedUp, T *dRows, int64_t numRows,
                          int64_t experts, int64_t hidden, int64_t inter) {
  if (!validCounts(counts, experts, numRows))
    return Status::BadExpertCounts;
  int64_t first = 0;
  for (int64_t e = 0; e < experts; ++e) {
    ffnBackwardB(dy + first * hidden, gate[e], up[e], down[e],
                 savedGate + first * inter, savedUp + first * inter,
                 dRows + first * hidden, counts[e], hidden, inter);
    first += counts[e];
  }
  return Status::Ok;
}

template <typename T>
Status expertFfnBackwardW(const T *dy, const T *rows, const int32_t *counts,
                          const T *const *down, const T *savedGate,
                          const T *savedUp, T *const *dGate, T *const *dUp,
                          T *const *dDown, int64_t numRows, int64_t experts,
                          int64_t hidden, int64_t inter) {
  if (!validCounts(counts, experts, numRows))
    return Status::BadExpertCounts;
  int64_t first = 0;
  for (int64_t e = 0; e < experts; ++e) {
    ffnBackwardW(dy + first * hidden, rows + first * hidden, down[e],
                 savedGate + first * inter, savedUp + first * inter, dGate[e],
                 dUp[e], dDown[e], counts[e], hidden, inter);
    first += counts[e];
  }
  return Status::Ok;
}

template <typename T>
void sharedExpertsForward(const T *x, const T *gate, const T *up, const T *down,
                          T *y, T *savedGate, T *savedUp, int64_t tokens,
                          int64_t hidden, int64_t inter) {
  ffnForward(x, gate, up, down, y, savedGate, savedUp, tokens, hidden, inter);
}

template <typename T>
void sharedExpertsBackwardB(const T *dy, const T *gate, const T *up,
                            const T *down, const T *savedGate, const T *savedUp,
                            T *dx, int64_t tokens, int64_t hidden,
                            int64_t inter) {
  ffnBackwardB(dy, gate, up, down, savedGate, savedUp, dx, tokens, hidden,
               inter);
}

template <typename T>
void sharedExpertsBackwardW(const T *dy, const T *x, const T *down,
                            const T *savedGate, const T *savedUp, T *dGate,
                            T *dUp, T *dDown, int64_t tokens, int64_t hidden,
                            int64_t inter) {
  ffnBackwardW(dy, x, down, savedGate, savedUp, dGate, dUp, dDown, tokens,
               hidden, inter);
}

#define DSFLOW_INSTANTIATE(T)                                                  \
  template Status expertFfnForward(                                            \
      const T *, const int32_t *, const T *const *, const T *const *,          \
      const T *const *, T *, T *, T *, int64_t, int64_t, int64_t, int64_t);    \
  template Status expertFfnBackwardB(const T *, const int32_t *,               \
                                     const T *const *, const T *const *,       \
                                     const T *const *, const T *, const T *,   \
                                     T *, int64_t, int64_t, int64_t, int64_t); \
  template Status expertFfnBackwardW(const T *, const T *, const int32_t *,    \
                                     const T *const *, const T *, const T *,   \
                                     T *const *, T *const *, T *const *,       \
                                     int64_t, int64_t, int64_t, int64_t);      \
  template void sharedExpertsForward(const T *, const T *, const T *,          \
                                     const T *, T *, T *, T *, int64_t,        \
                                     int64_t, int64_t);                        \
  template void sharedExpertsBackwardB(const T *, const T *, const T *,        \
                                       const T *, const T *, const T *, T *,   \
                                       int64_t, int64_t, int64_t);             \
  template void sharedExpertsBackwardW(const T *, const T *, const T *,        \
                                       const T *, const T *, T *, T *, T *,    \
                                       int64_t, int64_t, int64_t);
DSFLOW_INSTANTIATE(float)
DSFLOW_INSTANTIATE(double)
#undef DSFLOW_INSTANTIATE

} // namespace dsflow::cpu
