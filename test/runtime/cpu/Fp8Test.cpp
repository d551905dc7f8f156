//===- Fp8Test.cpp - E4M3/UE8M0 conversions and FP8 quantization ----------===//
//
// Conversions against hand-picked values and a brute-force nearest-value
// search; quantization kernels against their definitions (Fp8.h), partial
// tiles included. The GEMM is in Fp8GemmTest.cpp, the CUDA oracle in
// Fp8CudaOracleTest.cpp.
//
//===----------------------------------------------------------------------===//
#include "runtime/backends/cpu/Fp8.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace dsflow::cpu {
namespace {

const float kInf = std::numeric_limits<float>::infinity();
const float kNaN = std::numeric_limits<float>::quiet_NaN();

//===----------------------------------------------------------------------===//
// E4M3
//===----------------------------------------------------------------------===//

TEST(Fp8Convert, KnownValues) {
  struct Case {
    float x;
    uint8_t code;
  } cases[] = {
      // clang-format off
      {0.0f, 0x00},
      {-0.0f, 0x80},
      {1.0f, 0x38},
      {-1.0f, 0xB8},
      {448.0f, 0x7E},
      {-448.0f, 0xFE},
      {240.0f, 0x77},
      {256.0f, 0x78},
      {248.0f, 0x78},          // Midpoint of 240 (odd mantissa) and 256: up.
      {1.0625f, 0x38},         // Midpoint of 1 (even) and 1.125: down.
      {1.1875f, 0x3A},         // Midpoint of 1.125 (odd) and 1.25: up.
      {1.07f, 0x39},           // Above the midpoint: up.
      {450.0f, 0x7E},          // Beyond 448 saturates ...
      {464.0f, 0x7E},          // ... the midpoint to "480" included ...
      {465.0f, 0x7E},          // ... and everything above.
      {-1e30f, 0xFE},
      {kInf, 0x7E},            // SATFINITE: inf -> max.
      {-kInf, 0xFE},
      {kNaN, 0x7F},
      {-kNaN, 0x7F},           // Canonical NaN, sign discarded (as CUDA).
      {0x1p-6f, 0x08},         // Smallest normal.
      {0x1p-9f, 0x01},         // Smallest subnormal.
      {0x7p-9f, 0x07},         // Largest subnormal.
      {0x1p-10f, 0x00},        // Half the smallest subnormal ties to zero.
      {-0x1p-10f, 0x80},
      {0x1.000002p-10f, 0x01}, // Just above: up.
      {0x3p-10f, 0x02},        // 1.5 units ties to 2 (even).
      {0x5p-10f, 0x02},        // 2.5 units ties to 2 (even).
      {0xFp-10f, 0x08},        // 7.5 units: up to the smallest normal.
      {1e-30f, 0x00},
      {-1e-45f, 0x80},
      // clang-format on
  };
  for (const Case &c : cases)
    EXPECT_EQ(int(floatToE4M3(c.x)), int(c.code)) << "x = " << c.x;
}

TEST(Fp8Convert, DecodeKnownCodes) {
  EXPECT_EQ(e4m3ToFloat(0x00), 0.0f);
  EXPECT_TRUE(std::signbit(e4m3ToFloat(0x80)));
  EXPECT_EQ(e4m3ToFloat(0x01), 0x1p-9f);
  EXPECT_EQ(e4m3ToFloat(0x07), 0x7p-9f);
  EXPECT_EQ(e4m3ToFloat(0x08), 0x1p-6f);
  EXPECT_EQ(e4m3ToFloat(0x38), 1.0f);
  EXPECT_EQ(e4m3ToFloat(0x3D), 1.625f);
  EXPECT_EQ(e4m3ToFloat(0x7E), 448.0f);
  EXPECT_EQ(e4m3ToFloat(0xFE), -448.0f);
  EXPECT_TRUE(std::isnan(e4m3ToFloat(0x7F)));
  EXPECT_TRUE(std::isnan(e4m3ToFloat(0xFF)));
  // Positive codes are strictly increasing, negative ones mirror them.
  for (int c = 1; c < 0x7F; ++c) {
    EXPECT_LT(e4m3ToFloat(uint8_t(c - 1)), e4m3ToFloat(uint8_t(c)));
    EXPECT_EQ(e4m3ToFloat(uint8_t(c | 0x80)), -e4m3ToFloat(uint8_t(c)));
  }
}

TEST(Fp8Convert, RoundTripsEveryCode) {
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7F) == 0x7F)
      continue;
    EXPECT_EQ(int(floatToE4M3(e4m3ToFloat(uint8_t(c)))), c);
    EXPECT_EQ(int(doubleToE4M3(double(e4m3ToFloat(uint8_t(c))))), c);
  }
}

