//===- Fp8CudaOracleTest.cpp - CPU FP8 conversions vs CUDA's cuda_fp8.h ---===//
//
// CUDA's cuda_fp8.h carries host implementations of its conversions (plain
// C++, compiled here by the host compiler; no CUDA library is linked). They
// are the oracle for the CPU backend's E4M3 and UE8M0 rounding, compared bit
// for bit: E4M3 over all 2^32 float bit patterns (about 11 s on one core),
// UE8M0 over every non-negative float. Built with the header only when
// CMake finds it (DSFLOW_HAVE_CUDA_FP8); otherwise the suite skips.
//
//===----------------------------------------------------------------------===//
#include "runtime/backends/cpu/Fp8.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>

#ifdef DSFLOW_HAVE_CUDA_FP8
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#endif

namespace dsflow::cpu {
namespace {

#ifdef DSFLOW_HAVE_CUDA_FP8

static double bitsToDouble(uint64_t bits) {
  double x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}

static uint8_t cudaE4M3(float x) {
  return __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3);
}

// Every float with the given sign bit (2^31 patterns: zeros, subnormals,
// the whole E4M3 range and beyond, infinities, every NaN payload).
static void sweepE4M3(uint32_t sign) {
  uint64_t mismatches = 0;
  uint32_t first = 0;
  for (uint64_t low = 0; low < (uint64_t(1) << 31); ++low) {
    uint32_t bits = sign | uint32_t(low);
    float x = floatFromBits(bits);
    if (floatToE4M3(x) != cudaE4M3(x)) {
      if (mismatches++ == 0)
        first = bits;
    }
  }
  EXPECT_EQ(mismatches, 0u)
      << "first mismatch at float bits 0x" << std::hex << first << ": cpu 0x"
      << int(floatToE4M3(floatFromBits(first))) << ", cuda 0x"
      << int(cudaE4M3(floatFromBits(first)));
}

TEST(Fp8CudaOracle, FloatToE4M3EveryPositiveFloat) { sweepE4M3(0u); }

TEST(Fp8CudaOracle, FloatToE4M3EveryNegativeFloat) { sweepE4M3(0x80000000u); }

TEST(Fp8CudaOracle, DoubleToE4M3) {
  // Random doubles over the E4M3 range and past it, plus every E4M3 value
  // and every midpoint between neighbours, each nudged by -2..+2 ulps of
  // double (where rounding once from double differs from going via float).
  std::vector<double> xs;
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> exponent(-14, 10);
  std::uniform_int_distribution<uint64_t> mantissa(0, (uint64_t(1) << 52) - 1);
  for (int i = 0; i < 2000000; ++i) {
    uint64_t bits = (uint64_t(exponent(rng) + 1023) << 52) | mantissa(rng);
    xs.push_back(bitsToDouble(bits));
  }
  std::vector<double> anchors;
  for (int c = 0; c < 0x7F; ++c) {
    double v = e4m3ToFloat(uint8_t(c));
    double next = c + 1 < 0x7F ? double(e4m3ToFloat(uint8_t(c + 1))) : 480.0;
    anchors.push_back(v);
    anchors.push_back((v + next) / 2);
  }
  for (double a : anchors) {
    for (int d = -2; d <= 2; ++d) {
      uint64_t bits;
      std::memcpy(&bits, &a, sizeof bits);
      if (a == 0 && d < 0)
        continue;
      xs.push_back(bitsToDouble(bits + uint64_t(int64_t(d))));
    }
  }
  xs.push_back(INFINITY);
  xs.push_back(1e300);
  xs.push_back(5e-324);
  int64_t mismatches = 0;
  for (double x : xs) {
    for (double v : {x, -x}) {
      uint8_t cpu = doubleToE4M3(v);
      uint8_t cuda = __nv_cvt_double_to_fp8(v, __NV_SATFINITE, __NV_E4M3);
      if (cpu != cuda && mismatches++ < 5)
        ADD_FAILURE() << "x = " << v << ": cpu 0x" << std::hex << int(cpu)
                      << ", cuda 0x" << int(cuda);
    }
  }
  EXPECT_EQ(mismatches, 0);
  // NaN: CUDA's double path keeps the sign (0xFF); the CPU backend always
  // writes the canonical 0x7F, as CUDA's float path does.
  EXPECT_EQ(doubleToE4M3(-NAN), kE4M3NaN);
  EXPECT_EQ(__nv_cvt_double_to_fp8(-NAN, __NV_SATFINITE, __NV_E4M3) & 0x7F,
            kE4M3NaN);
}

TEST(Fp8CudaOracle, E4M3ToFloatAllCodes) {
  for (int c = 0; c < 256; ++c) {
    __half h = __half(__nv_cvt_fp8_to_halfraw(uint8_t(c), __NV_E4M3));
    float cuda = __half2float(h);
    float cpu = e4m3ToFloat(uint8_t(c));
    if (std::isnan(cuda)) {
      EXPECT_TRUE(std::isnan(cpu)) << "code 0x" << std::hex << c;
      continue;
    }
    uint32_t a, b;
    std::memcpy(&a, &cpu, sizeof a);
    std::memcpy(&b, &cuda, sizeof b);
    EXPECT_EQ(a, b) << "code 0x" << std::hex << c << ": cpu " << cpu
                    << ", cuda " << cuda;
  }
}

// Every non-negative float (scales are positive; this covers zero,
// subnormals, every exponent, inf and NaN), and negative floats with a
// stride (CUDA rounds the magnitude up, as the CPU helper does). CUDA's
// host code for this conversion is slow: the full 2^32 sweep took 18 s.
TEST(Fp8CudaOracle, FloatToUe8m0CeilEveryNonNegativeFloat) {
  uint64_t mismatches = 0;
  uint32_t first = 0;
  auto check = [&](uint32_t bits) {
    float x = floatFromBits(bits);
    uint8_t cuda = __nv_cvt_float_to_e8m0(x, __NV_SATFINITE, cudaRoundPosInf);
    if (floatToUe8m0Ceil(x) != cuda && mismatches++ == 0)
      first = bits;
  };
  for (uint64_t bits = 0; bits < (uint64_t(1) << 31); ++bits)
    check(uint32_t(bits));
  for (uint64_t bits = 0; bits < (uint64_t(1) << 31); bits += 251)
    check(0x80000000u | uint32_t(bits));
  EXPECT_EQ(mismatches, 0u)
      << "first mismatch at float bits 0x" << std::hex << first;
}

#else // !DSFLOW_HAVE_CUDA_FP8

TEST(Fp8CudaOracle, SkippedWithoutCudaHeaders) {
  GTEST_SKIP() << "cuda_fp8.h was not found at configure time; the CPU FP8 "
                  "conversions were not compared with CUDA's";
}

#endif

} // namespace
} // namespace dsflow::cpu
