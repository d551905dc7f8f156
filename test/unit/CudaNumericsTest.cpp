//===- CudaNumericsTest.cpp - The GPU's FP8 numerics against the CPU's ----===//
//
// compiler/Codegen/CudaNumerics.inc is the device code of the CUDA runtime's
// support functions (the FP8 recipe's quantization, BF16 rounding). Compiled
// here as host C++, it must agree bit for bit with the CPU backend: the E4M3
// encoding on every positive float (and its sign), the decoding of every
// code, the power-of-two scales, BF16 rounding, and whole 1x128 tiles
// quantized the way dsflow_rt_fake_quant_1x128_f32 does (its warp's max, the
// scale, each element) against cpu::fakeQuantizeFp8.
//
//===----------------------------------------------------------------------===//
#include "io/BFloat16.h"
#include "runtime/backends/cpu/Fp8.h"
#include "unit/CudaNumericsOnHost.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace dsflow {
namespace {

unsigned bitsOf(float f) { return __float_as_uint(f); }

TEST(CudaNumerics, E4M3EncodingOfEveryPositiveFloatAndItsNegative) {
  int64_t mismatches = 0;
  for (uint64_t b = 0; b <= 0x7FFFFFFFu; ++b) {
    float x = __uint_as_float(unsigned(b));
    mismatches += dsflow_rt::toE4M3(x) != cpu::floatToE4M3(x);
    if ((b & 0xFFF) == 0) // a sample of the negatives
      mismatches += dsflow_rt::toE4M3(-x) != cpu::floatToE4M3(-x);
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(CudaNumerics, E4M3DecodingOfEveryCode) {
  for (int c = 0; c < 256; ++c) {
    float gpu = dsflow_rt::fromE4M3((unsigned char)c);
    float cpu = cpu::e4m3ToFloat(uint8_t(c));
    if (std::isnan(cpu))
      EXPECT_TRUE(std::isnan(gpu)) << c;
    else
      EXPECT_EQ(bitsOf(gpu), bitsOf(cpu)) << c;
  }
}

TEST(CudaNumerics, PowerOfTwoScalesAndBf16Rounding) {
  int64_t mismatches = 0;
  for (uint64_t b = 0; b <= 0xFFFFFFFFu; b += 7) {
    float x = __uint_as_float(unsigned(b));
    if (!std::signbit(x)) {
      float gpu = dsflow_rt::ue8m0Ceil(x), cpu = cpu::ue8m0Ceil(x);
      mismatches +=
          std::isnan(cpu) ? !std::isnan(gpu) : bitsOf(gpu) != bitsOf(cpu);
    }
    mismatches +=
        (dsflow_rt::roundToBf16Bits(x) >> 16) != io::floatToBf16(x).bits;
  }
  EXPECT_EQ(mismatches, 0);
}

/// One 1x128 tile as the device function quantizes it.
void quantizeTile(const float *x, float *y, int n, bool ue8m0) {
  float amax = 0;
  for (int i = 0; i < n; ++i)
    amax = dsflow_rt::amaxOf(amax, x[i]);
  float scale = dsflow_rt::scaleOf(amax, ue8m0);
  for (int i = 0; i < n; ++i)
    y[i] = dsflow_rt::fakeQuantize(x[i], scale);
}

TEST(CudaNumerics, TilesQuantizedAsTheCpuBackendDoes) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0, 1);
  const int rows = 64, cols = 300; // a partial last tile
  std::vector<float> x(rows * cols);
  for (float &v : x)
    v = normal(rng) * std::exp(4 * normal(rng));       // wide magnitudes
  x[5] = 0, x[cols + 7] = 1e-30f, x[2 * cols] = 3e38f; // zero, tiny, huge
  for (int c = 0; c < 128; ++c)
    x[3 * cols + c] = 0; // an all-zero tile
  x[4 * cols + 9] = std::numeric_limits<float>::quiet_NaN();
  x[5 * cols + 200] = std::numeric_limits<float>::infinity();
  for (bool ue8m0 : {false, true}) {
    std::vector<float> cpu(x.size()), gpu(x.size());
    cpu::Fp8ScaleOptions options;
    options.ue8m0Scales = ue8m0;
    cpu::fakeQuantizeFp8(x.data(), cpu.data(), rows, cols,
                         cpu::Fp8Tiling::Tiles1x128, options);
    for (int r = 0; r < rows; ++r)
      for (int c0 = 0; c0 < cols; c0 += 128)
        quantizeTile(&x[r * cols + c0], &gpu[r * cols + c0],
                     std::min(128, cols - c0), ue8m0);
    int64_t mismatches = 0;
    for (size_t i = 0; i < x.size(); ++i)
      mismatches += std::isnan(cpu[i]) ? !std::isnan(gpu[i])
                                       : bitsOf(gpu[i]) != bitsOf(cpu[i]);
    EXPECT_EQ(mismatches, 0) << "ue8m0 " << ue8m0;
  }
}

} // namespace
} // namespace dsflow
