//===- Fp8GemmTest.cpp - The FP8 GEMM with FP32 promotion -----------------===//
//
// fp8GemmBlockScaled / fp8GemmPerTensor against a double-precision GEMM of
// the dequantized operands (the emulation's own error is FP32 rounding), the
// accumulator model on hand-computed cases, and fp8LinearForward against the
// unquantized GEMM (the quantization error: small and bounded).
//
//===----------------------------------------------------------------------===//
#include "runtime/backends/cpu/Fp8.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace dsflow::cpu {
namespace {

static std::vector<float> randomFloats(size_t n, uint32_t seed,
                                       double scale = 1.0) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> dist(0.0, scale);
  std::vector<float> v(n);
  for (float &x : v)
    x = float(dist(rng));
  return v;
}

// y = x W^T in double.
template <typename T>
static std::vector<double>
referenceGemm(const std::vector<T> &x, const std::vector<T> &w, int64_t m,
              int64_t n, int64_t k, std::vector<double> *absSum = nullptr) {
  std::vector<double> y(size_t(m * n));
  if (absSum)
    absSum->assign(size_t(m * n), 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0, abs = 0;
      for (int64_t l = 0; l < k; ++l) {
        double p = double(x[i * k + l]) * double(w[j * k + l]);
        sum += p;
        abs += std::fabs(p);
      }
      y[i * n + j] = sum;
      if (absSum)
        (*absSum)[i * n + j] = abs;
    }
  return y;
}

template <typename A, typename B>
static double relativeFrobenius(const std::vector<A> &y,
                                const std::vector<B> &ref) {
  double err = 0, norm = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    double d = double(y[i]) - double(ref[i]);
    err += d * d;
    norm += double(ref[i]) * double(ref[i]);
  }
  return std::sqrt(err / norm);
}

struct Shape {
  int64_t m, n, k;
};

class Fp8GemmShapes : public ::testing::TestWithParam<Shape> {};

// The emulation against exact arithmetic on the same quantized operands:
// all that differs is the FP32 rounding of the chunk sums, the scale
// products and the promotion adds, a few units of 2^-24 relative to the
// sum of |products|.
TEST_P(Fp8GemmShapes, BlockScaledMatchesDoubleGemmOfDequantized) {
  Shape s = GetParam();
  std::vector<float> x = randomFloats(size_t(s.m * s.k), 11);
  std::vector<float> w = randomFloats(size_t(s.n * s.k), 12, 0.05);
  for (int64_t i = 0; i < s.m; ++i)
    x[i * s.k + 7] *= 100.0f; // An outlier channel.
  int64_t kt = fp8Tiles(s.k);
  std::vector<uint8_t> qx(x.size()), qw(w.size());
  std::vector<float> sx(size_t(s.m * kt)), sw(size_t(fp8Tiles(s.n) * kt));
  quantizeFp8Tiles1x128(x.data(), qx.data(), sx.data(), s.m, s.k, {});
  quantizeFp8Blocks128x128(w.data(), qw.data(), sw.data(), s.n, s.k, {});
  std::vector<double> xd(x.size()), wd(w.size());
  dequantizeFp8Tiles1x128(qx.data(), sx.data(), xd.data(), s.m, s.k);
  dequantizeFp8Blocks128x128(qw.data(), sw.data(), wd.data(), s.n, s.k);
  std::vector<double> absSum;
  std::vector<double> ref = referenceGemm(xd, wd, s.m, s.n, s.k, &absSum);

  std::vector<float> y(size_t(s.m * s.n), -1.0f);
  ASSERT_TRUE(fp8GemmBlockScaled(qx.data(), sx.data(), qw.data(), sw.data(),
                                 y.data(), s.m, s.n, s.k));
  // Per element: chunk sum (1 rounding), scale product (1), product (1) and
  // promotion add (1 per chunk): (3 + chunks) * 2^-24 * sum|products|.
  double bound = double(3 + kt) * std::ldexp(1.0, -24);
  for (size_t i = 0; i < y.size(); ++i)
    ASSERT_LE(std::fabs(double(y[i]) - ref[i]), bound * absSum[i])
        << "element " << i << ": " << y[i] << " vs " << ref[i];
  EXPECT_LT(relativeFrobenius(y, ref), 1e-6);
}

