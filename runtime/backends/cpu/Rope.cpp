//===- Rope.cpp - Rotary position embedding with optional YaRN ------------===//
#include "runtime/backends/cpu/Kernels.h"

#include <algorithm>
#include <cmath>

namespace dsflow::cpu {

std::vector<double> ropeInvFreq(int64_t dim, double theta,
                                const YarnParams *yarn) {
  int64_t half = dim / 2;
  std::vector<double> freqs(half);
  for (int64_t i = 0; i < half; ++i)
    freqs[i] = 1.0 / std::pow(theta, static_cast<double>(2 * i) / dim);
  if (!yarn)
    return freqs;

  // DeepSeek-V3's precompute_freqs_cis: the dimension at which a frequency
  // makes `rotations` turns over the original context.
  const double pi = 3.14159265358979323846;
  auto correctionDim = [&](double rotations) {
    return dim * std::log(yarn->originalMaxPosition / (rotations * 2 * pi)) /
           (2 * std::log(theta));
  };
  double low = std::max(std::floor(correctionDim(yarn->betaFast)), 0.0);
  double high =
      std::min(std::ceil(correctionDim(yarn->betaSlow)), double(dim - 1));
  if (low == high)
    high += 0.001;
  for (int64_t i = 0; i < half; ++i) {
    double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
    double smooth = 1 - ramp;
    freqs[i] = freqs[i] / yarn->factor * (1 - smooth) + freqs[i] * smooth;
  }
  return freqs;
}

/// cos and sin of s * invFreq[i], [seq, dim/2] each.
static void rotationTable(const double *invFreq, int64_t seq, int64_t half,
                          std::vector<double> &cosTable,
                          std::vector<double> &sinTable) {
  cosTable.resize(seq * half);
  sinTable.resize(seq * half);
  for (int64_t s = 0; s < seq; ++s)
    for (int64_t i = 0; i < half; ++i) {
      double angle = static_cast<double>(s) * invFreq[i];
      cosTable[s * half + i] = std::cos(angle);
      sinTable[s * half + i] = std::sin(angle);
    }
}

/// Rotates every pair by +angle (forward) or -angle (backward), writing or
/// accumulating into `out`.
template <typename T>
static void rotate(const T *in, const double *invFreq, T *out, int64_t batch,
                   int64_t seq, int64_t heads, int64_t dim, bool inverse) {
  int64_t half = dim / 2;
  std::vector<double> cosTable, sinTable;
  rotationTable(invFreq, seq, half, cosTable, sinTable);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t s = 0; s < seq; ++s)
      for (int64_t h = 0; h < heads; ++h) {
        int64_t base = ((b * seq + s) * heads + h) * dim;
        for (int64_t i = 0; i < half; ++i) {
          double c = cosTable[s * half + i], sn = sinTable[s * half + i];
          double x0 = in[base + 2 * i], x1 = in[base + 2 * i + 1];
          if (!inverse) {
            out[base + 2 * i] = static_cast<T>(x0 * c - x1 * sn);
            out[base + 2 * i + 1] = static_cast<T>(x0 * sn + x1 * c);
          } else {
            out[base + 2 * i] += static_cast<T>(x0 * c + x1 * sn);
            out[base + 2 * i + 1] += static_cast<T>(x1 * c - x0 * sn);
          }
        }
      }
}

template <typename T>
void ropeForward(const T *x, const double *invFreq, T *y, int64_t batch,
                 int64_t seq, int64_t heads, int64_t dim) {
  rotate(x, invFreq, y, batch, seq, heads, dim, /*inverse=*/false);
}

template <typename T>
void ropeBackward(const T *dy, const double *invFreq, T *dx, int64_t batch,
                  int64_t seq, int64_t heads, int64_t dim) {
  rotate(dy, invFreq, dx, batch, seq, heads, dim, /*inverse=*/true);
}

#define DSFLOW_INSTANTIATE(T)                                                  \
  template void ropeForward(const T *, const double *, T *, int64_t, int64_t,  \
                            int64_t, int64_t);                                 \
  template void ropeBackward(const T *, const double *, T *, int64_t, int64_t, \
                             int64_t, int64_t);
DSFLOW_INSTANTIATE(float)
DSFLOW_INSTANTIATE(double)
#undef DSFLOW_INSTANTIATE

} // namespace dsflow::cpu
