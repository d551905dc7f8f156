//===- Fp8.cpp - E4M3/UE8M0 conversions and FP8 quantization --------------===//
#include "runtime/backends/cpu/Fp8.h"
#include "runtime/backends/cpu/Parallel.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace dsflow::cpu {

//===----------------------------------------------------------------------===//
// Conversions
//===----------------------------------------------------------------------===//

// Rounds `value >> shift` to nearest, ties to even (0 < shift < 64).
static uint64_t shiftRightRne(uint64_t value, unsigned shift) {
  uint64_t kept = value >> shift;
  uint64_t rest = value & ((uint64_t(1) << shift) - 1);
  uint64_t half = uint64_t(1) << (shift - 1);
  if (rest > half || (rest == half && (kept & 1)))
    ++kept;
  return kept;
}

uint8_t doubleToE4M3(double x) {
  uint64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  uint8_t sign = uint8_t((bits >> 56) & 0x80);
  uint64_t abs = bits & 0x7FFFFFFFFFFFFFFFull;
  const uint64_t inf = 0x7FF0000000000000ull;
  if (abs > inf)
    return kE4M3NaN; // NaN, sign discarded (CUDA canonicalizes it).
  // Everything at or above 448 saturates (SATFINITE), +-inf included: values
  // in (448, 464] would round to 448 anyway and 464 ties to 448 (even).
  if (std::fabs(x) >= kE4M3Max)
    return uint8_t(sign | kE4M3MaxCode);
  int exponent = int(abs >> 52) - 1023; // Unbiased; -1023 for subnormals.
  uint64_t significand = (abs & 0x000FFFFFFFFFFFFFull) | (uint64_t(1) << 52);
  if (exponent >= -6) {
    // Normal E4M3: keep 3 of the 52 mantissa bits. A carry out of the
    // mantissa moves to the next exponent, which the addition below does.
    uint64_t mantissa = shiftRightRne(significand, 49); // In [8, 16].
    return uint8_t(sign | (((exponent + 7) << 3) + int(mantissa) - 8));
  }
  // Subnormal E4M3: count units of 2^-9. x = significand * 2^(exponent-52),
  // so the count is significand >> (43 - exponent). Below 2^-11 the count
  // rounds to zero (the halfway point 2^-10 is itself exact and ties to 0).
  if (exponent < -11)
    return sign;
  // Rounding up from 7 units gives code 8, the smallest normal: correct.
  return uint8_t(sign | shiftRightRne(significand, unsigned(43 - exponent)));
}

uint8_t floatToE4M3(float x) {
  // doubleToE4M3's steps on the float's own bits (the FP8 emulation's hot
  // path); Fp8CudaOracleTest checks every float against cuda_fp8.h.
  uint32_t bits = floatBits(x);
  uint8_t sign = uint8_t((bits >> 24) & 0x80);
  uint32_t abs = bits & 0x7FFFFFFFu;
  if (abs > 0x7F800000u)
    return kE4M3NaN;
  if (std::fabs(x) >= kE4M3Max)
    return uint8_t(sign | kE4M3MaxCode);
  int exponent = int(abs >> 23) - 127; // -127 for subnormals (round to 0).
  uint64_t significand = (abs & 0x7FFFFFu) | (1u << 23);
  if (exponent >= -6) {
    uint64_t mantissa = shiftRightRne(significand, 20); // In [8, 16].
    return uint8_t(sign | (((exponent + 7) << 3) + int(mantissa) - 8));
  }
  if (exponent < -11)
    return sign;
  return uint8_t(sign | shiftRightRne(significand, unsigned(14 - exponent)));
}

static float decodeE4M3(uint8_t code) {
  int exponent = (code >> 3) & 0xF;
  int mantissa = code & 0x7;
  if (exponent == 0xF && mantissa == 0x7)
    return std::numeric_limits<float>::quiet_NaN();
  float magnitude = exponent == 0
                        ? std::ldexp(float(mantissa), -9)
                        : std::ldexp(float(8 + mantissa), exponent - 10);
  return (code & 0x80) ? -magnitude : magnitude;
}

namespace {
struct E4M3Table {
  float values[256];
  E4M3Table() {
    for (int c = 0; c < 256; ++c)
      values[c] = decodeE4M3(uint8_t(c));
  }
};
} // namespace

static const E4M3Table &e4m3Table() {
  static const E4M3Table table;
  return table;
}

float e4m3ToFloat(uint8_t code) { return e4m3Table().values[code]; }