// Per-tensor scaling on the same data, same contract.
TEST_P(Fp8GemmShapes, PerTensorMatchesDoubleGemmOfDequantized) {
  Shape s = GetParam();
  std::vector<float> x = randomFloats(size_t(s.m * s.k), 13);
  std::vector<float> w = randomFloats(size_t(s.n * s.k), 14, 0.05);
  std::vector<uint8_t> qx(x.size()), qw(w.size());
  float sx, sw;
  quantizeFp8PerTensor(x.data(), qx.data(), &sx, s.m * s.k, {});
  quantizeFp8PerTensor(w.data(), qw.data(), &sw, s.n * s.k, {});
  std::vector<double> xd(x.size()), wd(w.size());
  dequantizeFp8PerTensor(qx.data(), sx, xd.data(), s.m * s.k);
  dequantizeFp8PerTensor(qw.data(), sw, wd.data(), s.n * s.k);
  std::vector<double> absSum;
  std::vector<double> ref = referenceGemm(xd, wd, s.m, s.n, s.k, &absSum);
  std::vector<float> y(size_t(s.m * s.n));
  ASSERT_TRUE(
      fp8GemmPerTensor(qx.data(), sx, qw.data(), sw, y.data(), s.m, s.n, s.k));
  double bound = double(3 + fp8Tiles(s.k)) * std::ldexp(1.0, -24);
  for (size_t i = 0; i < y.size(); ++i)
    ASSERT_LE(std::fabs(double(y[i]) - ref[i]), bound * absSum[i]) << i;
  EXPECT_LT(relativeFrobenius(y, ref), 1e-6);
}

INSTANTIATE_TEST_SUITE_P(Shapes, Fp8GemmShapes,
                         ::testing::Values(Shape{5, 130, 300},
                                           Shape{17, 256, 384}, Shape{1, 1, 1},
                                           Shape{3, 129, 128},
                                           Shape{33, 64, 1000}),
                         [](const ::testing::TestParamInfo<Shape> &info) {
                           return "m" + std::to_string(info.param.m) + "n" +
                                  std::to_string(info.param.n) + "k" +
                                  std::to_string(info.param.k);
                         });

// Exact case: ones everywhere, power-of-two scales (1/448 rounds up to
// 2^-8, so every code is exactly 256): y = k with no rounding at all.
TEST(Fp8Gemm, OnesAreExact) {
  const int64_t m = 3, n = 200, k = 300;
  std::vector<float> x(size_t(m * k), 1.0f), w(size_t(n * k), 1.0f);
  std::vector<float> y(size_t(m * n));
  Fp8ScaleOptions options;
  options.ue8m0Scales = true;
  fp8LinearForward(x.data(), w.data(), y.data(), m, n, k,
                   Fp8Scaling::FineGrained, options);
  for (float v : y)
    ASSERT_EQ(v, 300.0f);
  fp8LinearForward(x.data(), w.data(), y.data(), m, n, k, Fp8Scaling::PerTensor,
                   options);
  for (float v : y)
    ASSERT_EQ(v, 300.0f);
}

// The promotion: scales of each chunk apply to that chunk's sum only.
TEST(Fp8Gemm, EachChunkUsesItsOwnScales) {
  const int64_t k = 256;
  std::vector<uint8_t> qx(k, 0x38), qw(k, 0x38); // All codes 1.0.
  float sx[2] = {2.0f, 0.5f}, sw[2] = {3.0f, 0.25f};
  float y = 0;
  ASSERT_TRUE(fp8GemmBlockScaled(qx.data(), sx, qw.data(), sw, &y, 1, 1, k));
  EXPECT_EQ(y, 128 * 6.0f + 128 * 0.125f);
}

