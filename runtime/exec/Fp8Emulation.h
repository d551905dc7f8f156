//===- Fp8Emulation.h - FP8 GEMM operands on the CPU backend ----*- C++ -*-===//
//
// A kernel marked graph.fp8 (the dsflow-fp8-cast pass) computes from its GEMM
// operands quantized to E4M3 and back: activations per 1x128 tile along the
// contraction (128x1 along the tokens in weight gradients), weights per 128x128
// block, with runtime/backends/cpu/Fp8.h. The fused FFN kernels (routed and
// shared experts) quantize their activation operands themselves, per inner
// GEMM (the SwiGLU output included); here only their weights are. The kernel
// itself then runs in FP32, so the products of the dequantized values are
// accumulated in FP32 (what the promotion every 128 elements of K achieves).
// Dispatch rows are quantized after the dispatch (FP8 dispatch, cached for the
// experts' backward); combine reads its rows rounded to BF16.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_EXEC_FP8EMULATION_H
#define DSFLOW_RUNTIME_EXEC_FP8EMULATION_H

#include "schemas/plan.pb.h"

#include <cstdint>
#include <optional>
#include <string>

namespace dsflow::exec {

enum class Fp8Role {
  /// An activation quantized per 1x128 tile along its last dimension.
  RowTiles,
  /// An activation quantized per 128x1 tile along its first dimensions (the
  /// contraction of a weight gradient runs over the tokens).
  ColumnTiles,
  /// A weight quantized per 128x128 block.
  Blocks,
  /// Rounded to BF16 (combine's rows).
  Bf16,
};

/// The role of input `input` of an FP8-marked kernel of op `op`, if quantized.
/// `numInputs` locates the experts' weights.
std::optional<Fp8Role> fp8InputRole(const std::string &op, int input,
                                    int numInputs);

/// How a kernel's operands are emulated, from its attributes: the FP8 recipe
/// (graph.fp8.format = e4m3, graph.fp8.scales = ue8m0 for power-of-two
/// scales), or input 0 rounded to BF16 (graph.precision = bf16). Every
/// backend emulates through this (the CPU binding, the CUDA runtime).
struct KernelEmulation {
  bool fp8 = false, ue8m0 = false, bf16Input = false;
  /// An FP8 format other than e4m3 was named (the kernel is refused).
  bool unsupportedFormat = false;
  static KernelEmulation of(const Kernel &kernel);
  /// How input `input` of `kernel` is read (nullopt: as it is).
  std::optional<Fp8Role> inputRole(const Kernel &kernel, int input) const;
  /// Whether output 0 is quantized per 1x128 tile after the kernel runs:
  /// FP8 dispatch, whose rows the experts' backward reads.
  bool quantizesRowsAfter(const Kernel &kernel) const;
};

/// y = dequantize(quantize(x)) for x viewed as [rows, cols], in `role`'s
/// tiling.
template <typename T>
void fakeQuantize(const T *x, T *y, int64_t rows, int64_t cols, Fp8Role role,
                  bool ue8m0);

} // namespace dsflow::exec

#endif // DSFLOW_RUNTIME_EXEC_FP8EMULATION_H
