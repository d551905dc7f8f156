//===- FfnFp8Test.cpp - The FP8 recipe inside the fused SwiGLU FFNs -------===//
//
// With `fp8` set, every GEMM inside the FFN reads its activation operand
// quantized in that GEMM's tiling. The expected values are composed here from
// the single GEMMs and fakeQuantizeFp8, so any missed or mis-tiled operand
// changes bits.
//
//===----------------------------------------------------------------------===//
#include "runtime/backends/cpu/Fp8.h"
#include "test/runtime/cpu/TestUtil.h"

namespace dsflow::cpu::test {
namespace {

// 130 tokens cross a 128-row band, hidden 136 crosses a 128-column tile.
struct Fp8FfnCase {
  int64_t tokens = 130, hidden = 136, inter = 40;
  Vec x, gate, up, down, dy;
  Fp8ScaleOptions options;

  Fp8FfnCase() {
    std::mt19937 rng(170);
    x = randomVec(tokens * hidden, rng);
    gate = randomVec(inter * hidden, rng);
    up = randomVec(inter * hidden, rng);
    down = randomVec(hidden * inter, rng);
    dy = randomVec(tokens * hidden, rng);
  }
  Vec quantized(const Vec &v, int64_t cols, Fp8Tiling tiling) const {
    Vec q(v.size());
    fakeQuantizeFp8(v.data(), q.data(), int64_t(v.size()) / cols, cols, tiling,
                    options);
    return q;
  }
  Vec rowTiles(const Vec &v, int64_t cols) const {
    return quantized(v, cols, Fp8Tiling::Tiles1x128);
  }
  Vec columnTiles(const Vec &v, int64_t cols) const {
    return quantized(v, cols, Fp8Tiling::Tiles128x1);
  }
};

TEST(FfnFp8, EveryGemmReadsQuantizedActivations) {
  Fp8FfnCase c;
  int64_t n = c.tokens, h = c.hidden, i = c.inter;
  // Expected, one GEMM at a time.
  Vec xq = c.rowTiles(c.x, h), g(n * i), u(n * i), act(n * i), y(n * h);
  linearForward(xq.data(), c.gate.data(), g.data(), n, i, h);
  linearForward(xq.data(), c.up.data(), u.data(), n, i, h);
  swigluForward(g.data(), u.data(), act.data(), n * i);
  Vec actQ = c.rowTiles(act, i);
  linearForward(actQ.data(), c.down.data(), y.data(), n, h, i);

  Vec dyQ = c.rowTiles(c.dy, h), dAct(n * i, 0.0), dG(n * i, 0.0),
      dU(n * i, 0.0), dx(n * h, 0.0);
  linearBackwardB(dyQ.data(), c.down.data(), dAct.data(), n, h, i);
  swigluBackward(dAct.data(), g.data(), u.data(), dG.data(), dU.data(), n * i);
  Vec dGq = c.rowTiles(dG, i), dUq = c.rowTiles(dU, i);
  linearBackwardB(dGq.data(), c.gate.data(), dx.data(), n, i, h);
  linearBackwardB(dUq.data(), c.up.data(), dx.data(), n, i, h);

  Vec dGate(i * h, 0.0), dUp(i * h, 0.0), dDown(h * i, 0.0);
  Vec dyT = c.columnTiles(c.dy, h), actT = c.columnTiles(act, i),
      xT = c.columnTiles(c.x, h), dGT = c.columnTiles(dG, i),
      dUT = c.columnTiles(dU, i);
  linearBackwardW(dyT.data(), actT.data(), dDown.data(), n, h, i);
  linearBackwardW(dGT.data(), xT.data(), dGate.data(), n, i, h);
  linearBackwardW(dUT.data(), xT.data(), dUp.data(), n, i, h);

  // The fused kernels.
  Vec gotY(n * h), savedG(n * i), savedU(n * i), gotDx(n * h, 0.0),
      gotDGate(i * h, 0.0), gotDUp(i * h, 0.0), gotDDown(h * i, 0.0);
  sharedExpertsForward(c.x.data(), c.gate.data(), c.up.data(), c.down.data(),
                       gotY.data(), savedG.data(), savedU.data(), n, h, i,
                       &c.options);
  sharedExpertsBackwardB(c.dy.data(), c.gate.data(), c.up.data(), c.down.data(),
                         savedG.data(), savedU.data(), gotDx.data(), n, h, i,
                         &c.options);
  sharedExpertsBackwardW(c.dy.data(), c.x.data(), c.down.data(), savedG.data(),
                         savedU.data(), gotDGate.data(), gotDUp.data(),
                         gotDDown.data(), n, h, i, &c.options);
  EXPECT_EQ(savedG, g);
  EXPECT_EQ(gotY, y);
  EXPECT_EQ(gotDx, dx);
  EXPECT_EQ(gotDGate, dGate);
  EXPECT_EQ(gotDUp, dUp);
  EXPECT_EQ(gotDDown, dDown);

  // And FP8 is not a no-op: within E4M3's precision of the exact FFN.
  Vec exactY(n * h), exactG(n * i), exactU(n * i);
  sharedExpertsForward(c.x.data(), c.gate.data(), c.up.data(), c.down.data(),
                       exactY.data(), exactG.data(), exactU.data(), n, h, i);
  EXPECT_NE(exactY, gotY);
  EXPECT_TRUE(closeRel(gotY, exactY, 0.1));
}

// Routed experts tile each expert's rows on their own in the weight
// gradients (128x1 tiles never mix two experts' tokens).
TEST(FfnFp8, RoutedExpertsTileEachExpertSeparately) {
  Fp8FfnCase c;
  int64_t h = c.hidden, i = c.inter, n = c.tokens;
  std::vector<int32_t> counts = {70, 60};
  Vec gate2 = concat({c.gate, c.gate}), up2 = concat({c.up, c.up}),
      down2 = concat({c.down, c.down});
  std::vector<const double *> gates = {gate2.data(), gate2.data() + i * h},
                              ups = {up2.data(), up2.data() + i * h},
                              downs = {down2.data(), down2.data() + h * i};
  Vec y(n * h), savedG(n * i), savedU(n * i);
  ASSERT_OK(expertFfnForward(c.x.data(), counts.data(), gates.data(),
                             ups.data(), downs.data(), y.data(), savedG.data(),
                             savedU.data(), n, 2, h, i, &c.options));
  Vec dGate(2 * i * h, 0.0), dUp(2 * i * h, 0.0), dDown(2 * h * i, 0.0);
  std::vector<double *> dGates = {dGate.data(), dGate.data() + i * h},
                        dUps = {dUp.data(), dUp.data() + i * h},
                        dDowns = {dDown.data(), dDown.data() + h * i};
  ASSERT_OK(expertFfnBackwardW(c.dy.data(), c.x.data(), counts.data(),
                               downs.data(), savedG.data(), savedU.data(),
                               dGates.data(), dUps.data(), dDowns.data(), n, 2,
                               h, i, &c.options));
  // Expert 1 alone: its 60 rows through the shared-expert kernel.
  int64_t first = counts[0], rows = counts[1];
  Vec x1(c.x.begin() + first * h, c.x.end()),
      dy1(c.dy.begin() + first * h, c.dy.end());
  Vec y1(rows * h), g1(rows * i), u1(rows * i), dGate1(i * h, 0.0),
      dUp1(i * h, 0.0), dDown1(h * i, 0.0);
  sharedExpertsForward(x1.data(), c.gate.data(), c.up.data(), c.down.data(),
                       y1.data(), g1.data(), u1.data(), rows, h, i, &c.options);
  sharedExpertsBackwardW(dy1.data(), x1.data(), c.down.data(), g1.data(),
                         u1.data(), dGate1.data(), dUp1.data(), dDown1.data(),
                         rows, h, i, &c.options);
  EXPECT_EQ(Vec(y.begin() + first * h, y.end()), y1);
  EXPECT_EQ(Vec(dDown.begin() + h * i, dDown.end()), dDown1);
  EXPECT_EQ(Vec(dGate.begin() + i * h, dGate.end()), dGate1);
}

} // namespace
} // namespace dsflow::cpu::test
