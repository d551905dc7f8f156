//===- Fp8LinearStepsTest.cpp - Linear layers' FP8 GEMMs on the host ------===//
//
// The CUDA runtime runs an FP8 linear layer's GEMMs as Fp8LinearSteps.h
// describes: each operand quantized (maybe transposed) into E4M3 codes and
// scales in cuBLASLt's order, then one block-scaled GEMM. Here those steps
// run on the host: the operands quantized by the CPU backend's own
// quantizers, the GEMM computed as cuBLASLt documents it (each 128-long K
// chunk's products of decoded codes, times the chunk's two scales, summed in
// FP32 or better). The result must be the CPU backend's emulation of the
// kernel (operands quantized and dequantized as exec::fp8InputRole says,
// then an FP32 GEMM) up to rounding, for the forward and both gradients, at
// sizes with partial tiles. And the scale positions the device kernels
// write (CudaNumerics.inc) must be where cublasTileScales and
// cublasBlockScales, checked against cuBLASLt on an H100, put them.
//
//===----------------------------------------------------------------------===//
#include "runtime/backends/cuda/Fp8LinearSteps.h"
#include "exec/Fp8Emulation.h"
#include "runtime/backends/cpu/Fp8.h"
#include "runtime/backends/cpu/LinearGemms.h"
#include "runtime/backends/cuda/CublasLtGemm.h"
#include "runtime/cuda/Fp8OnHost.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