// Chunk sums are exact before their one rounding to FP32: 448^2 + 2^-18 -
// 448^2 is 2^-18, where a running FP32 sum would lose the middle term.
TEST(Fp8Gemm, ChunkSumIsExact) {
  std::vector<uint8_t> qx = {0x7E, 0x01, 0x7E}, qw = {0x7E, 0x01, 0xFE};
  float one = 1.0f, y = -1.0f;
  ASSERT_TRUE(
      fp8GemmBlockScaled(qx.data(), &one, qw.data(), &one, &y, 1, 1, 3));
  EXPECT_EQ(y, 0x1p-18f);
  ASSERT_TRUE(fp8GemmPerTensor(qx.data(), 1.0f, qw.data(), 1.0f, &y, 1, 1, 3));
  EXPECT_EQ(y, 0x1p-18f);
}

// The FP32 accumulator rounds at each promotion: 2^24 + 1 + 1 stays 2^24
// (each +1 is a tie to even), where a wider accumulator would give 2^24 + 2.
TEST(Fp8Gemm, PromotionRoundsToFp32EachStep) {
  const int64_t k = 3 * 128;
  std::vector<uint8_t> qx(k, 0x00), qw(k, 0x00);
  for (int64_t c = 0; c < 3; ++c)
    qx[c * 128] = qw[c * 128] = 0x38; // One product 1 * 1 per chunk.
  float sx[3] = {4096.0f, 1.0f, 1.0f}, sw[3] = {4096.0f, 1.0f, 1.0f};
  float y = 0;
  ASSERT_TRUE(fp8GemmBlockScaled(qx.data(), sx, qw.data(), sw, &y, 1, 1, k));
  EXPECT_EQ(y, 16777216.0f);
}

// The two scales are multiplied in FP32 before they scale the chunk sum:
// (1 + 2^-12)^2 rounds to 1 + 2^-11 (a tie), and 3 (1 + 2^-11) is exact;
// without that rounding the result would be 3 (1 + 2^-11) + 2^-22.
TEST(Fp8Gemm, ScaleProductRoundsToFp32) {
  std::vector<uint8_t> qx(128, 0x00), qw(128, 0x00);
  for (int i = 0; i < 3; ++i)
    qx[i] = qw[i] = 0x38; // P = 3.
  float sx = 1.0f + 0x1p-12f, sw = 1.0f + 0x1p-12f;
  float y = 0;
  ASSERT_TRUE(
      fp8GemmBlockScaled(qx.data(), &sx, qw.data(), &sw, &y, 1, 1, 128));
  EXPECT_EQ(y, 3.0f + 0x3p-11f);
}

// The scaled chunk sum is rounded to FP32 before it is added: chunk 0 gives
// -3, chunk 1 gives fl32(3 (1 + 2^-23)) = 3 + 2^-21 (1.5 ulps, a tie to
// even), so y = 2^-21; an unrounded (fused) term would give 3 * 2^-23.
TEST(Fp8Gemm, ScaledTermRoundsToFp32) {
  std::vector<uint8_t> qx(256, 0x00), qw(256, 0x00);
  for (int i = 0; i < 3; ++i) {
    qx[i] = 0xB8; // -1 * 1, three times: P_0 = -3.
    qw[i] = 0x38;
    qx[128 + i] = qw[128 + i] = 0x38; // P_1 = 3.
  }
  float sx[2] = {1.0f, 1.0f + 0x1p-23f}, sw[2] = {1.0f, 1.0f};
  float y = 0;
  ASSERT_TRUE(fp8GemmBlockScaled(qx.data(), sx, qw.data(), sw, &y, 1, 1, 256));
  EXPECT_EQ(y, 0x1p-21f);
}

