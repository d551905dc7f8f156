//===- Ffn.cpp - SwiGLU FFNs: routed experts and shared experts -----------===//
#include "runtime/backends/cpu/Blas.h"
#include "runtime/backends/cpu/FfnSteps.h"
#include "runtime/backends/cpu/Fp8.h"
#include "runtime/backends/cpu/Kernels.h"

#include <algorithm>
#include <vector>

namespace dsflow::cpu {

namespace {
/// Scratch arrays kept between FFN calls (one set per thread). A routed FFN
/// runs one engine per expert, and fresh arrays of that size are new pages
/// for every expert: mapping and faulting them in cost more than the small
/// experts' GEMMs. An engine takes arrays and gives them back when it ends.
template <typename T> class ScratchPool {
public:
  static ScratchPool &ofThisThread() {
    static thread_local ScratchPool pool;
    return pool;
  }
  /// `elements` zeros, in the smallest kept array that holds them.
  std::vector<T> take(int64_t elements) {
    auto best = kept.end();
    for (auto it = kept.begin(); it != kept.end(); ++it)
      if (int64_t(it->capacity()) >= elements &&
          (best == kept.end() || it->capacity() < best->capacity()))
        best = it;
    std::vector<T> array;
    if (best != kept.end()) {
      array = std::move(*best);
      kept.erase(best);
    }
    array.assign(size_t(elements), T(0));
    return array;
  }
  /// Keeps the largest arrays, a few more than one engine uses, so that the
  /// pool stays the size of the largest expert's scratch.
  void giveBack(std::vector<T> array) {
    kept.push_back(std::move(array));
    if (kept.size() <= kMaxKept)
      return;
    kept.erase(std::min_element(kept.begin(), kept.end(),
                                [](const auto &a, const auto &b) {
                                  return a.capacity() < b.capacity();
                                }));
  }

private:
  static constexpr size_t kMaxKept = 16;
  std::vector<std::vector<T>> kept;
};

/// The CPU's engine for FfnSteps.h: OpenBLAS, host scratch vectors, and (fp8
/// set) GEMM operands quantized to E4M3 and back in the tiling of the GEMM
/// that reads them.
template <typename T>
class HostFfnEngine
    : public EmulatedFfnGemms<HostFfnEngine<T>, const T *, T *> {
public:
  explicit HostFfnEngine(const Fp8ScaleOptions *fp8) : fp8(fp8) {}
  HostFfnEngine(const HostFfnEngine &) = delete;
  HostFfnEngine &operator=(const HostFfnEngine &) = delete;
  ~HostFfnEngine() {
    for (std::vector<T> &array : arrays)
      ScratchPool<T>::ofThisThread().giveBack(std::move(array));
  }
  void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, T alpha,
            const T *a, int64_t lda, const T *b, int64_t ldb, T beta, T *c,
            int64_t ldc) {
    detail::gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
  T *scratch(int64_t elements) {
    // Moving a vector keeps its data where it is, so pointers stay valid.
    return arrays.emplace_back(ScratchPool<T>::ofThisThread().take(elements))
        .data();
  }
  void swiglu(const T *g, const T *u, T *act, int64_t count) {
    swigluForward(g, u, act, count);
  }
  void swigluGrad(const T *dAct, const T *g, const T *u, T *dG, T *dU,
                  int64_t count) {
    swigluBackward(dAct, g, u, dG, dU, count);
  }
  void rowDots(const T *a, const T *b, T *dots, int64_t rows, int64_t cols) {
    for (int64_t i = 0; i < rows; ++i) {
      T dot = 0;
      for (int64_t j = 0; j < cols; ++j)
        dot += a[i * cols + j] * b[i * cols + j];
      dots[i] = dot;
    }
  }
  /// x [rows, cols] as a GEMM contracting over its columns (forward and
  /// B-grad GEMMs: 1x128 tiles) or rows (W-grad GEMMs: 128x1) reads it.
  const T *readCopy(const T *x, int64_t rows, int64_t cols, bool overRows) {
    if (!fp8)
      return x;
    T *copy = scratch(rows * cols);
    fakeQuantizeFp8(x, copy, rows, cols,
                    overRows ? Fp8Tiling::Tiles128x1 : Fp8Tiling::Tiles1x128,
                    *fp8);
    return copy;
  }

private:
  const Fp8ScaleOptions *fp8;
  std::vector<std::vector<T>> arrays; // From ScratchPool.
};

template <typename T>
void ffnForward(const T *x, const T *gate, const T *up, const T *down, T *y,
                T *g, T *u, int64_t n, int64_t hidden, int64_t inter,
                const Fp8ScaleOptions *fp8) {
  HostFfnEngine<T> e(fp8);
  ffnForwardWith<HostFfnEngine<T>, const T *, T *>(e, x, gate, up, down, y, g,
                                                   u, n, hidden, inter);
}

template <typename T>
void ffnBackwardB(const T *dy, const T *gate, const T *up, const T *down,
                  const T *g, const T *u, T *dx, T *rowDots, int64_t n,
                  int64_t hidden, int64_t inter, const Fp8ScaleOptions *fp8) {
  HostFfnEngine<T> e(fp8);
  ffnBackwardBWith<HostFfnEngine<T>, const T *, T *>(
      e, dy, gate, up, down, g, u, dx, rowDots, rowDots != nullptr, n, hidden,
      inter);
}

template <typename T>
void ffnBackwardW(const T *dy, const T *x, const T *down, const T *g,
                  const T *u, T *dGate, T *dUp, T *dDown, int64_t n,
                  int64_t hidden, int64_t inter, const Fp8ScaleOptions *fp8) {
  HostFfnEngine<T> e(fp8);
  ffnBackwardWWith<HostFfnEngine<T>, const T *, T *>(
      e, dy, x, down, g, u, dGate, dUp, dDown, n, hidden, inter);
}
} // namespace

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