uint8_t floatToUe8m0Ceil(float s) {
  uint32_t abs = floatBits(s) & 0x7FFFFFFFu;
  if (abs > 0x7F800000u)
    return 0xFF; // NaN.
  if (abs >= 0x7F000000u)
    return 0xFE; // >= 2^127 (inf included) saturates to 2^127.
  uint32_t exponent = abs >> 23;
  uint32_t mantissa = abs & 0x7FFFFFu;
  if (exponent == 0)
    // Zero and subnormals: 2^-127 (code 0) if |s| <= 2^-127, else 2^-126.
    return abs > 0x00400000u ? 1 : 0;
  return uint8_t(exponent + (mantissa != 0 ? 1 : 0));
}

float ue8m0ToFloat(uint8_t code) {
  if (code == 0xFF)
    return std::numeric_limits<float>::quiet_NaN();
  return std::ldexp(1.0f, int(code) - 127);
}

float ue8m0Ceil(float s) { return ue8m0ToFloat(floatToUe8m0Ceil(s)); }

//===----------------------------------------------------------------------===//
// Quantization
//===----------------------------------------------------------------------===//

float fp8ScaleFromAmax(double amax, const Fp8ScaleOptions &options) {
  // max() would drop a NaN amax; keep it so that the fault shows.
  double bounded =
      amax < double(options.amaxFloor) ? double(options.amaxFloor) : amax;
  float scale = float(bounded / kE4M3Max);
  if (!std::isfinite(scale))
    return scale; // inf or NaN: left so (rounding it to 2^127 would hide it).
  if (options.ue8m0Scales)
    scale = ue8m0Ceil(scale);
  if (scale == 0.0f)
    scale = 1.0f;
  return scale;
}

template <typename T> static double absMax(double amax, T x) {
  double a = std::fabs(double(x));
  // NaN wins, so that a NaN element poisons its group's scale.
  return (a > amax || std::isnan(a)) ? a : amax;
}

// The quotient is rounded in T (FP32 division for float, as a GPU kernel
// computes it), then converted once.
static uint8_t encode(float x, float scale) { return floatToE4M3(x / scale); }
static uint8_t encode(double x, float scale) {
  return doubleToE4M3(x / double(scale));
}

template <typename T>
void quantizeFp8Tiles1x128(const T *x, uint8_t *q, float *scales, int64_t rows,
                           int64_t cols, const Fp8ScaleOptions &options) {
  int64_t tiles = fp8Tiles(cols);
  for (int64_t r = 0; r < rows; ++r) {
    const T *xr = x + r * cols;
    uint8_t *qr = q + r * cols;
    for (int64_t t = 0; t < tiles; ++t) {
      int64_t begin = t * kFp8Tile, end = std::min(cols, begin + kFp8Tile);
      double amax = 0;
      for (int64_t c = begin; c < end; ++c)
        amax = absMax(amax, xr[c]);
      float scale = fp8ScaleFromAmax(amax, options);
      scales[r * tiles + t] = scale;
      for (int64_t c = begin; c < end; ++c)
        qr[c] = encode(xr[c], scale);
    }
  }
}

template <typename T>
void dequantizeFp8Tiles1x128(const uint8_t *q, const float *scales, T *x,
                             int64_t rows, int64_t cols) {
  int64_t tiles = fp8Tiles(cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      x[r * cols + c] = T(double(e4m3ToFloat(q[r * cols + c])) *
                          double(scales[r * tiles + c / kFp8Tile]));
}

template <typename T>
void quantizeFp8Tiles128x1(const T *x, uint8_t *q, float *scales, int64_t rows,
                           int64_t cols, const Fp8ScaleOptions &options) {
  std::vector<double> amax(cols);
  for (int64_t t = 0; t < fp8Tiles(rows); ++t) {
    int64_t begin = t * kFp8Tile, end = std::min(rows, begin + kFp8Tile);
    // Row by row, so that the tile's columns are read in memory order.
    std::fill(amax.begin(), amax.end(), 0.0);
    for (int64_t r = begin; r < end; ++r)
      for (int64_t c = 0; c < cols; ++c)
        amax[c] = absMax(amax[c], x[r * cols + c]);
    float *tileScales = scales + t * cols;
    for (int64_t c = 0; c < cols; ++c)
      tileScales[c] = fp8ScaleFromAmax(amax[c], options);
    for (int64_t r = begin; r < end; ++r)
      for (int64_t c = 0; c < cols; ++c)
        q[r * cols + c] = encode(x[r * cols + c], tileScales[c]);
  }
}

template <typename T>
void dequantizeFp8Tiles128x1(const uint8_t *q, const float *scales, T *x,
                             int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      x[r * cols + c] = T(double(e4m3ToFloat(q[r * cols + c])) *
                          double(scales[(r / kFp8Tile) * cols + c]));
}

template <typename T>
void quantizeFp8Blocks128x128(const T *w, uint8_t *q, float *scales,
                              int64_t rows, int64_t cols,
                              const Fp8ScaleOptions &options) {
  int64_t rowBlocks = fp8Tiles(rows), colBlocks = fp8Tiles(cols);
  for (int64_t br = 0; br < rowBlocks; ++br) {
    int64_t r0 = br * kFp8Tile, r1 = std::min(rows, r0 + kFp8Tile);
    for (int64_t bc = 0; bc < colBlocks; ++bc) {
      int64_t c0 = bc * kFp8Tile, c1 = std::min(cols, c0 + kFp8Tile);
      double amax = 0;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c)
          amax = absMax(amax, w[r * cols + c]);
      float scale = fp8ScaleFromAmax(amax, options);
      scales[br * colBlocks + bc] = scale;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c)
          q[r * cols + c] = encode(w[r * cols + c], scale);
    }
  }
}

