//===- AdamWUpdate.h - One AdamW update of a tensor's elements --*- C++ -*-===//
//
// The element loop of train/AdamW.h, shared by the host optimizer and the
// host-side stand-ins of a device optimizer in the tests; the CUDA runtime's
// support function (compiler/Codegen/CudaSupport.cpp) computes the same.
// Moments are float, or io::BF16 (rounded back after each update, as
// DeepSeek-V3 keeps them).
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_TRAIN_ADAMWUPDATE_H
#define DSFLOW_RUNTIME_TRAIN_ADAMWUPDATE_H

#include "exec/Device.h"
#include "io/BFloat16.h"

#include <cmath>
#include <cstdint>

namespace dsflow::train {

inline float momentValue(float m) { return m; }
inline float momentValue(io::BF16 m) { return io::bf16ToFloat(m); }
inline void storeMoment(float &to, float value) { to = value; }
inline void storeMoment(io::BF16 &to, float value) {
  to = io::floatToBf16(value);
}

/// p[i] = p[i] * decay - stepSize * m / (sqrt(v) / sqrtCorrection2 + eps)
/// after updating the moments from g[i] * gradScale.
template <typename Moment>
void adamwUpdate(float *p, const float *g, Moment *m, Moment *v, int64_t n,
                 float decay, const exec::AdamWScalars &a) {
  for (int64_t i = 0; i < n; ++i) {
    float grad = float(g[i] * a.gradScale);
    float mi = a.beta1 * momentValue(m[i]) + (1.0f - a.beta1) * grad;
    float vi = a.beta2 * momentValue(v[i]) + (1.0f - a.beta2) * grad * grad;
    storeMoment(m[i], mi);
    storeMoment(v[i], vi);
    float denom = std::sqrt(vi) / a.sqrtCorrection2 + a.eps;
    p[i] = p[i] * decay - a.stepSize * mi / denom;
  }
}

} // namespace dsflow::train

#endif // DSFLOW_RUNTIME_TRAIN_ADAMWUPDATE_H
