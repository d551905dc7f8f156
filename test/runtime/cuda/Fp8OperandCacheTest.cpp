//===- Fp8OperandCacheTest.cpp - FP8 operands kept beside outputs ---------===//
//
// The slots a fused RMSNorm writes its output's FP8 operand into: found
// until the buffer is written, the least recently filled slot reused first,
// a buffer filled again keeping its slot, addresses laid out without overlap.
//
//===----------------------------------------------------------------------===//
#include "runtime/backends/cuda/Fp8OperandCache.h"

#include <gtest/gtest.h>

namespace dsflow::cuda {
namespace {

TEST(Fp8OperandCache, KeepsOperandsUntilWrittenOrEvicted) {
  // Codes of 1000 bytes and scales of 40, each rounded up to 256.
  Fp8OperandCache cache(1 << 20, 2, 1000, 40);
  EXPECT_EQ(Fp8OperandCache::bytes(2, 1000, 40), 2 * (1024 + 256));
  EXPECT_FALSE(cache.find(7));
  Fp8OperandCache::Slot a = cache.fill(7);
  EXPECT_EQ(a.codes, uint64_t(1 << 20));
  EXPECT_EQ(a.scales, a.codes + 1024);
  Fp8OperandCache::Slot b = cache.fill(9);
  EXPECT_EQ(b.codes, a.scales + 256);
  ASSERT_TRUE(cache.find(7));
  EXPECT_EQ(cache.find(7)->codes, a.codes);
  // Filled again, a buffer keeps its slot (and becomes the most recent).
  EXPECT_EQ(cache.fill(7).codes, a.codes);
  // A third buffer takes the least recently filled slot: 9's.
  EXPECT_EQ(cache.fill(11).codes, b.codes);
  EXPECT_FALSE(cache.find(9));
  EXPECT_TRUE(cache.find(7));
  // Written, a buffer's operand is gone; its slot is the next one taken.
  cache.forget(7);
  EXPECT_FALSE(cache.find(7));
  EXPECT_EQ(cache.fill(13).codes, a.codes);
  EXPECT_TRUE(cache.find(11));
  EXPECT_FALSE(cache.find(-1));
}

} // namespace
} // namespace dsflow::cuda