// The nearest E4M3 value by search, ties to the even code; beyond 448: 448.
static uint8_t nearestBySearch(double x) {
  if (std::isnan(x))
    return kE4M3NaN;
  double a = std::fabs(x);
  uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
  if (a >= 448.0)
    return uint8_t(sign | 0x7E);
  int best = 0;
  for (int c = 1; c <= 0x7E; ++c) {
    double dBest = std::fabs(a - e4m3ToFloat(uint8_t(best)));
    double d = std::fabs(a - e4m3ToFloat(uint8_t(c)));
    if (d < dBest || (d == dBest && (c & 1) == 0))
      best = c;
  }
  return uint8_t(sign | best);
}

TEST(Fp8Convert, MatchesNearestValueSearch) {
  // Every float in [2^-11, 2^10) with a mantissa step that visits every
  // rounding position, plus random doubles.
  int64_t checked = 0;
  for (uint32_t e = 127 - 11; e < 127 + 10; ++e) {
    for (uint32_t m = 0; m < (1u << 23); m += 4093) {
      for (uint32_t extra :
           {0u, 1u, (1u << 19) - 1, 1u << 19, (1u << 19) + 1}) {
        uint32_t bits = (e << 23) | ((m + extra) & 0x7FFFFF);
        float x;
        std::memcpy(&x, &bits, sizeof x);
        ASSERT_EQ(int(floatToE4M3(x)), int(nearestBySearch(x))) << "x = " << x;
        ASSERT_EQ(int(floatToE4M3(-x)), int(nearestBySearch(-x)));
        ++checked;
      }
    }
  }
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> log2Mag(-12.0, 10.0);
  for (int i = 0; i < 200000; ++i) {
    double x = std::exp2(log2Mag(rng)) * (i % 2 ? -1 : 1);
    ASSERT_EQ(int(doubleToE4M3(x)), int(nearestBySearch(x))) << "x = " << x;
  }
  EXPECT_GT(checked, 100000);
}

TEST(Fp8Convert, DoubleRoundsOnce) {
  // 1 + 1/16 + 2^-40 is above the midpoint of 1 and 1.125: it rounds up,
  // while going through float (which rounds it to the midpoint) would give 1.
  double x = 1.0 + 1.0 / 16 + std::ldexp(1.0, -40);
  EXPECT_EQ(float(x), 1.0625f);
  EXPECT_EQ(int(doubleToE4M3(x)), 0x39);
  EXPECT_EQ(int(floatToE4M3(float(x))), 0x38);
  EXPECT_EQ(int(doubleToE4M3(std::numeric_limits<double>::infinity())), 0x7E);
  EXPECT_EQ(int(doubleToE4M3(-1e300)), 0xFE);
  EXPECT_EQ(int(doubleToE4M3(5e-324)), 0x00);
}

//===----------------------------------------------------------------------===//
// UE8M0
//===----------------------------------------------------------------------===//

