//===- Ffn.cpp - SwiGLU FFNs: routed experts and shared experts -----------===//
#include "runtime/backends/cpu/Fp8.h"
#include "runtime/backends/cpu/Kernels.h"

#include <deque>
#include <vector>

namespace dsflow::cpu {

// One FFN over a block of `n` rows x [n, H]: G = x gate^T, U = x up^T (both
// [n, I], saved), A = silu(G) * U, y = A down^T.

namespace {
/// The activation operands of the FFN's GEMMs: as given, or (fp8 set) each
/// quantized to E4M3 and back in the tiling of the GEMM that reads it.
template <typename T> class FfnOperands {
public:
  explicit FfnOperands(const Fp8ScaleOptions *fp8) : fp8(fp8) {}
  /// x [n, cols] contracted over its columns (forward and B-grad GEMMs).
  const T *alongColumns(const T *x, int64_t n, int64_t cols) {
    return quantized(x, n, cols, Fp8Tiling::Tiles1x128);
  }
  /// x [n, cols] contracted over its rows (W-grad GEMMs).
  const T *alongRows(const T *x, int64_t n, int64_t cols) {
    return quantized(x, n, cols, Fp8Tiling::Tiles128x1);
  }

private:
  const T *quantized(const T *x, int64_t n, int64_t cols, Fp8Tiling tiling) {
    if (!fp8)
      return x;
    std::vector<T> &copy = copies.emplace_back(n * cols);
    fakeQuantizeFp8(x, copy.data(), n, cols, tiling, *fp8);
    return copy.data();
  }
  const Fp8ScaleOptions *fp8;
  std::deque<std::vector<T>> copies; // Stable addresses.
};
} // namespace

template <typename T>
static void ffnForward(const T *x, const T *gate, const T *up, const T *down,
                       T *y, T *g, T *u, int64_t n, int64_t hidden,
                       int64_t inter, const Fp8ScaleOptions *fp8) {
  FfnOperands<T> operands(fp8);
  const T *xq = operands.alongColumns(x, n, hidden);
  linearForward(xq, gate, g, n, inter, hidden);
  linearForward(xq, up, u, n, inter, hidden);
  std::vector<T> act(n * inter);
  swigluForward(g, u, act.data(), n * inter);
  linearForward(operands.alongColumns(act.data(), n, inter), down, y, n, hidden,
                inter);
}

/// dG and dU (overwritten) from dy: dA = dy down, then swiglu's backward.
/// With `rowDots`: rowDots[i] = <dA_i, A_i>, A as the down-projection read it.
template <typename T>
static void ffnPreActGrads(const T *dy, const T *down, const T *g, const T *u,
                           std::vector<T> &dG, std::vector<T> &dU, int64_t n,
                           int64_t hidden, int64_t inter,
                           const Fp8ScaleOptions *fp8, T *rowDots = nullptr) {
  FfnOperands<T> operands(fp8);
  std::vector<T> dAct(n * inter, T(0));
  linearBackwardB(operands.alongColumns(dy, n, hidden), down, dAct.data(), n,
                  hidden, inter);
  if (rowDots) {
    std::vector<T> act(n * inter);
    swigluForward(g, u, act.data(), n * inter);
    const T *a = operands.alongColumns(act.data(), n, inter);
    for (int64_t i = 0; i < n; ++i) {
      T dot = 0;
      for (int64_t j = 0; j < inter; ++j)
        dot += dAct[i * inter + j] * a[i * inter + j];
      rowDots[i] = dot;
    }
  }
  dG.assign(n * inter, T(0));
  dU.assign(n * inter, T(0));
  swigluBackward(dAct.data(), g, u, dG.data(), dU.data(), n * inter);
}

template <typename T>
static void ffnBackwardB(const T *dy, const T *gate, const T *up, const T *down,
                         const T *g, const T *u, T *dx, T *rowDots, int64_t n,
                         int64_t hidden, int64_t inter,
                         const Fp8ScaleOptions *fp8) {
  std::vector<T> dG, dU;
  ffnPreActGrads(dy, down, g, u, dG, dU, n, hidden, inter, fp8, rowDots);
  FfnOperands<T> operands(fp8);
  linearBackwardB(operands.alongColumns(dG.data(), n, inter), gate, dx, n,
                  inter, hidden);
  linearBackwardB(operands.alongColumns(dU.data(), n, inter), up, dx, n, inter,
                  hidden);
}

template <typename T>
static void ffnBackwardW(const T *dy, const T *x, const T *down, const T *g,
                         const T *u, T *dGate, T *dUp, T *dDown, int64_t n,
                         int64_t hidden, int64_t inter,
                         const Fp8ScaleOptions *fp8) {
  FfnOperands<T> operands(fp8);
  std::vector<T> act(n * inter);
  swigluForward(g, u, act.data(), n * inter);
  linearBackwardW(operands.alongRows(dy, n, hidden),
                  operands.alongRows(act.data(), n, inter), dDown, n, hidden,
                  inter);
  std::vector<T> dG, dU;
  ffnPreActGrads(dy, down, g, u, dG, dU, n, hidden, inter, fp8);
  const T *xq = operands.alongRows(x, n, hidden);
  linearBackwardW(operands.alongRows(dG.data(), n, inter), xq, dGate, n, inter,
                  hidden);
  linearBackwardW(operands.alongRows(dU.data(), n, inter), xq, dUp, n, inter,
                  hidden);
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
                        int64_t inter, const Fp8ScaleOptions *fp8) {
  if (!validCounts(counts, experts, numRows))
    return Status::BadExpertCounts;
  int64_t first = 0;
  for (int64_t e = 0; e < experts; ++e) {
    ffnForward(rows + first * hidden, gate[e], up[e], down[e],
               y + first * hidden, savedGate + first * inter,
               savedUp + first * inter, counts[e], hidden, inter, fp8);
    first += counts[e];
  }
  return Status::Ok;
}

template <typename T>
Status expertFfnBackwardB(const T *dy, const int32_t *counts,
                          const T *const *gate, const T *const *up,
                          const T *const *down, const T *savedGate,
                          const T *savedUp, T *dRows, T *rowDots,
                          int64_t numRows, int64_t experts, int64_t hidden,
                          int64_t inter, const Fp8ScaleOptions *fp8) {
  if (!validCounts(counts, experts, numRows))
    return Status::BadExpertCounts;
  int64_t first = 0;
  for (int64_t e = 0; e < experts; ++e) {
    ffnBackwardB(dy + first * hidden, gate[e], up[e], down[e],
                 savedGate + first * inter, savedUp + first * inter,
                 dRows + first * hidden, rowDots + first, counts[e], hidden,
                 inter, fp8);
    first += counts[e];
  }
  return Status::Ok;
}

template <typename T>
Status expertFfnBackwardW(const T *dy, const T *rows, const int32_t *counts,
                          const T *const *down, const T *savedGate,
                          const T *savedUp, T *const *dGate, T *const *dUp,
                          T *const *dDown, int64_t numRows, int64_t experts,
                          int64_t hidden, int64_t inter,
                          const Fp8ScaleOptions *fp8) {
  if (!validCounts(counts, experts, numRows))
    return Status::BadExpertCounts;
  int64_t first = 0;
  for (int64_t e = 0; e < experts; ++e) {
    ffnBackwardW(dy + first * hidden, rows + first * hidden, down[e],
                 savedGate + first * inter, savedUp + first * inter, dGate[e],
                 dUp[e], dDown[e], counts[e], hidden, inter, fp8);
    first += counts[e];
  }
  return Status::Ok;
}

template <typename T>
void sharedExpertsForward(const T *x, const T *gate, const T *up, const T *down,
                          T *y, T *savedGate, T *savedUp, int64_t tokens,
                          int64_t hidden, int64_t inter,
                          const Fp8ScaleOptions *fp8) {
  ffnForward(x, gate, up, down, y, savedGate, savedUp, tokens, hidden, inter,
             fp8);
}

template <typename T>
void sharedExpertsBackwardB(const T *dy, const T *gate, const T *up,
                            const T *down, const T *savedGate, const T *savedUp,
                            T *dx, int64_t tokens, int64_t hidden,
                            int64_t inter, const Fp8ScaleOptions *fp8) {
  ffnBackwardB(dy, gate, up, down, savedGate, savedUp, dx,
               static_cast<T *>(nullptr), tokens, hidden, inter, fp8);
}

template <typename T>
void sharedExpertsBackwardW(const T *dy, const T *x, const T *down,
                            const T *savedGate, const T *savedUp, T *dGate,
                            T *dUp, T *dDown, int64_t tokens, int64_t hidden,
                            int64_t inter, const Fp8ScaleOptions *fp8) {
  ffnBackwardW(dy, x, down, savedGate, savedUp, dGate, dUp, dDown, tokens,
               hidden, inter, fp8);
}

#define DSFLOW_INSTANTIATE(T)                                                  \
  template Status expertFfnForward(                                            \
      const T *, const int32_t *, const T *const *, const T *const *,          \
      const T *const *, T *, T *, T *, int64_t, int64_t, int64_t, int64_t,     \
      const Fp8ScaleOptions *);                                                \
  template Status expertFfnBackwardB(                                          \
      const T *, const int32_t *, const T *const *, const T *const *,          \
      const T *const *, const T *, const T *, T *, T *, int64_t, int64_t,      \
      int64_t, int64_t, const Fp8ScaleOptions *);                              \
  template Status expertFfnBackwardW(                                          \
      const T *, const T *, const int32_t *, const T *const *, const T *,      \
      const T *, T *const *, T *const *, T *const *, int64_t, int64_t,         \
      int64_t, int64_t, const Fp8ScaleOptions *);                              \
  template void sharedExpertsForward(                                          \
      const T *, const T *, const T *, const T *, T *, T *, T *, int64_t,      \
      int64_t, int64_t, const Fp8ScaleOptions *);                              \
  template void sharedExpertsBackwardB(                                        \
      const T *, const T *, const T *, const T *, const T *, const T *, T *,   \
      int64_t, int64_t, int64_t, const Fp8ScaleOptions *);                     \
  template void sharedExpertsBackwardW(                                        \
      const T *, const T *, const T *, const T *, const T *, T *, T *, T *,    \
      int64_t, int64_t, int64_t, const Fp8ScaleOptions *);
DSFLOW_INSTANTIATE(float)
DSFLOW_INSTANTIATE(double)
#undef DSFLOW_INSTANTIATE

} // namespace dsflow::cpu