// The accumulator model: with 4 mantissa bits a running sum of ones stalls
// at 32 (33 truncates back to 32); promotion every 128 restarts it.
TEST(Fp8Gemm, LimitedAccumulatorAndPromotionInterval) {
  const int64_t k = 256;
  std::vector<uint8_t> ones(k, 0x38);
  float y = 0;
  Fp8GemmOptions narrow;
  narrow.accumulatorBits = 4;
  ASSERT_TRUE(fp8GemmPerTensor(ones.data(), 1.0f, ones.data(), 1.0f, &y, 1, 1,
                               k, narrow));
  EXPECT_EQ(y, 64.0f);      // 32 per chunk of 128.
  narrow.promoteEveryK = 0; // Never promote: one chunk of 256.
  ASSERT_TRUE(fp8GemmPerTensor(ones.data(), 1.0f, ones.data(), 1.0f, &y, 1, 1,
                               k, narrow));
  EXPECT_EQ(y, 32.0f);
  narrow.promoteEveryK = 128;
  ASSERT_TRUE(fp8GemmBlockScaled(
      ones.data(), std::vector<float>(2, 1.0f).data(), ones.data(),
      std::vector<float>(2, 1.0f).data(), &y, 1, 1, k, narrow));
  EXPECT_EQ(y, 64.0f);
  Fp8GemmOptions wide; // Exact chunk sums.
  ASSERT_TRUE(fp8GemmPerTensor(ones.data(), 1.0f, ones.data(), 1.0f, &y, 1, 1,
                               k, wide));
  EXPECT_EQ(y, 256.0f);
  wide.accumulatorBits = 23; // A true FP32 accumulator holds 256 too.
  ASSERT_TRUE(fp8GemmPerTensor(ones.data(), 1.0f, ones.data(), 1.0f, &y, 1, 1,
                               k, wide));
  EXPECT_EQ(y, 256.0f);
}

TEST(Fp8Gemm, RejectsBadOptionsWithoutWriting) {
  std::vector<uint8_t> q(256, 0x38);
  std::vector<float> s(2, 1.0f);
  float y = -7.0f;
  Fp8GemmOptions bad;
  bad.promoteEveryK = 256; // Block scaling promotes every 128.
  EXPECT_FALSE(fp8GemmBlockScaled(q.data(), s.data(), q.data(), s.data(), &y, 1,
                                  1, 256, bad));
  bad.promoteEveryK = 100; // Not a multiple of 128.
  EXPECT_FALSE(
      fp8GemmPerTensor(q.data(), 1.0f, q.data(), 1.0f, &y, 1, 1, 256, bad));
  Fp8GemmOptions badBits;
  badBits.accumulatorBits = 24;
  EXPECT_FALSE(
      fp8GemmPerTensor(q.data(), 1.0f, q.data(), 1.0f, &y, 1, 1, 256, badBits));
  EXPECT_EQ(y, -7.0f);
}

TEST(Fp8Gemm, NanCodesPropagateToTheirRow) {
  const int64_t m = 2, n = 3, k = 128;
  std::vector<uint8_t> qx(m * k, 0x38), qw(n * k, 0x38);
  qx[k + 5] = kE4M3NaN;
  float sx[2] = {1, 1}, sw[1] = {1};
  std::vector<float> y(m * n);
  ASSERT_TRUE(
      fp8GemmBlockScaled(qx.data(), sx, qw.data(), sw, y.data(), m, n, k));
  for (int64_t j = 0; j < n; ++j) {
    EXPECT_EQ(y[j], 128.0f);
    EXPECT_TRUE(std::isnan(y[n + j]));
  }
}