TEST(Fp8Ue8m0, KnownValues) {
  EXPECT_EQ(ue8m0Ceil(1.0f), 1.0f);
  EXPECT_EQ(ue8m0Ceil(1.0001f), 2.0f);
  EXPECT_EQ(ue8m0Ceil(0.75f), 1.0f);
  EXPECT_EQ(ue8m0Ceil(0.5f), 0.5f);
  EXPECT_EQ(ue8m0Ceil(1.0f / 448), 0x1p-8f);
  EXPECT_EQ(ue8m0Ceil(-3.0f), 4.0f); // Magnitude, as CUDA.
  EXPECT_EQ(ue8m0Ceil(0.0f), 0x1p-127f);
  EXPECT_EQ(ue8m0Ceil(0x1p-127f), 0x1p-127f);
  EXPECT_EQ(ue8m0Ceil(0x1.8p-127f), 0x1p-126f);
  EXPECT_EQ(ue8m0Ceil(0x1p127f), 0x1p127f);
  EXPECT_EQ(ue8m0Ceil(0x1.000002p127f), 0x1p127f); // Saturates.
  EXPECT_EQ(ue8m0Ceil(kInf), 0x1p127f);
  EXPECT_TRUE(std::isnan(ue8m0Ceil(kNaN)));
  EXPECT_EQ(int(floatToUe8m0Ceil(1.0f)), 127);
  EXPECT_EQ(int(floatToUe8m0Ceil(3.0f)), 129);
  EXPECT_EQ(int(floatToUe8m0Ceil(kNaN)), 0xFF);
  EXPECT_EQ(ue8m0ToFloat(0), 0x1p-127f);
  EXPECT_EQ(ue8m0ToFloat(127), 1.0f);
  EXPECT_EQ(ue8m0ToFloat(254), 0x1p127f);
  EXPECT_TRUE(std::isnan(ue8m0ToFloat(255)));
}

TEST(Fp8Ue8m0, IsTheSmallestPowerOfTwoAbove) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> log2Mag(-120.0, 120.0);
  for (int i = 0; i < 100000; ++i) {
    float s = float(std::exp2(log2Mag(rng)));
    float r = ue8m0Ceil(s);
    int e;
    ASSERT_EQ(std::frexp(r, &e), 0.5f) << "not a power of two: " << r;
    ASSERT_GE(r, s);
    ASSERT_LT(r / 2, s);
  }
}

//===----------------------------------------------------------------------===//
// Quantization
//===----------------------------------------------------------------------===//

static std::vector<float> randomFloats(size_t n, uint32_t seed,
                                       double scale = 1.0) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> dist(0.0, scale);
  std::vector<float> v(n);
  for (float &x : v)
    x = float(dist(rng));
  return v;
}

// The amax of x over rows [r0, r1) and columns [c0, c1) of a [*, cols] array.
static double blockAmax(const std::vector<float> &x, int64_t cols, int64_t r0,
                        int64_t r1, int64_t c0, int64_t c1) {
  double amax = 0;
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t c = c0; c < c1; ++c)
      amax = std::max(amax, std::fabs(double(x[r * cols + c])));
  return amax;
}

// |x - dequantized| is at most half an E4M3 step: 2^-4 relative for normal
// codes, 2^-10 * s absolute for subnormal ones.
static void expectWithinHalfStep(float x, double xq, float scale) {
  double bound = std::max(std::fabs(double(x)) * 0x1p-4, 0x1p-10 * scale);
  EXPECT_LE(std::fabs(double(x) - xq), bound * (1 + 1e-6))
      << "x = " << x << ", dequantized " << xq << ", scale " << scale;
}