namespace dsflow::cuda {
namespace {

using namespace fp8_on_host;

/// Row-major C = alpha op(A) op(B) + beta C in double, as cpu::detail::gemm
/// takes it.
struct ReferenceGemm {
  void operator()(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
                  float alpha, const float *a, int64_t lda, const float *b,
                  int64_t ldb, float beta, float *c, int64_t ldc) const {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double sum = 0;
        for (int64_t p = 0; p < k; ++p)
          sum += double(transA ? a[p * lda + i] : a[i * lda + p]) *
                 (transB ? b[j * ldb + p] : b[p * ldb + j]);
        c[i * ldc + j] = float(alpha * sum + beta * c[i * ldc + j]);
      }
  }
};

Matrix randomMatrix(int64_t rows, int64_t cols, std::mt19937 &rng) {
  std::normal_distribution<float> normal(0, 1);
  Matrix m(size_t(rows * cols));
  for (float &v : m)
    v = normal(rng);
  // An outlier channel, as real activations have.
  for (int64_t r = 0; r < rows; ++r)
    m[size_t(r * cols + cols / 3)] *= 40;
  return m;
}

class Fp8LinearSteps : public ::testing::TestWithParam<const char *> {};

TEST_P(Fp8LinearSteps, MatchTheCpuEmulation) {
  const std::string op = GetParam();
  // Partial tiles along every dimension; K padded to 16 in the forward (in),
  // the weight gradient (tokens) and not in the activation gradient (out).
  const int64_t tokens = 150, out = 144, in = 268;
  std::mt19937 rng(5);
  // The kernel's inputs as the plan orders them, and its starting output.
  std::vector<Matrix> inputs;
  std::vector<std::pair<int64_t, int64_t>> shapes;
  int64_t outRows = 0, outCols = 0;
  if (op == "linear")
    shapes = {{tokens, in}, {out, in}}, outRows = tokens, outCols = out;
  else if (op == "linear_grad")
    shapes = {{tokens, out}, {out, in}}, outRows = tokens, outCols = in;
  else
    shapes = {{tokens, out}, {tokens, in}}, outRows = out, outCols = in;
  for (auto [rows, cols] : shapes)
    inputs.push_back(randomMatrix(rows, cols, rng));
  Matrix start = randomMatrix(outRows, outCols, rng);

  // The CPU backend: each input through its emulation role, an FP32 GEMM.
  std::vector<Matrix> emulated = inputs;
  for (int i = 0; i < 2; ++i) {
    std::optional<exec::Fp8Role> role = exec::fp8InputRole(op, i, 2);
    ASSERT_TRUE(role);
    exec::fakeQuantize(inputs[size_t(i)].data(), emulated[size_t(i)].data(),
                       shapes[size_t(i)].first, shapes[size_t(i)].second, *role,
                       false);
  }
  Matrix want = start;
  const float *a = emulated[0].data(), *b = emulated[1].data();
  if (op == "linear")
    cpu::linearForwardWith(ReferenceGemm{}, a, b, want.data(), tokens, out, in);
  else if (op == "linear_grad")
    cpu::linearBackwardBWith(ReferenceGemm{}, a, b, want.data(), tokens, out,
                             in);
  else
    cpu::linearBackwardWWith(ReferenceGemm{}, a, b, want.data(), tokens, out,
                             in);

  // The runtime's steps.
  std::optional<Fp8Gemm> g = fp8LinearGemm(op, tokens, out, in);
  ASSERT_TRUE(g);
  EXPECT_TRUE(fp8GemmSizesSupported(*g));
  EXPECT_EQ(g->m, outRows);
  EXPECT_EQ(g->n, outCols);
  for (const Fp8Operand *o : {&g->x, &g->w}) {
    EXPECT_EQ(o->rows, shapes[size_t(o->input)].first);
    EXPECT_EQ(o->cols, shapes[size_t(o->input)].second);
    EXPECT_EQ(o->paddedDepth(), g->k);
  }
  HostOperand x = quantizeOnHost(g->x, inputs[size_t(g->x.input)].data());
  HostOperand w = quantizeOnHost(g->w, inputs[size_t(g->w.input)].data());
  Matrix got = start;
  gemmOnHost(*g, x, w, got.data());
  EXPECT_LT(relativeError(got, want), 1e-6) << op;
}

INSTANTIATE_TEST_SUITE_P(ForwardAndGradients, Fp8LinearSteps,
                         ::testing::Values("linear", "linear_grad",
                                           "linear_wgrad"));

TEST(Fp8LinearSteps, OnlyTheLinearLayersAndSizesCublasTakes) {
  EXPECT_FALSE(fp8LinearGemm("mtp_project", 128, 128, 128));
  EXPECT_FALSE(fp8LinearGemm("expert_ffn", 128, 128, 128));
  // Any K and M (the codes' rows are padded); the FP32 output's rows 16-byte
  // aligned.
  EXPECT_TRUE(fp8GemmSizesSupported(*fp8LinearGemm("linear", 100, 128, 40)));
  EXPECT_EQ(fp8LinearGemm("linear", 100, 128, 40)->k, 48);
  EXPECT_EQ(fp8LinearGemm("linear_wgrad", 37, 128, 40)->k, 48);
  EXPECT_FALSE(fp8GemmSizesSupported(*fp8LinearGemm("linear", 128, 130, 128)));
  EXPECT_FALSE(
      fp8GemmSizesSupported(*fp8LinearGemm("linear_grad", 8, 128, 42)));
  EXPECT_FALSE(fp8GemmSizesSupported(*fp8LinearGemm("linear", 0, 128, 128)));
}

TEST(Fp8LinearSteps, DeviceScalePositionsAreCublasOrder) {
  // Distinct scale values, in the CPU's order, and where the device
  // kernels write each.
  const int64_t rows = 300, cols = 520;
  std::vector<float> tileScales(size_t(rows * tiles(cols)));
  for (size_t i = 0; i < tileScales.size(); ++i)
    tileScales[i] = float(i + 2);
  std::vector<float> cublas = cublasTileScales(tileScales.data(), rows, cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t t = 0; t < tiles(cols); ++t)
      ASSERT_EQ(cublas[size_t(dsflow_rt::tileScaleAt(r, t, rows))],
                tileScales[size_t(r * tiles(cols) + t)]);

  std::vector<float> blockScales(size_t(tiles(rows) * tiles(cols)));
  for (size_t i = 0; i < blockScales.size(); ++i)
    blockScales[i] = float(i + 2);
  cublas = cublasBlockScales(blockScales.data(), rows, cols);
  Fp8Operand blocks{0, Fp8Quantization::Blocks, rows, cols};
  ASSERT_EQ(int64_t(cublas.size()), blocks.scaleCount());
  std::vector<bool> written(cublas.size());
  for (int64_t rb = 0; rb < tiles(rows); ++rb)
    for (int64_t cb = 0; cb < tiles(cols); ++cb) {
      int64_t at = dsflow_rt::blockScaleAt(rb, cb, tiles(cols));
      ASSERT_EQ(cublas[size_t(at)], blockScales[size_t(rb * tiles(cols) + cb)]);
      written[size_t(at)] = true;
    }
  // The rest is padding, which the device kernel sets to 1 as cuBLASLt's
  // converter does.
  for (size_t i = 0; i < cublas.size(); ++i)
    if (!written[i])
      EXPECT_EQ(cublas[i], 1.0f) << i;
  EXPECT_EQ(dsflow_rt::blockScaleRow(tiles(cols)) * tiles(rows),
            blocks.scaleCount());
}

} // namespace
} // namespace dsflow::cuda
