//===- Fp8EmulationTest.cpp - FP8 operand emulation of the CPU backend ----===//
#include "exec/Fp8Emulation.h"
#include "io/BFloat16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace dsflow::exec {
namespace {

std::vector<float> randomMatrix(int64_t rows, int64_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(rows * cols);
  for (float &v : x)
    v = normal(rng);
  return x;
}

/// The max |x| over the elements `inTile(r, c)` selects, for every tile id.
std::vector<float> tileMaxima(const std::vector<float> &x, int64_t rows,
                              int64_t cols, int64_t (*tileOf)(int64_t, int64_t,
                                                              int64_t),
                              int64_t tiles) {
  std::vector<float> m(tiles, 0.0f);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      float &slot = m[tileOf(r, c, cols)];
      slot = std::max(slot, std::abs(x[r * cols + c]));
    }
  return m;
}

int64_t rowTile(int64_t r, int64_t c, int64_t cols) {
  return r * ((cols + 127) / 128) + c / 128;
}
int64_t columnTile(int64_t r, int64_t c, int64_t cols) {
  return (r / 128) * cols + c;
}

// Each tile's largest magnitude maps to 448 (E4M3's largest value), so it
// survives the round trip up to the FP32 scale's rounding; the others are
// rounded to 3 mantissa bits. A wrong tiling breaks the first property.
void expectTiling(Fp8Role role, int64_t (*tileOf)(int64_t, int64_t, int64_t),
                  int64_t tiles, int64_t rows, int64_t cols) {
  std::vector<float> x = randomMatrix(rows, cols, 3), y(x.size());
  fakeQuantize(x.data(), y.data(), rows, cols, role, /*ue8m0=*/false);
  std::vector<float> before = tileMaxima(x, rows, cols, tileOf, tiles),
                     after = tileMaxima(y, rows, cols, tileOf, tiles);
  // 448 * fl32(amax / 448) returns amax up to the scale's own rounding.
  for (int64_t t = 0; t < tiles; ++t)
    EXPECT_NEAR(after[t], before[t], before[t] * 2.5e-7) << "tile " << t;
  double worst = 0;
  int changed = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    changed += x[i] != y[i];
    worst = std::max(worst, std::abs(double(x[i]) - y[i]) /
                                std::max(std::abs(double(x[i])), 1e-3));
  }
  EXPECT_GT(changed, int(x.size() / 2));
  EXPECT_LT(worst, 0.07); // E4M3: 3 mantissa bits, and subnormals
}

TEST(Fp8Emulation, RowTilesKeepEachTilesMaximum) {
  expectTiling(Fp8Role::RowTiles, rowTile, 40 * 3, 40, 300);
}

TEST(Fp8Emulation, ColumnTilesTileAlongTheRows) {
  expectTiling(Fp8Role::ColumnTiles, columnTile, 3 * 50, 300, 50);
}

TEST(Fp8Emulation, Bf16RoundsLikeTheIoConversion) {
  std::vector<float> x = randomMatrix(4, 33, 9), y(x.size());
  fakeQuantize(x.data(), y.data(), 4, 33, Fp8Role::Bf16, false);
  for (size_t i = 0; i < x.size(); ++i)
    EXPECT_EQ(y[i], io::bf16ToFloat(io::floatToBf16(x[i])));
}

TEST(Fp8Emulation, OperandRoles) {
  EXPECT_EQ(fp8InputRole("linear", 0, 2), Fp8Role::RowTiles);
  EXPECT_EQ(fp8InputRole("linear", 1, 2), Fp8Role::Blocks);
  EXPECT_EQ(fp8InputRole("linear_wgrad", 1, 2), Fp8Role::ColumnTiles);
  // expert_ffn_wgrad: [dy, rows, counts, 3 weights per expert, 2 saved]. The
  // fused FFNs quantize their activations per GEMM themselves (FfnFp8Test).
  EXPECT_EQ(fp8InputRole("expert_ffn_wgrad", 0, 11), std::nullopt);
  EXPECT_EQ(fp8InputRole("expert_ffn_wgrad", 1, 11), std::nullopt);
  EXPECT_EQ(fp8InputRole("expert_ffn_wgrad", 2, 11), std::nullopt);
  EXPECT_EQ(fp8InputRole("expert_ffn_wgrad", 8, 11), Fp8Role::Blocks);
  EXPECT_EQ(fp8InputRole("expert_ffn_wgrad", 9, 11), std::nullopt);
  EXPECT_EQ(fp8InputRole("shared_experts", 0, 4), std::nullopt);
  EXPECT_EQ(fp8InputRole("shared_experts", 3, 4), Fp8Role::Blocks);
  EXPECT_EQ(fp8InputRole("shared_experts_grad", 1, 7), std::nullopt);
  EXPECT_EQ(fp8InputRole("shared_experts_grad", 2, 7), Fp8Role::Blocks);
  EXPECT_EQ(fp8InputRole("shared_experts_grad", 5, 7), std::nullopt);
  EXPECT_EQ(fp8InputRole("rms_norm", 0, 2), std::nullopt);
}

} // namespace
} // namespace dsflow::exec