// 128x1 tiles are 1x128 tiles of the transpose (a weight gradient's operands,
// contracted over the tokens).
TEST(Fp8Quantize, Tiles128x1AreTilesOfTheTranspose) {
  const int64_t rows = 300, cols = 5; // Row tiles of 128, 128 and 44.
  std::vector<float> x = randomFloats(size_t(rows * cols), 3);
  x[290 * cols + 2] = -51.0f; // A large value in column 2's partial tile.
  std::vector<float> t(x.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      t[c * rows + r] = x[r * cols + c];
  std::vector<uint8_t> q(x.size()), qt(x.size());
  std::vector<float> s(size_t(fp8Tiles(rows) * cols)),
      st(size_t(cols * fp8Tiles(rows)));
  quantizeFp8Tiles128x1(x.data(), q.data(), s.data(), rows, cols, {});
  quantizeFp8Tiles1x128(t.data(), qt.data(), st.data(), cols, rows, {});
  for (int64_t c = 0; c < cols; ++c)
    for (int64_t tile = 0; tile < fp8Tiles(rows); ++tile)
      EXPECT_EQ(s[tile * cols + c], st[c * fp8Tiles(rows) + tile]);
  EXPECT_EQ(s[2 * cols + 2], 51.0f / 448.0f);
  std::vector<float> back(x.size()), backT(x.size());
  dequantizeFp8Tiles128x1(q.data(), s.data(), back.data(), rows, cols);
  dequantizeFp8Tiles1x128(qt.data(), st.data(), backT.data(), cols, rows);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      ASSERT_EQ(q[r * cols + c], qt[c * rows + r]) << r << ", " << c;
      ASSERT_EQ(back[r * cols + c], backT[c * rows + r]) << r << ", " << c;
    }
}

TEST(Fp8Quantize, Tiles1x128WithPartialTile) {
  const int64_t rows = 3, cols = 300; // Tiles of 128, 128 and 44.
  std::vector<float> x = randomFloats(size_t(rows * cols), 1);
  x[1 * cols + 290] = 37.0f; // A large value in row 1's partial tile.
  std::vector<uint8_t> q(x.size());
  std::vector<float> s(size_t(rows * fp8Tiles(cols)));
  ASSERT_EQ(fp8Tiles(cols), 3);
  quantizeFp8Tiles1x128(x.data(), q.data(), s.data(), rows, cols, {});
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t t = 0; t < 3; ++t) {
      int64_t c0 = t * 128, c1 = std::min<int64_t>(cols, c0 + 128);
      double amax = blockAmax(x, cols, r, r + 1, c0, c1);
      float scale = s[r * 3 + t];
      EXPECT_EQ(scale, float(amax / 448.0)) << "row " << r << " tile " << t;
      bool sawMax = false;
      for (int64_t c = c0; c < c1; ++c) {
        float xv = x[r * cols + c];
        EXPECT_EQ(q[r * cols + c], floatToE4M3(xv / scale));
        sawMax |= (q[r * cols + c] & 0x7F) == kE4M3MaxCode;
      }
      EXPECT_TRUE(sawMax) << "the tile's amax should map to 448";
    }
  }
  EXPECT_EQ(s[1 * 3 + 2], 37.0f / 448.0f);
  // Dequantization: each value within half a step of the original.
  std::vector<float> back(x.size());
  dequantizeFp8Tiles1x128(q.data(), s.data(), back.data(), rows, cols);
  for (int64_t i = 0; i < rows * cols; ++i) {
    expectWithinHalfStep(x[i], back[i], s[(i / cols) * 3 + (i % cols) / 128]);
    EXPECT_EQ(back[i], float(double(e4m3ToFloat(q[i])) *
                             double(s[(i / cols) * 3 + (i % cols) / 128])));
  }
}

TEST(Fp8Quantize, Blocks128x128WithPartialBlocks) {
  const int64_t rows = 200, cols = 300; // 2 x 3 blocks, the last ones partial.
  std::vector<float> w = randomFloats(size_t(rows * cols), 2, 0.02);
  w[150 * cols + 299] = -5.0f; // In block (1, 2).
  std::vector<uint8_t> q(w.size());
  std::vector<float> s(size_t(2 * 3));
  quantizeFp8Blocks128x128(w.data(), q.data(), s.data(), rows, cols, {});
  for (int64_t br = 0; br < 2; ++br) {
    for (int64_t bc = 0; bc < 3; ++bc) {
      int64_t r0 = br * 128, r1 = std::min<int64_t>(rows, r0 + 128);
      int64_t c0 = bc * 128, c1 = std::min<int64_t>(cols, c0 + 128);
      float scale = s[br * 3 + bc];
      EXPECT_EQ(scale, float(blockAmax(w, cols, r0, r1, c0, c1) / 448.0));
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c)
          ASSERT_EQ(q[r * cols + c], floatToE4M3(w[r * cols + c] / scale));
    }
  }
  EXPECT_EQ(s[1 * 3 + 2], 5.0f / 448.0f);
  EXPECT_LT(s[1 * 3 + 1], 0.01f); // The outlier stays in its block.
  std::vector<double> back(w.size());
  dequantizeFp8Blocks128x128(q.data(), s.data(), back.data(), rows, cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      expectWithinHalfStep(w[r * cols + c], back[r * cols + c],
                           s[(r / 128) * 3 + c / 128]);
}