template <typename T>
void dequantizeFp8Blocks128x128(const uint8_t *q, const float *scales, T *w,
                                int64_t rows, int64_t cols) {
  int64_t colBlocks = fp8Tiles(cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      w[r * cols + c] =
          T(double(e4m3ToFloat(q[r * cols + c])) *
            double(scales[(r / kFp8Tile) * colBlocks + c / kFp8Tile]));
}

template <typename T>
void quantizeFp8PerTensor(const T *x, uint8_t *q, float *scale, int64_t count,
                          const Fp8ScaleOptions &options) {
  double amax = 0;
  for (int64_t i = 0; i < count; ++i)
    amax = absMax(amax, x[i]);
  float s = fp8ScaleFromAmax(amax, options);
  *scale = s;
  for (int64_t i = 0; i < count; ++i)
    q[i] = encode(x[i], s);
}

template <typename T>
void dequantizeFp8PerTensor(const uint8_t *q, float scale, T *x,
                            int64_t count) {
  for (int64_t i = 0; i < count; ++i)
    x[i] = T(double(e4m3ToFloat(q[i])) * double(scale));
}

// One element through E4M3 and back under `scale`: what dequantize(quantize)
// gives, in one step. For float the product of a code's value (at most 4
// significant bits) and the scale is exact in double, so rounding it to float
// is the float product: the same bits as the two-pass functions above.
static float fakeQuantizeValue(float x, float scale) {
  return e4m3RoundTrip(x / scale) * scale;
}
static double fakeQuantizeValue(double x, float scale) {
  return double(e4m3ToFloat(doubleToE4M3(x / double(scale)))) * double(scale);
}

// The max-abs of a group, grown element by element: larger(m, x) is m or
// |x|, whichever is larger, a NaN winning (so that it poisons the group's
// scale). |x| is exact, so the max is the double one. For float it is taken
// on the magnitudes' bits, which order as the values do with NaN above inf:
// integer max, which a loop vectorizes.
struct AbsMax {
  static uint32_t magnitude(float x) { return floatBits(x) & 0x7FFFFFFFu; }
  static float larger(float m, float x) {
    return floatFromBits(std::max(magnitude(m), magnitude(x)));
  }
  static double larger(double m, double x) { return absMax(m, x); }
  /// larger() over x[0, n) from m.
  static float over(const float *x, int64_t n, float m) {
    uint32_t bits = magnitude(m);
    for (int64_t i = 0; i < n; ++i)
      bits = std::max(bits, magnitude(x[i]));
    return floatFromBits(bits);
  }
  static double over(const double *x, int64_t n, double m) {
    for (int64_t i = 0; i < n; ++i)
      m = absMax(m, x[i]);
    return m;
  }
};

// Quantizes rows [r0, r1) of x ([rows, cols]) into y, tile by tile: each
// group's max-abs and scale, then its elements (so y may be x). r0 is a
// multiple of 128, so that weight blocks never straddle two calls.
template <typename T>
__attribute__((always_inline)) inline void
fakeQuantizeRows(const T *x, T *y, int64_t r0, int64_t r1, int64_t cols,
                 Fp8Tiling tiling, const Fp8ScaleOptions &options) {
  auto quantizeGroup = [&](int64_t rBegin, int64_t rEnd, int64_t cBegin,
                           int64_t cEnd) {
    T amax = 0;
    for (int64_t r = rBegin; r < rEnd; ++r)
      amax = AbsMax::over(x + r * cols + cBegin, cEnd - cBegin, amax);
    float scale = fp8ScaleFromAmax(double(amax), options);
    for (int64_t r = rBegin; r < rEnd; ++r)
      for (int64_t c = cBegin; c < cEnd; ++c)
        y[r * cols + c] = T(fakeQuantizeValue(x[r * cols + c], scale));
  };
  if (tiling == Fp8Tiling::Tiles1x128) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t c = 0; c < cols; c += kFp8Tile)
        quantizeGroup(r, r + 1, c, std::min(cols, c + kFp8Tile));
    return;
  }
  if (tiling == Fp8Tiling::Blocks128x128) {
    for (int64_t c = 0; c < cols; c += kFp8Tile)
      quantizeGroup(r0, r1, c, std::min(cols, c + kFp8Tile));
    return;
  }
  // 128x1: a scale per column of the band; the rows read in memory order.
  std::vector<T> amax(size_t(cols), T(0));
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t c = 0; c < cols; ++c)
      amax[size_t(c)] = AbsMax::larger(amax[size_t(c)], x[r * cols + c]);
  std::vector<float> scales(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c)
    scales[size_t(c)] = fp8ScaleFromAmax(double(amax[size_t(c)]), options);
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t c = 0; c < cols; ++c)
      y[r * cols + c] =
          T(fakeQuantizeValue(x[r * cols + c], scales[size_t(c)]));
}

