//===- Fp8FfnGemmsTest.cpp - The FFNs' FP8 GEMMs on the host --------------===//
//
// The CUDA runtime's FFN engine sends each GEMM of runtime/backends/cpu/
// FfnSteps.h to the FP8 tensor cores through Fp8FfnGemms.h. Here an engine
// with the same mapping executes those GEMMs on the host (Fp8OnHost.h) and
// must reproduce the CPU backend's FP8 FFN (the shared experts' kernels,
// which quantize each inner GEMM's activation, with the weights quantized
// per 128x128 block as the binding does) up to rounding: forward,
// activation gradient and weight gradients, at sizes with partial tiles and
// K padded. A GEMM the tensor cores refuse falls back to the emulation with
// the weight quantized there, and gives bitwise the CPU's results.
//
//===----------------------------------------------------------------------===//
#include "runtime/backends/cuda/Fp8FfnGemms.h"
#include "exec/Fp8Emulation.h"
#include "runtime/backends/cpu/FfnSteps.h"
#include "runtime/cuda/Fp8OnHost.h"
#include "unit/HostFfnBasics.h"

#include <gtest/gtest.h>

#include <random>

namespace dsflow::cuda {
namespace {

using namespace fp8_on_host;

class HostFp8Engine;
using EmulatedHostGemms =
    cpu::EmulatedFfnGemms<HostFp8Engine, const float *, float *>;

/// The device engine's FP8 choices (DeviceFfn.cpp) on the host.
class HostFp8Engine : public HostFfnBasics,
                      public Fp8FfnGemms<HostFp8Engine, EmulatedHostGemms,
                                         const float *, float *> {
public:
  /// `refuse`: every GEMM behaves as one cuBLASLt has no algorithm for.
  explicit HostFp8Engine(bool refuse) : refuse(refuse) {}
  const float *readCopy(const float *x, int64_t rows, int64_t cols,
                        bool overRows) {
    float *copy = scratch(rows * cols);
    exec::fakeQuantize(
        x, copy, rows, cols,
        overRows ? exec::Fp8Role::ColumnTiles : exec::Fp8Role::RowTiles, false);
    return copy;
  }
  bool fp8Linear(const Fp8Gemm &g, const float *x, const float *w, float *c) {
    if (refuse)
      return false;
    gemmOnHost(g, quantizeOnHost(g.x, x), quantizeOnHost(g.w, w), c);
    return true;
  }
  /// As the device's fused function: act = silu(g) * u, then quantized.
  bool fp8SwigluLinear(const Fp8Gemm &g, const float *gate, const float *up,
                       const float *w, float *c) {
    if (refuse)
      return false;
    float *act = scratch(g.x.rows * g.x.cols);
    cpu::swigluForward(gate, up, act, g.x.rows * g.x.cols);
    return fp8Linear(g, act, w, c);
  }
  const float *blockQuantized(const float *w, int64_t rows, int64_t cols) {
    float *copy = scratch(rows * cols);
    exec::fakeQuantize(w, copy, rows, cols, exec::Fp8Role::Blocks, false);
    return copy;
  }
  void counted(bool onTensorCores) {
    ++(onTensorCores ? tensorCoreGemms : emulatedGemms);
  }
  int tensorCoreGemms = 0, emulatedGemms = 0;

private:
  bool refuse;
};

Matrix randomMatrix(int64_t rows, int64_t cols, std::mt19937 &rng,
                    float scale) {
  std::normal_distribution<float> normal(0, scale);
  Matrix m(size_t(rows * cols));
  for (float &v : m)
    v = normal(rng);
  return m;
}

class Fp8FfnGemms : public ::testing::TestWithParam<bool> {};

TEST_P(Fp8FfnGemms, MatchTheCpuFp8Ffn) {
  const bool refuse = GetParam();
  // Rows as an expert gets them (no multiple of 16), K padded in the
  // forward (hidden) and in the weight gradients (rows).
  const int64_t n = 150, hidden = 136, inter = 200;
  std::mt19937 rng(9);
  Matrix x = randomMatrix(n, hidden, rng, 1);
  Matrix gate = randomMatrix(inter, hidden, rng, 0.1f);
  Matrix up = randomMatrix(inter, hidden, rng, 0.1f);
  Matrix down = randomMatrix(hidden, inter, rng, 0.1f);
  Matrix dy = randomMatrix(n, hidden, rng, 1);
  // The CPU backend: the binding's block-quantized weights, the kernels'
  // quantized activations.
  auto blocks = [](const Matrix &w, int64_t rows, int64_t cols) {
    Matrix q(w.size());
    exec::fakeQuantize(w.data(), q.data(), rows, cols, exec::Fp8Role::Blocks,
                       false);
    return q;
  };
  Matrix qGate = blocks(gate, inter, hidden), qUp = blocks(up, inter, hidden),
         qDown = blocks(down, hidden, inter);
  cpu::Fp8ScaleOptions options;
  Matrix y(size_t(n * hidden)), g(size_t(n * inter)), u(size_t(n * inter));
  cpu::sharedExpertsForward(x.data(), qGate.data(), qUp.data(), qDown.data(),
                            y.data(), g.data(), u.data(), n, hidden, inter,
                            &options);
  Matrix dx(x.size()), dGate(gate.size()), dUp(up.size()), dDown(down.size());
  cpu::sharedExpertsBackwardB(dy.data(), qGate.data(), qUp.data(), qDown.data(),
                              g.data(), u.data(), dx.data(), n, hidden, inter,
                              &options);
  cpu::sharedExpertsBackwardW(dy.data(), x.data(), qDown.data(), g.data(),
                              u.data(), dGate.data(), dUp.data(), dDown.data(),
                              n, hidden, inter, &options);

  // The FFN steps with the FP8 engine, from the unquantized weights.
  HostFp8Engine e(refuse);
  // Refused GEMMs run the CPU's own emulation: bitwise its results.
  const double exact = refuse ? 0.0 : 1e-6, requantized = refuse ? 0.0 : 1e-3;
  Matrix y2(y.size()), g2(g.size()), u2(u.size());
  cpu::ffnForwardWith<HostFp8Engine, const float *, float *>(
      e, x.data(), gate.data(), up.data(), down.data(), y2.data(), g2.data(),
      u2.data(), n, hidden, inter);
  EXPECT_LE(relativeError(g2, g), exact);
  EXPECT_LE(relativeError(u2, u), exact);
  // The SwiGLU output is quantized again for the down projection: a
  // rounding difference in g or u can flip one E4M3 rounding.
  EXPECT_LE(relativeError(y2, y), requantized);
  Matrix dx2(x.size()), dGate2(gate.size()), dUp2(up.size()),
      dDown2(down.size());
  // From the CPU's saved pre-activations, so that only the GEMMs differ.
  cpu::ffnBackwardBWith<HostFp8Engine, const float *, float *>(
      e, dy.data(), gate.data(), up.data(), down.data(), g.data(), u.data(),
      dx2.data(), nullptr, false, n, hidden, inter);
  cpu::ffnBackwardWWith<HostFp8Engine, const float *, float *>(
      e, dy.data(), x.data(), down.data(), g.data(), u.data(), dGate2.data(),
      dUp2.data(), dDown2.data(), n, hidden, inter);
  EXPECT_LE(relativeError(dDown2, dDown), exact);
  // dG and dU come from dA = dy down, re-quantized: as y above.
  EXPECT_LE(relativeError(dx2, dx), requantized);
  EXPECT_LE(relativeError(dGate2, dGate), requantized);
  EXPECT_LE(relativeError(dUp2, dUp), requantized);
  // Forward 3, B-grad 3, W-grad 3 and its recomputed dA.
  EXPECT_EQ(e.tensorCoreGemms + e.emulatedGemms, 10);
  EXPECT_EQ(e.emulatedGemms, refuse ? 10 : 0);
}

TEST(Fp8FfnGemmsRows, AnExpertWithoutRowsComputesNothing) {
  HostFp8Engine e(false);
  std::vector<float> w(64 * 32, 1.0f), dw(w.size(), 2.0f);
  cpu::ffnForwardWith<HostFp8Engine, const float *, float *>(
      e, nullptr, w.data(), w.data(), w.data(), nullptr, nullptr, nullptr, 0,
      32, 64);
  cpu::ffnBackwardWWith<HostFp8Engine, const float *, float *>(
      e, nullptr, nullptr, w.data(), nullptr, nullptr, dw.data(), dw.data(),
      dw.data(), 0, 32, 64);
  EXPECT_EQ(e.tensorCoreGemms + e.emulatedGemms, 0);
  EXPECT_EQ(dw, std::vector<float>(w.size(), 2.0f)); // gradients untouched
}

INSTANTIATE_TEST_SUITE_P(TensorCoresAndRefused, Fp8FfnGemms,
                         ::testing::Values(false, true));

} // namespace
} // namespace dsflow::cuda