TEST(Fp8Quantize, PerTensor) {
  std::vector<float> x = randomFloats(1000, 3);
  x[517] = 90.0f;
  std::vector<uint8_t> q(x.size());
  float s = 0;
  quantizeFp8PerTensor(x.data(), q.data(), &s, int64_t(x.size()), {});
  EXPECT_EQ(s, 90.0f / 448.0f);
  EXPECT_EQ(q[517], kE4M3MaxCode);
  std::vector<float> back(x.size());
  dequantizeFp8PerTensor(q.data(), s, back.data(), int64_t(x.size()));
  for (size_t i = 0; i < x.size(); ++i)
    expectWithinHalfStep(x[i], back[i], s);
}

TEST(Fp8Quantize, Ue8m0ScalesArePowersOfTwoAndDoNotSaturate) {
  const int64_t rows = 4, cols = 256 + 7;
  std::vector<float> x = randomFloats(size_t(rows * cols), 4, 3.0);
  std::vector<uint8_t> q(x.size());
  std::vector<float> s(size_t(rows * fp8Tiles(cols)));
  Fp8ScaleOptions options;
  options.ue8m0Scales = true;
  quantizeFp8Tiles1x128(x.data(), q.data(), s.data(), rows, cols, options);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t t = 0; t < fp8Tiles(cols); ++t) {
      int64_t c0 = t * 128, c1 = std::min<int64_t>(cols, c0 + 128);
      float scale = s[r * fp8Tiles(cols) + t];
      float plain = float(blockAmax(x, cols, r, r + 1, c0, c1) / 448.0);
      EXPECT_EQ(scale, ue8m0Ceil(plain));
      for (int64_t c = c0; c < c1; ++c) {
        // x / s is exact with a power-of-two scale, and at most 448.
        EXPECT_LE(std::fabs(x[r * cols + c] / scale), 448.0f);
        EXPECT_EQ(q[r * cols + c], floatToE4M3(x[r * cols + c] / scale));
      }
    }
  }
  std::vector<float> back(x.size());
  dequantizeFp8Tiles1x128(q.data(), s.data(), back.data(), rows, cols);
  for (size_t i = 0; i < x.size(); ++i)
    expectWithinHalfStep(x[i], back[i],
                         s[(i / cols) * fp8Tiles(cols) + (i % cols) / 128]);
}

// x / s and x * (1 / s) round differently here (found by search): the
// quantizer divides, as Fp8.h says.
TEST(Fp8Quantize, DividesByTheScale) {
  float tile[2] = {0x1.96c80ep+0f, 0x1.c25d7cp-1f};
  uint8_t q[2];
  float s;
  quantizeFp8Tiles1x128(tile, q, &s, 1, 2, {});
  EXPECT_EQ(s, 0x1.d0e4a2p-9f);
  EXPECT_EQ(int(q[1]), 0x77);
  EXPECT_EQ(int(floatToE4M3(tile[1] * (1.0f / s))), 0x78);
}

TEST(Fp8Quantize, FloatAndDoubleInputsAgree) {
  // With power-of-two scales the quotients are exact in both types.
  const int64_t rows = 130, cols = 140;
  std::vector<float> xf = randomFloats(size_t(rows * cols), 6);
  std::vector<double> xd(xf.begin(), xf.end());
  Fp8ScaleOptions options;
  options.ue8m0Scales = true;
  std::vector<uint8_t> qf(xf.size()), qd(xf.size());
  std::vector<float> sf(4), sd(4);
  quantizeFp8Blocks128x128(xf.data(), qf.data(), sf.data(), rows, cols,
                           options);
  quantizeFp8Blocks128x128(xd.data(), qd.data(), sd.data(), rows, cols,
                           options);
  EXPECT_EQ(qf, qd);
  EXPECT_EQ(sf, sd);
}