// The float bands are compiled for AVX2 too (twice as wide as the baseline's
// SSE2) and the loader picks the version the CPU runs; the same bits either
// way (no fused multiply-adds: AVX2 does not imply FMA).
#if defined(__x86_64__) && defined(__GNUC__)
#define DSFLOW_ALSO_FOR_AVX2 __attribute__((target_clones("avx2", "default")))
#else
#define DSFLOW_ALSO_FOR_AVX2
#endif
DSFLOW_ALSO_FOR_AVX2 static void
fakeQuantizeBand(const float *x, float *y, int64_t r0, int64_t r1, int64_t cols,
                 Fp8Tiling tiling, const Fp8ScaleOptions &options) {
  fakeQuantizeRows(x, y, r0, r1, cols, tiling, options);
}
static void fakeQuantizeBand(const double *x, double *y, int64_t r0, int64_t r1,
                             int64_t cols, Fp8Tiling tiling,
                             const Fp8ScaleOptions &options) {
  fakeQuantizeRows(x, y, r0, r1, cols, tiling, options);
}

// Every 128-row band is independent (tiles and blocks never cross one), so the
// bands run in parallel.
template <typename T>
void fakeQuantizeFp8(const T *x, T *y, int64_t rows, int64_t cols,
                     Fp8Tiling tiling, const Fp8ScaleOptions &options) {
  parallelFor(fp8Tiles(rows), [&](int64_t band) {
    int64_t r0 = band * kFp8Tile;
    fakeQuantizeBand(x, y, r0, std::min(rows, r0 + kFp8Tile), cols, tiling,
                     options);
  });
}

const char *toString(Fp8DataStatus status) {
  switch (status) {
  case Fp8DataStatus::Ok:
    return "ok";
  case Fp8DataStatus::NanCode:
    return "FP8 data holds a NaN code";
  case Fp8DataStatus::BadScale:
    return "FP8 scale is not a positive finite number";
  }
  return "unknown FP8 data status";
}

Fp8DataStatus checkFp8Data(const uint8_t *q, int64_t count, const float *scales,
                           int64_t scaleCount) {
  for (int64_t i = 0; i < scaleCount; ++i)
    if (!(scales[i] > 0.0f) || !std::isfinite(scales[i]))
      return Fp8DataStatus::BadScale;
  for (int64_t i = 0; i < count; ++i)
    if ((q[i] & 0x7F) == kE4M3NaN)
      return Fp8DataStatus::NanCode;
  return Fp8DataStatus::Ok;
}

#define DSFLOW_INSTANTIATE_FP8(T)                                              \
  template void quantizeFp8Tiles1x128<T>(const T *, uint8_t *, float *,        \
                                         int64_t, int64_t,                     \
                                         const Fp8ScaleOptions &);             \
  template void dequantizeFp8Tiles1x128<T>(const uint8_t *, const float *,     \
                                           T *, int64_t, int64_t);             \
  template void quantizeFp8Tiles128x1<T>(const T *, uint8_t *, float *,        \
                                         int64_t, int64_t,                     \
                                         const Fp8ScaleOptions &);             \
  template void dequantizeFp8Tiles128x1<T>(const uint8_t *, const float *,     \
                                           T *, int64_t, int64_t);             \
  template void quantizeFp8Blocks128x128<T>(const T *, uint8_t *, float *,     \
                                            int64_t, int64_t,                  \
                                            const Fp8ScaleOptions &);          \
  template void dequantizeFp8Blocks128x128<T>(const uint8_t *, const float *,  \
                                              T *, int64_t, int64_t);          \
  template void quantizeFp8PerTensor<T>(const T *, uint8_t *, float *,         \
                                        int64_t, const Fp8ScaleOptions &);     \
  template void dequantizeFp8PerTensor<T>(const uint8_t *, float, T *,         \
                                          int64_t);                            \
  template void fakeQuantizeFp8<T>(const T *, T *, int64_t, int64_t,           \
                                   Fp8Tiling, const Fp8ScaleOptions &);
DSFLOW_INSTANTIATE_FP8(float)
DSFLOW_INSTANTIATE_FP8(double)
#undef DSFLOW_INSTANTIATE_FP8

} // namespace dsflow::cpu
