//===- RopeTest.cpp - Rotary embedding: frequencies, YaRN, rotations ------===//
#include "test/runtime/cpu/TestUtil.h"

#include <complex>

namespace dsflow::cpu::test {
namespace {

TEST(RopeInvFreq, PlainIsThetaToTheMinusTwoIOverD) {
  std::vector<double> f = ropeInvFreq(8, 10000.0, nullptr);
  ASSERT_EQ(f.size(), 4u);
  EXPECT_DOUBLE_EQ(f[0], 1.0);
  EXPECT_DOUBLE_EQ(f[1], 0.1);
  EXPECT_DOUBLE_EQ(f[2], 0.01);
  EXPECT_DOUBLE_EQ(f[3], 0.001);
}

TEST(RopeInvFreq, YarnFollowsDeepSeekV3CorrectionRange) {
  // DeepSeek-V3's rope settings: D = 64, theta 1e4, factor 40, beta_fast 32,
  // beta_slow 1. The correction range is floor(64 ln(L / (32 * 2 pi)) /
  // (2 ln 1e4)) to ceil(64 ln(L / (2 pi)) / (2 ln 1e4)) for the original
  // context L; by hand: L = 4096 (V3's): floor(10.47) = 10, ceil(22.51) = 23;
  // L = 1024: floor(5.66) = 5, ceil(17.70) = 18; L = 2048: floor(8.06) = 8,
  // ceil(20.11) = 21 (the last two tell floor/ceil from rounding).
  // Frequencies up to `low` are kept, from `high` on divided by the factor,
  // linearly blended between.
  struct Range {
    int64_t original;
    int low, high;
  };
  for (Range r :
       {Range{4096, 10, 23}, Range{1024, 5, 18}, Range{2048, 8, 21}}) {
    YarnParams yarn{40.0, r.original, 32.0, 1.0};
    std::vector<double> f = ropeInvFreq(64, 10000.0, &yarn);
    ASSERT_EQ(f.size(), 32u);
    for (int i = 0; i < 32; ++i) {
      double plain = std::pow(10000.0, -2.0 * i / 64);
      double ramp = std::clamp(double(i - r.low) / (r.high - r.low), 0.0, 1.0);
      double expected = plain * (1 - ramp) + plain / 40.0 * ramp;
      EXPECT_NEAR(f[i] / expected, 1.0, 1e-14)
          << "original " << r.original << " index " << i;
    }
    EXPECT_DOUBLE_EQ(f[r.low], std::pow(10000.0, -2.0 * r.low / 64));
    EXPECT_DOUBLE_EQ(f[r.high], std::pow(10000.0, -2.0 * r.high / 64) / 40);
  }
}

TEST(RopeInvFreq, YarnCorrectionRangeIsClampedAtZero) {
  // D = 16, original context 64: the correction range is [max(-1, 0), 3], a
  // ramp over indices 0..3; everything from 3 on is divided by the factor.
  YarnParams yarn{4.0, 64, 32.0, 1.0};
  std::vector<double> f = ropeInvFreq(16, 10000.0, &yarn);
  std::vector<double> plain = ropeInvFreq(16, 10000.0, nullptr);
  EXPECT_DOUBLE_EQ(f[0], plain[0]);
  EXPECT_NEAR(f[1], plain[1] * (2.0 / 3 + 1.0 / 3 / 4), 1e-15);
  for (int i = 3; i < 8; ++i)
    EXPECT_DOUBLE_EQ(f[i], plain[i] / 4) << "index " << i;
}

TEST(RopeInvFreq, YarnWithAnEmptyCorrectionRangeIsAStep) {
  // D = 6, theta 10, original context 4: the range is [max(floor(-5.1), 0),
  // ceil(-0.59)] = [0, 0]; like DeepSeek-V3, the ramp's end moves by 0.001:
  // frequency 0 is kept, the others divided by the factor.
  YarnParams yarn{8.0, 4, 32.0, 1.0};
  std::vector<double> f = ropeInvFreq(6, 10.0, &yarn);
  std::vector<double> plain = ropeInvFreq(6, 10.0, nullptr);
  EXPECT_DOUBLE_EQ(f[0], plain[0]);
  EXPECT_DOUBLE_EQ(f[1], plain[1] / 8);
  EXPECT_DOUBLE_EQ(f[2], plain[2] / 8);
}

struct RopeCase {
  int64_t batch = 2, seq = 5, heads = 2, dim = 6;
  std::vector<double> invFreq;
  Vec x;

  explicit RopeCase(bool withYarn = false) {
    // Correction range [0, 2]: frequency 0 kept, 1 half scaled, 2 scaled.
    YarnParams yarn{8.0, 20, 32.0, 1.0};
    invFreq = ropeInvFreq(dim, 10.0, withYarn ? &yarn : nullptr);
    std::mt19937 rng(90);
    x = randomVec(batch * seq * heads * dim, rng);
  }
  template <typename T> Vec forward() const {
    std::vector<T> xt = cast<T>(x), y(x.size());
    ropeForward(xt.data(), invFreq.data(), y.data(), batch, seq, heads, dim);
    return toVec(y);
  }
  /// Each pair as a complex number times e^{i s f}.
  Vec naive() const {
    Vec y(x.size());
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t s = 0; s < seq; ++s)
        for (int64_t h = 0; h < heads; ++h)
          for (int64_t i = 0; i < dim / 2; ++i) {
            int64_t at = ((b * seq + s) * heads + h) * dim + 2 * i;
            std::complex<double> z(x[at], x[at + 1]);
            z *= std::polar(1.0, double(s) * invFreq[i]);
            y[at] = z.real();
            y[at + 1] = z.imag();
          }
    return y;
  }
};

TEST(Rope, ForwardMatchesNaiveComplexRotation) {
  for (bool withYarn : {false, true}) {
    RopeCase c(withYarn);
    if (withYarn)
      EXPECT_NE(c.invFreq, RopeCase(false).invFreq);
    EXPECT_TRUE(closeRel(c.forward<double>(), c.naive(), 1e-13))
        << "yarn " << withYarn;
  }
}

TEST(Rope, PositionZeroIsTheIdentity) {
  RopeCase c;
  Vec y = c.forward<double>();
  for (int64_t i = 0; i < c.heads * c.dim; ++i)
    EXPECT_EQ(y[i], c.x[i]);
}

TEST(Rope, BackwardMatchesFiniteDifferences) {
  for (bool withYarn : {false, true}) {
    RopeCase c(withYarn);
    std::mt19937 rng(91);
    Vec dy = randomVec(c.x.size(), rng);
    Vec numeric = numericGrad(c.x, dy, [&] { return c.forward<double>(); });
    Vec dx(c.x.size(), 0.0);
    ropeBackward(dy.data(), c.invFreq.data(), dx.data(), c.batch, c.seq,
                 c.heads, c.dim);
    EXPECT_TRUE(gradsMatch(dx, numeric)) << "yarn " << withYarn;
  }
}

TEST(Rope, BackwardAccumulates) {
  RopeCase c;
  std::mt19937 rng(92);
  Vec dy = randomVec(c.x.size(), rng);
  EXPECT_TRUE(accumulates(c.x.size(), [&](double *dx) {
    ropeBackward(dy.data(), c.invFreq.data(), dx, c.batch, c.seq, c.heads,
                 c.dim);
  }));
}

TEST(Rope, FloatMatchesDouble) {
  RopeCase c(true);
  EXPECT_TRUE(floatMatchesDouble(
      [&](auto zero) { return c.forward<decltype(zero)>(); }));
}

} // namespace
} // namespace dsflow::cpu::test
