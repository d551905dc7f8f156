//===- Norm.cpp - RMSNorm forward, activation and weight gradients --------===//
#include "runtime/backends/cpu/Kernels.h"

#include <cmath>

namespace dsflow::cpu {

template <typename T>
void rmsNormForward(const T *x, const T *w, T *y, T *invRms, int64_t rows,
                    int64_t dim, double eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const T *xr = x + r * dim;
    T sumSq = 0;
    for (int64_t i = 0; i < dim; ++i)
      sumSq += xr[i] * xr[i];
    T inv = T(1) / std::sqrt(sumSq / T(dim) + T(eps));
    invRms[r] = inv;
    for (int64_t i = 0; i < dim; ++i)
      y[r * dim + i] = xr[i] * inv * w[i];
  }
}

template <typename T>
void rmsNormBackwardB(const T *dy, const T *x, const T *w, const T *invRms,
                      T *dx, int64_t rows, int64_t dim) {
  for (int64_t r = 0; r < rows; ++r) {
    const T *xr = x + r * dim;
    const T *dyr = dy + r * dim;
    T inv = invRms[r];
    // d/dx_j of x_i * inv: inv * delta_ij - x_i * x_j * inv^3 / dim.
    T dot = 0;
    for (int64_t i = 0; i < dim; ++i)
      dot += dyr[i] * w[i] * xr[i];
    T coef = dot * inv * inv * inv / T(dim);
    for (int64_t j = 0; j < dim; ++j)
      dx[r * dim + j] += inv * w[j] * dyr[j] - xr[j] * coef;
  }
}

template <typename T>
void rmsNormBackwardW(const T *dy, const T *x, const T *invRms, T *dw,
                      int64_t rows, int64_t dim) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < dim; ++i)
      dw[i] += dy[r * dim + i] * x[r * dim + i] * invRms[r];
}

#define DSFLOW_INSTANTIATE(T)                                                  \
  template void rmsNormForward(const T *, const T *, T *, T *, int64_t,        \
                               int64_t, double);                               \
  template void rmsNormBackwardB(const T *, const T *, const T *, const T *,   \
                                 T *, int64_t, int64_t);                       \
  template void rmsNormBackwardW(const T *, const T *, const T *, T *,         \
                                 int64_t, int64_t);
DSFLOW_INSTANTIATE(float)
DSFLOW_INSTANTIATE(double)
#undef DSFLOW_INSTANTIATE

} // namespace dsflow::cpu