TEST(Fp8Quantize, ZeroTilesAndAmaxFloor) {
  std::vector<float> x(256, 0.0f);
  for (int i = 128; i < 256; ++i)
    x[size_t(i)] = 1e-6f;
  std::vector<uint8_t> q(256);
  std::vector<float> s(2);
  quantizeFp8Tiles1x128(x.data(), q.data(), s.data(), 1, 256, {});
  EXPECT_EQ(s[0], 1.0f); // All zeros: scale 1, codes 0.
  EXPECT_EQ(q[0], 0x00);
  EXPECT_EQ(s[1], float(1e-6f / 448.0));
  Fp8ScaleOptions floor;
  floor.amaxFloor = 1e-4f;
  quantizeFp8Tiles1x128(x.data(), q.data(), s.data(), 1, 256, floor);
  EXPECT_EQ(s[0], float(double(1e-4f) / 448.0));
  EXPECT_EQ(s[1], float(double(1e-4f) / 448.0));
  EXPECT_EQ(q[200], floatToE4M3(1e-6f / s[1]));
}

TEST(Fp8Quantize, NonFiniteValuesPoisonOnlyTheirTile) {
  std::vector<float> x = randomFloats(3 * 128, 7);
  x[5] = kNaN;       // Tile 0.
  x[128 + 9] = kInf; // Tile 1.
  for (bool ue8m0 : {false, true}) {
    Fp8ScaleOptions options;
    options.ue8m0Scales = ue8m0;
    std::vector<uint8_t> q(x.size());
    std::vector<float> s(3);
    quantizeFp8Tiles1x128(x.data(), q.data(), s.data(), 1, 3 * 128, options);
    EXPECT_TRUE(std::isnan(s[0]));
    EXPECT_TRUE(std::isinf(s[1]));
    EXPECT_TRUE(std::isfinite(s[2]));
    std::vector<float> back(x.size());
    dequantizeFp8Tiles1x128(q.data(), s.data(), back.data(), 1, 3 * 128);
    for (int i = 0; i < 256; ++i)
      EXPECT_TRUE(std::isnan(back[size_t(i)])) << i;
    for (int i = 256; i < 384; ++i)
      EXPECT_TRUE(std::isfinite(back[size_t(i)])) << i;
  }
}

TEST(Fp8Quantize, CheckData) {
  std::vector<uint8_t> q = {0x00, 0x38, 0xFE, 0x7E};
  std::vector<float> s = {1.0f, 0.5f};
  EXPECT_EQ(checkFp8Data(q.data(), 4, s.data(), 2), Fp8DataStatus::Ok);
  q[2] = 0xFF;
  EXPECT_EQ(checkFp8Data(q.data(), 4, s.data(), 2), Fp8DataStatus::NanCode);
  q[2] = 0x7F;
  EXPECT_EQ(checkFp8Data(q.data(), 4, s.data(), 2), Fp8DataStatus::NanCode);
  q[2] = 0x00;
  for (float bad : {0.0f, -1.0f, kInf, kNaN}) {
    s[1] = bad;
    EXPECT_EQ(checkFp8Data(q.data(), 4, s.data(), 2), Fp8DataStatus::BadScale)
        << bad;
  }
  EXPECT_STREQ(toString(Fp8DataStatus::BadScale),
               "FP8 scale is not a positive finite number");
}

TEST(Fp8Convert, RoundTripWithoutTheCodeOnEveryPositiveFloat) {
  // Every positive float and, the sign being copied, every 17th negative.
  int64_t mismatches = 0;
  for (uint64_t b = 0; b <= 0xFFFFFFFFu; b += b < 0x80000000u ? 1 : 17) {
    uint32_t bits = uint32_t(b);
    float v;
    std::memcpy(&v, &bits, 4);
    float fast = e4m3RoundTrip(v), slow = e4m3ToFloat(floatToE4M3(v));
    mismatches += std::isnan(slow) ? !std::isnan(fast)
                                   : std::memcmp(&fast, &slow, 4) != 0;
  }
  EXPECT_EQ(mismatches, 0);
}

