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
  if (op == "linear") // [x, W] -> y
    return Fp8Gemm{{0, Q::Rows, tokens, in},
                   {1, Q::Blocks, out, in},
                   tokens,
                   out,
                   in,
                   0.0f};
  if (op == "linear_grad") // [dy, W] -> dx
    return Fp8Gemm{{0, Q::Rows, tokens, out},
                   {1, Q::BlocksTransposed, out, in},
                   tokens,
                   in,
                   out,
                   1.0f};
  if (op == "linear_wgrad") // [dy, x] -> dW
    return Fp8Gemm{{0, Q::ColumnsTransposed, tokens, out},
                   {1, Q::ColumnsTransposed, tokens, in},
                   out,
                   in,
                   tokens,
                   1.0f};
  return std::nullopt;
}

bool fp8GemmSizesSupported(const Fp8Gemm &g) {
  return g.m % 16 == 0 && g.n % 16 == 0 && g.k % 16 == 0 && g.m > 0 &&
         g.n > 0 && g.k > 0;
}

} // namespace dsflow::cuda
