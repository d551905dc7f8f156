//===- Elementwise.cpp - swiglu, add, scale, reshape, split, token_window -===//
#include "runtime/backends/cpu/Kernels.h"

#include <algorithm>
#include <cmath>

namespace dsflow::cpu {

template <typename T> static T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

template <typename T>
void swigluForward(const T *g, const T *u, T *y, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = g[i] * sigmoid(g[i]) * u[i];
}

template <typename T>
void swigluBackward(const T *dy, const T *g, const T *u, T *dg, T *du,
                    int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    T s = sigmoid(g[i]);
    // silu'(g) = s + g s (1 - s).
    dg[i] += dy[i] * u[i] * s * (T(1) + g[i] * (T(1) - s));
    du[i] += dy[i] * g[i] * s;
  }
}

template <typename T> void addForward(const T *a, const T *b, T *y, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = a[i] + b[i];
}

template <typename T> void addBackward(const T *dy, T *da, T *db, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    da[i] += dy[i];
  for (int64_t i = 0; i < n; ++i)
    db[i] += dy[i];
}

template <typename T>
void scaleForward(const T *x, double factor, T *y, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = static_cast<T>(factor) * x[i];
}

template <typename T>
void scaleBackward(const T *dy, double factor, T *dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    dx[i] += static_cast<T>(factor) * dy[i];
}

template <typename T> void reshapeForward(const T *x, T *y, int64_t n) {
  if (x != y)
    std::copy(x, x + n, y);
}

template <typename T> void reshapeBackward(const T *dy, T *dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    dx[i] += dy[i];
}

static int64_t totalWidth(const int64_t *widths, int64_t pieces) {
  int64_t total = 0;
  for (int64_t p = 0; p < pieces; ++p)
    total += widths[p];
  return total;
}

template <typename T>
void splitForward(const T *x, T *const *ys, const int64_t *widths,
                  int64_t pieces, int64_t rows) {
  int64_t width = totalWidth(widths, pieces);
  for (int64_t r = 0; r < rows; ++r) {
    int64_t offset = 0;
    for (int64_t p = 0; p < pieces; ++p) {
      const T *src = x + r * width + offset;
      std::copy(src, src + widths[p], ys[p] + r * widths[p]);
      offset += widths[p];
    }
  }
}

template <typename T>
void splitBackward(const T *const *dys, T *dx, const int64_t *widths,
                   int64_t pieces, int64_t rows) {
  int64_t width = totalWidth(widths, pieces);
  for (int64_t r = 0; r < rows; ++r) {
    int64_t offset = 0;
    for (int64_t p = 0; p < pieces; ++p) {
      if (dys[p])
        for (int64_t i = 0; i < widths[p]; ++i)
          dx[r * width + offset + i] += dys[p][r * widths[p] + i];
      offset += widths[p];
    }
  }
}

void tokenWindow(const int32_t *ids, int32_t *y, int64_t batch, int64_t inSeq,
                 int64_t offset, int64_t outSeq) {
  for (int64_t b = 0; b < batch; ++b) {
    const int32_t *src = ids + b * inSeq + offset;
    std::copy(src, src + outSeq, y + b * outSeq);
  }
}

#define DSFLOW_INSTANTIATE(T)                                                  \
  template void swigluForward(const T *, const T *, T *, int64_t);             \
  template void swigluBackward(const T *, const T *, const T *, T *, T *,      \
                               int64_t);                                       \
  template void addForward(const T *, const T *, T *, int64_t);                \
  template void addBackward(const T *, T *, T *, int64_t);                     \
  template void scaleForward(const T *, double, T *, int64_t);                 \
  template void scaleBackward(const T *, double, T *, int64_t);                \
  template void reshapeForward(const T *, T *, int64_t);                       \
  template void reshapeBackward(const T *, T *, int64_t);                      \
  template void splitForward(const T *, T *const *, const int64_t *, int64_t,  \
                             int64_t);                                         \
  template void splitBackward(const T *const *, T *, const int64_t *, int64_t, \
                              int64_t);
DSFLOW_INSTANTIATE(float)
DSFLOW_INSTANTIATE(double)
#undef DSFLOW_INSTANTIATE

} // namespace dsflow::cpu
