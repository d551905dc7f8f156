//===- CublasLtScalesTest.cpp - FP8 scales in cuBLASLt's order ------------===//
//
// The CPU backend's scale arrays converted to the order cuBLASLt reads them
// in: 1x128 tile scales outer-dimension-fastest, 128x128 block scales with
// each row padded to a multiple of 4. (The GEMMs themselves are checked
// against the CPU backend on a GPU: bench/cuda/gemm_bench.cpp.)
//
//===----------------------------------------------------------------------===//
#include "runtime/backends/cuda/CublasLtGemm.h"

#include <gtest/gtest.h>

using namespace dsflow::cuda;

TEST(CublasLtScales, TileScalesPutTheRowsFastest) {
  // m = 3 rows, k = 300 columns: 3 tiles per row (the last one partial).
  const float scales[] = {1, 2, 3, 4, 5, 6, 7, 8, 9}; // [row][tile]
  std::vector<float> out = cublasTileScales(scales, 3, 300);
  EXPECT_EQ(out, (std::vector<float>{1, 4, 7, 2, 5, 8, 3, 6, 9}));
}

TEST(CublasLtScales, BlockScalesPadEachRowToFour) {
  // n = 200 (2 row blocks), k = 640 (5 column blocks, padded to 8).
  std::vector<float> scales(10);
  for (int i = 0; i < 10; ++i)
    scales[i] = float(i + 2);
  std::vector<float> out = cublasBlockScales(scales.data(), 200, 640);
  ASSERT_EQ(out.size(), 16u);
  EXPECT_EQ(out, (std::vector<float>{2, 3, 4, 5, 6, 1, 1, 1, //
                                     7, 8, 9, 10, 11, 1, 1, 1}));
}

TEST(CublasLtScales, BlockScalesNeedNoPaddingAtMultiplesOfFour) {
  std::vector<float> scales = {3, 5, 7, 9};
  EXPECT_EQ(cublasBlockScales(scales.data(), 128, 512), scales);
}