// Against the unquantized GEMM: E4M3 keeps 3 mantissa bits, so each operand
// carries up to 2^-4 relative rounding error (RMS about 2^-4/sqrt(3)/2 for
// random data); the GEMM's relative Frobenius error stays near 2-3%.
TEST(Fp8Gemm, CloseToUnquantizedGemm) {
  const int64_t m = 48, n = 160, k = 640;
  std::vector<float> x = randomFloats(size_t(m * k), 21);
  std::vector<float> w = randomFloats(size_t(n * k), 22, 0.02);
  std::vector<double> ref = referenceGemm(x, w, m, n, k);
  for (Fp8Scaling scaling : {Fp8Scaling::FineGrained, Fp8Scaling::PerTensor}) {
    for (bool ue8m0 : {false, true}) {
      Fp8ScaleOptions options;
      options.ue8m0Scales = ue8m0;
      std::vector<float> y(size_t(m * n));
      fp8LinearForward(x.data(), w.data(), y.data(), m, n, k, scaling, options);
      double err = relativeFrobenius(y, ref);
      EXPECT_LT(err, 0.04) << "scaling " << int(scaling) << " ue8m0 " << ue8m0;
      EXPECT_GT(err, 0.005) << "no quantization error at all?";
    }
  }
}

// Activations with two outlier channels 10^6 times larger (in the first
// tile of each row), whose weights are zero so that the output is made of
// the ordinary channels only. E4M3 spans 2^-9 .. 448, about 2^18: one scale
// per tensor pushes every ordinary value below half the smallest subnormal,
// and the output is lost. Fine-grained tiles lose only the first tile of
// each row (1/8 of K here, so about sqrt(1/8) = 0.35 of the output norm).
// (With outliers only 100x larger, per-tensor scaling keeps the ordinary
// values in E4M3's normal range: see bench/results/fp8-gemm-error.md.)
TEST(Fp8Gemm, FineGrainedBeatsPerTensorOnOutliers) {
  const int64_t m = 32, n = 128, k = 1024;
  std::vector<float> x = randomFloats(size_t(m * k), 31);
  std::vector<float> w = randomFloats(size_t(n * k), 32, 0.02);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t c : {3, 77})
      x[i * k + c] *= 1e6f;
  for (int64_t j = 0; j < n; ++j)
    for (int64_t c : {3, 77})
      w[j * k + c] = 0;
  std::vector<double> ref = referenceGemm(x, w, m, n, k);
  std::vector<float> fine(size_t(m * n)), perTensor(size_t(m * n));
  fp8LinearForward(x.data(), w.data(), fine.data(), m, n, k,
                   Fp8Scaling::FineGrained);
  fp8LinearForward(x.data(), w.data(), perTensor.data(), m, n, k,
                   Fp8Scaling::PerTensor);
  double errFine = relativeFrobenius(fine, ref);
  double errTensor = relativeFrobenius(perTensor, ref);
  EXPECT_LT(errFine, 0.45) << "per tensor " << errTensor;
  EXPECT_GT(errTensor, 0.95) << "fine " << errFine;
}

TEST(Fp8Gemm, DoubleInstantiationMatchesFloat) {
  const int64_t m = 7, n = 140, k = 200;
  std::vector<float> x = randomFloats(size_t(m * k), 41);
  std::vector<float> w = randomFloats(size_t(n * k), 42);
  std::vector<double> xd(x.begin(), x.end()), wd(w.begin(), w.end());
  Fp8ScaleOptions options;
  options.ue8m0Scales = true; // Exact quotients in both types.
  std::vector<float> yf(size_t(m * n));
  std::vector<double> yd(size_t(m * n));
  fp8LinearForward(x.data(), w.data(), yf.data(), m, n, k,
                   Fp8Scaling::FineGrained, options);
  fp8LinearForward(xd.data(), wd.data(), yd.data(), m, n, k,
                   Fp8Scaling::FineGrained, options);
  for (size_t i = 0; i < yf.size(); ++i)
    ASSERT_EQ(double(yf[i]), yd[i]);
}

} // namespace
} // namespace dsflow::cpu
