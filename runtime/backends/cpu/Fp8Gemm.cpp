//===- Fp8Gemm.cpp - GEMM on E4M3 operands with FP32 promotion ------------===//
//
// Emulates the accumulation of DeepSeek-V3's FP8 GEMMs (see Fp8.h,
// fp8GemmBlockScaled, for the exact definition). Correctness over speed: the
// loops are plain C++, tiled only so that the operands stay in cache.
//
// Why the chunk sums are exact: an E4M3 value is a multiple of 2^-9 below
// 2^9, so the product of two is a multiple of 2^-18 below 2^18, exact in
// FP32; a sum of up to 2^17 of them is a multiple of 2^-18 below 2^35, which
// fits double's 53 bits. The double partial sums below are therefore exact in
// any order, and float(sum) is the correctly rounded FP32 value. The
// truncating accumulator keeps multiples of 2^-18 too, so its additions are
// exact before each truncation.
//
// This file is compiled with -ffp-contract=off: the promotion step must not
// be fused into an FMA (the definition rounds the product).
//
//===----------------------------------------------------------------------===//
#include "runtime/backends/cpu/Fp8.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace dsflow::cpu {

static std::vector<float> decodeAll(const uint8_t *q, int64_t count) {
  std::vector<float> values(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i)
    values[size_t(i)] = e4m3ToFloat(q[i]);
  return values;
}

// Truncates x toward zero to `bits` mantissa bits after the leading one.
static double truncateMantissa(double x, int bits) {
  uint64_t raw;
  std::memcpy(&raw, &x, sizeof raw);
  raw &= ~((uint64_t(1) << (52 - bits)) - 1);
  std::memcpy(&x, &raw, sizeof raw);
  return x;
}

// The chunk sum P of a[0, len) . b[0, len), per Fp8GemmOptions.
static float chunkSum(const float *a, const float *b, int64_t len,
                      int accumulatorBits) {
  if (accumulatorBits == 0) {
    // Exact (see the file comment), so four partial sums change nothing.
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t k = 0;
    for (; k + 4 <= len; k += 4) {
      s0 += double(a[k] * b[k]);
      s1 += double(a[k + 1] * b[k + 1]);
      s2 += double(a[k + 2] * b[k + 2]);
      s3 += double(a[k + 3] * b[k + 3]);
    }
    for (; k < len; ++k)
      s0 += double(a[k] * b[k]);
    return float((s0 + s1) + (s2 + s3));
  }
  double sum = 0;
  for (int64_t k = 0; k < len; ++k)
    sum = truncateMantissa(sum + double(a[k] * b[k]), accumulatorBits);
  return float(sum); // Exact: at most 24 significant bits.
}

// y[i, j] = sum over chunks c of fl32(scale(i, j, c) * P_c), accumulated in
// FP32 in increasing c; chunks are `chunk` elements of K (the last partial).
template <typename ScaleFn>
static void promotedGemm(const uint8_t *qx, const uint8_t *qw, float *y,
                         int64_t m, int64_t n, int64_t k, int64_t chunk,
                         int accumulatorBits, ScaleFn scale) {
  std::vector<float> x = decodeAll(qx, m * k);
  std::vector<float> w = decodeAll(qw, n * k);
  std::fill(y, y + m * n, 0.0f);
  int64_t chunks = (k + chunk - 1) / chunk;
  const int64_t block = 32;
  for (int64_t i0 = 0; i0 < m; i0 += block) {
    int64_t i1 = std::min(m, i0 + block);
    for (int64_t j0 = 0; j0 < n; j0 += block) {
      int64_t j1 = std::min(n, j0 + block);
      for (int64_t c = 0; c < chunks; ++c) {
        int64_t k0 = c * chunk, len = std::min(k, k0 + chunk) - k0;
        for (int64_t i = i0; i < i1; ++i) {
          const float *xi = x.data() + i * k + k0;
          for (int64_t j = j0; j < j1; ++j) {
            float p = chunkSum(xi, w.data() + j * k + k0, len, accumulatorBits);
            float term = scale(i, j, c) * p;
            y[i * n + j] = y[i * n + j] + term;
          }
        }
      }
    }
  }
}

static bool validBits(int bits) { return bits >= 0 && bits <= 23; }

bool fp8GemmBlockScaled(const uint8_t *qx, const float *sx, const uint8_t *qw,
                        const float *sw, float *y, int64_t m, int64_t n,
                        int64_t k, const Fp8GemmOptions &options) {
  if (options.promoteEveryK != kFp8Tile || !validBits(options.accumulatorBits))
    return false;
  int64_t tiles = fp8Tiles(k);
  promotedGemm(qx, qw, y, m, n, k, kFp8Tile, options.accumulatorBits,
               [&](int64_t i, int64_t j, int64_t c) {
                 return sx[i * tiles + c] * sw[(j / kFp8Tile) * tiles + c];
               });
  return true;
}

bool fp8GemmPerTensor(const uint8_t *qx, float sx, const uint8_t *qw, float sw,
                      float *y, int64_t m, int64_t n, int64_t k,
                      const Fp8GemmOptions &options) {
  int64_t every = options.promoteEveryK;
  if (every < 0 || every % kFp8Tile != 0 || !validBits(options.accumulatorBits))
    return false;
  int64_t chunk = every == 0 ? std::max<int64_t>(k, 1) : every;
  float s = sx * sw;
  promotedGemm(qx, qw, y, m, n, k, chunk, options.accumulatorBits,
               [s](int64_t, int64_t, int64_t) { return s; });
  return true;
}

template <typename T>
void fp8LinearForward(const T *x, const T *w, T *y, int64_t m, int64_t n,
                      int64_t k, Fp8Scaling scaling,
                      const Fp8ScaleOptions &scaleOptions) {
  std::vector<uint8_t> qx(size_t(m * k)), qw(size_t(n * k));
  std::vector<float> out(size_t(m * n));
  bool ok;
  if (scaling == Fp8Scaling::FineGrained) {
    std::vector<float> sx(size_t(m * fp8Tiles(k)));
    std::vector<float> sw(size_t(fp8Tiles(n) * fp8Tiles(k)));
    quantizeFp8Tiles1x128(x, qx.data(), sx.data(), m, k, scaleOptions);
    quantizeFp8Blocks128x128(w, qw.data(), sw.data(), n, k, scaleOptions);
    ok = fp8GemmBlockScaled(qx.data(), sx.data(), qw.data(), sw.data(),
                            out.data(), m, n, k);
  } else {
    float sx, sw;
    quantizeFp8PerTensor(x, qx.data(), &sx, m * k, scaleOptions);
    quantizeFp8PerTensor(w, qw.data(), &sw, n * k, scaleOptions);
    ok = fp8GemmPerTensor(qx.data(), sx, qw.data(), sw, out.data(), m, n, k);
  }
  (void)ok; // Default options are always accepted.
  for (int64_t i = 0; i < m * n; ++i)
    y[i] = T(out[size_t(i)]);
}

template void fp8LinearForward<float>(const float *, const float *, float *,
                                      int64_t, int64_t, int64_t, Fp8Scaling,
                                      const Fp8ScaleOptions &);
template void fp8LinearForward<double>(const double *, const double *, double *,
                                       int64_t, int64_t, int64_t, Fp8Scaling,
                                       const Fp8ScaleOptions &);

} // namespace dsflow::cpu
