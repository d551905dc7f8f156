//===- Fp8LinearSteps.cpp - Linear layers' GEMMs on FP8 tensor cores -----===//
#include "runtime/backends/cuda/Fp8LinearSteps.h"

namespace dsflow::cuda {

namespace {
int64_t tiles(int64_t size) { return (size + 127) / 128; }
} // namespace

bool Fp8Operand::transposed() const {
  return how == Fp8Quantization::ColumnsTransposed ||
         how == Fp8Quantization::BlocksTransposed;
}

bool Fp8Operand::blockScaled() const {
  return how == Fp8Quantization::Blocks ||
         how == Fp8Quantization::BlocksTransposed;
}

int64_t Fp8Operand::outer() const { return transposed() ? cols : rows; }

int64_t Fp8Operand::depth() const { return transposed() ? rows : cols; }

int64_t Fp8Operand::scaleCount() const {
  if (blockScaled())
    return tiles(outer()) * ((tiles(depth()) + 3) / 4 * 4);
  return tiles(depth()) * outer();
}

std::optional<Fp8Gemm> fp8LinearGemm(const std::string &op, int64_t tokens,
                                     int64_t out, int64_t in) {
  using Q = Fp8Quantization;
  Fp8Gemm g;
  if (op == "linear") // [x, W] -> y
    g = {{0, Q::Rows, tokens, in}, {1, Q::Blocks, out, in}, tokens, out};
  else if (op == "linear_grad") // [dy, W] -> dx
    g = {{0, Q::Rows, tokens, out},
         {1, Q::BlocksTransposed, out, in},
         tokens,
         in};
  else if (op == "linear_wgrad") // [dy, x] -> dW
    g = {{0, Q::ColumnsTransposed, tokens, out},
         {1, Q::ColumnsTransposed, tokens, in},
         out,
         in};
  else
    return std::nullopt;
  g.k = g.x.paddedDepth();
  // The gradients add into their outputs.
  g.beta = op == "linear" ? 0.0f : 1.0f;
  return g;
}

bool fp8GemmSizesSupported(const Fp8Gemm &g) {
  return g.n % 4 == 0 && g.m > 0 && g.n > 0 && g.k > 0;
}

} // namespace dsflow::cuda