/// fakeQuantizeFp8 is, by definition, dequantize(quantize(x)) in its tiling:
/// the fused pass must give exactly those bits (float and double, every
/// tiling, power-of-two scales or not, partial tiles, zeros, tiny and huge
/// values, NaN, inf), and in place too.
template <typename T> void expectFakeIsQuantizeThenDequantize() {
  std::mt19937 rng(17);
  std::normal_distribution<double> normal(0, 1);
  const int64_t rows = 150, cols = 300; // partial tiles both ways
  std::vector<T> x(size_t(rows * cols));
  for (T &v : x)
    v = T(normal(rng) * std::exp(5 * normal(rng)));
  x[3] = 0, x[500] = T(1e-30), x[900] = T(3e38), x[1200] = T(-1e-41);
  for (int64_t c = 0; c < 128; ++c)
    x[size_t(2 * cols + c)] = 0; // an all-zero tile
  x[size_t(7 * cols + 9)] = std::numeric_limits<T>::quiet_NaN();
  x[size_t(140 * cols + 290)] = std::numeric_limits<T>::infinity();
  auto same = [](T a, T b) {
    return std::isnan(a) ? std::isnan(b) : std::memcmp(&a, &b, sizeof(T)) == 0;
  };
  for (bool ue8m0 : {false, true})
    for (Fp8Tiling tiling : {Fp8Tiling::Tiles1x128, Fp8Tiling::Tiles128x1,
                             Fp8Tiling::Blocks128x128}) {
      Fp8ScaleOptions options;
      options.ue8m0Scales = ue8m0;
      std::vector<uint8_t> q(x.size());
      std::vector<T> expected(x.size());
      if (tiling == Fp8Tiling::Tiles1x128) {
        std::vector<float> scales(size_t(rows * fp8Tiles(cols)));
        quantizeFp8Tiles1x128(x.data(), q.data(), scales.data(), rows, cols,
                              options);
        dequantizeFp8Tiles1x128(q.data(), scales.data(), expected.data(), rows,
                                cols);
      } else if (tiling == Fp8Tiling::Tiles128x1) {
        std::vector<float> scales(size_t(fp8Tiles(rows) * cols));
        quantizeFp8Tiles128x1(x.data(), q.data(), scales.data(), rows, cols,
                              options);
        dequantizeFp8Tiles128x1(q.data(), scales.data(), expected.data(), rows,
                                cols);
      } else {
        std::vector<float> scales(size_t(fp8Tiles(rows) * fp8Tiles(cols)));
        quantizeFp8Blocks128x128(x.data(), q.data(), scales.data(), rows, cols,
                                 options);
        dequantizeFp8Blocks128x128(q.data(), scales.data(), expected.data(),
                                   rows, cols);
      }
      std::vector<T> fake(x.size()), inPlace = x;
      fakeQuantizeFp8(x.data(), fake.data(), rows, cols, tiling, options);
      fakeQuantizeFp8(inPlace.data(), inPlace.data(), rows, cols, tiling,
                      options);
      int64_t mismatches = 0;
      for (size_t i = 0; i < x.size(); ++i)
        mismatches +=
            !same(fake[i], expected[i]) + !same(inPlace[i], expected[i]);
      EXPECT_EQ(mismatches, 0)
          << "tiling " << int(tiling) << " ue8m0 " << ue8m0;
    }
}

TEST(Fp8Quantize, FakeQuantizationIsQuantizeThenDequantizeFloat) {
  expectFakeIsQuantizeThenDequantize<float>();
}

TEST(Fp8Quantize, FakeQuantizationIsQuantizeThenDequantizeDouble) {
  expectFakeIsQuantizeThenDequantize<double>();
}

} // namespace
} // namespace dsflow::cpu
