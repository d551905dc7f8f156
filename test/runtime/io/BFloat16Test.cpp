//===- BFloat16Test.cpp - float <-> bfloat16 rounding ---------------------===//
#include "io/BFloat16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

namespace dsflow::io {
namespace {

float fromBits(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

uint16_t toBf16Bits(uint32_t floatBits) {
  return floatToBf16(fromBits(floatBits)).bits;
}

/// An independent oracle: the nearest bfloat16 by exact double arithmetic, ties
/// to the even significand. Only for finite inputs that do not overflow.
uint16_t nearestBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  uint16_t down = static_cast<uint16_t>(bits >> 16); // toward zero
  uint16_t up = static_cast<uint16_t>(down + 1);     // away from zero
  double x = std::fabs(static_cast<double>(value));
  double lo = std::fabs(static_cast<double>(bf16ToFloat(BF16{down})));
  double hi = std::fabs(static_cast<double>(bf16ToFloat(BF16{up})));
  if (x - lo < hi - x)
    return down;
  if (hi - x < x - lo)
    return up;
  return (down & 1) ? up : down;
}

TEST(BFloat16, ExactValuesRoundTrip) {
  for (float value :
       {0.0f, -0.0f, 1.0f, -2.5f, 0.15625f, 65536.0f, -0.0078125f}) {
    float back = bf16ToFloat(floatToBf16(value));
    EXPECT_EQ(back, value);
    EXPECT_EQ(std::signbit(back), std::signbit(value));
  }
  EXPECT_EQ(floatToBf16(1.0f).bits, 0x3F80);
  EXPECT_EQ(floatToBf16(-2.5f).bits, 0xC020);
  EXPECT_EQ(floatToBf16(-0.0f).bits, 0x8000);
  EXPECT_EQ(bf16ToFloat(BF16{0x3F80}), 1.0f);
  EXPECT_EQ(bf16ToFloat(BF16{0xC020}), -2.5f);
}

TEST(BFloat16, EveryBf16ValueRoundTripsThroughFloat) {
  for (uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
    float value = bf16ToFloat(BF16{static_cast<uint16_t>(bits)});
    if (std::isnan(value))
      continue;
    ASSERT_EQ(floatToBf16(value).bits, bits) << std::hex << bits;
  }
}

TEST(BFloat16, TiesRoundToEven) {
  // 1 + 2^-8 is halfway between 1 (even) and 1 + 2^-7 (odd): down to 1.
  EXPECT_EQ(toBf16Bits(0x3F808000), 0x3F80);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): up.
  EXPECT_EQ(toBf16Bits(0x3F818000), 0x3F82);
  // Just below and just above the tie.
  EXPECT_EQ(toBf16Bits(0x3F807FFF), 0x3F80);
  EXPECT_EQ(toBf16Bits(0x3F808001), 0x3F81);
  // The same for negative values and for subnormals.
  EXPECT_EQ(toBf16Bits(0xBF808000), 0xBF80);
  EXPECT_EQ(toBf16Bits(0xBF818000), 0xBF82);
  EXPECT_EQ(toBf16Bits(0x00008000), 0x0000);
  EXPECT_EQ(toBf16Bits(0x00018000), 0x0002);
  // A carry into the exponent: 1.9921875 + half an ulp -> 2.
  EXPECT_EQ(toBf16Bits(0x3FFF8000), 0x4000);
}

TEST(BFloat16, InfinityAndOverflow) {
  float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(floatToBf16(inf).bits, 0x7F80);
  EXPECT_EQ(floatToBf16(-inf).bits, 0xFF80);
  EXPECT_EQ(bf16ToFloat(BF16{0x7F80}), inf);
  // FLT_MAX is past the largest bfloat16's rounding boundary: infinity.
  EXPECT_EQ(floatToBf16(std::numeric_limits<float>::max()).bits, 0x7F80);
  EXPECT_EQ(floatToBf16(-std::numeric_limits<float>::max()).bits, 0xFF80);
  // Just below the boundary: the largest finite bfloat16.
  EXPECT_EQ(toBf16Bits(0x7F7F7FFF), 0x7F7F);
}

TEST(BFloat16, NaNStaysNaN) {
  EXPECT_EQ(toBf16Bits(0x7FC00000), 0x7FC0);
  // A NaN whose payload lives only in the low bits must not become infinity.
  uint16_t low = toBf16Bits(0x7F800001);
  EXPECT_TRUE(std::isnan(bf16ToFloat(BF16{low}))) << std::hex << low;
  uint16_t negative = toBf16Bits(0xFF800001);
  EXPECT_TRUE(std::isnan(bf16ToFloat(BF16{negative})));
  EXPECT_TRUE(negative & 0x8000) << "sign kept";
  // 0x7FFFFFFF would carry into the sign bit if rounded like a number.
  uint16_t high = toBf16Bits(0x7FFFFFFF);
  EXPECT_TRUE(std::isnan(bf16ToFloat(BF16{high})));
  EXPECT_FALSE(high & 0x8000);
}

TEST(BFloat16, MatchesExactOracleOnRandomFloats) {
  std::mt19937 rng(7);
  int checked = 0;
  while (checked < 200000) {
    uint32_t bits = rng();
    float value = fromBits(bits);
    // Finite values below the overflow boundary (0x7F7F8000).
    if (!std::isfinite(value) || (bits & 0x7FFFFFFF) >= 0x7F7F8000)
      continue;
    ASSERT_EQ(floatToBf16(value).bits, nearestBf16(value)) << std::hex << bits;
    ++checked;
  }
}

TEST(BFloat16, VectorHelpers) {
  std::vector<float> values = {1.0f, 0.1f, -3.0f};
  std::vector<BF16> packed = floatsToBf16(values);
  ASSERT_EQ(packed.size(), 3u);
  std::vector<float> back = bf16sToFloats(packed);
  EXPECT_EQ(back[0], 1.0f);
  EXPECT_NEAR(back[1], 0.1f, 0.001f);
  EXPECT_EQ(back[2], -3.0f);
}

} // namespace
} // namespace dsflow::io
