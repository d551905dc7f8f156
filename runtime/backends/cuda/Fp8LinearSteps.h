//===- Fp8LinearSteps.h - Linear layers' FP8 GEMMs --------------*- C++ -*-===//
//
// Under DeepSeek-V3's FP8 recipe a linear layer's three GEMMs (forward,
// activation gradient, weight gradient) multiply E4M3 operands. cuBLASLt's
// FP8 GEMMs on Hopper take both operands with K contiguous ("TN"), so each
// operand is quantized from its FP32 buffer into codes laid out that way,
// transposing where the buffer has K along its rows:
//   forward  y [t, o]   = x [t, i] W [o, i]^T     x per 1x128 tile, W per block
//   gradient dx [t, i] += dy [t, o] W [o, i]       dy per 1x128, W^T per block
//   weights  dW [o, i] += dy [t, o]^T x [t, i]     dy^T and x^T per 1x128 along
//   t
// The tilings are the ones the CPU backend emulates (exec/Fp8Emulation.h):
// the weight gradient's 1x128 tiles along the tokens are its 128x1 tiles.
// Kept apart from the device code so that a host test executes these steps
// with cuBLASLt's documented semantics and compares them with the CPU
// backend's emulation (test/runtime/cuda/Fp8LinearStepsTest.cpp).
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_BACKENDS_CUDA_FP8LINEARSTEPS_H
#define DSFLOW_RUNTIME_BACKENDS_CUDA_FP8LINEARSTEPS_H

#include <cstdint>
#include <optional>
#include <string>

namespace dsflow::cuda {

/// How an FP8 GEMM operand is made from an FP32 buffer [rows, cols].
enum class Fp8Quantization {
  /// Codes [rows, cols], a scale per 1x128 tile: K along the columns.
  Rows,
  /// Codes [cols, rows] (the transpose), a scale per 128x1 tile of the
  /// buffer: K along its rows.
  ColumnsTransposed,
  /// Codes [rows, cols], a scale per 128x128 block: K along the columns.
  Blocks,
  /// Codes [cols, rows], the same blocks: K along the rows.
  BlocksTransposed,
};

/// One operand: kernel input `input`, a buffer [rows, cols].
struct Fp8Operand {
  int input = 0;
  Fp8Quantization how = Fp8Quantization::Rows;
  int64_t rows = 0, cols = 0;

  bool transposed() const;
  bool blockScaled() const;
  /// The codes' rows (the GEMM's M or N) and their length (K).
  int64_t outer() const;
  int64_t depth() const;
  /// The codes' row length: K rounded up to 16 (cuBLASLt's FP8 GEMMs want
  /// 16-byte aligned rows), the padding zero. A multiple of 16 never adds a
  /// 128-long K chunk, so the scales do not change.
  int64_t paddedDepth() const { return (depth() + 15) / 16 * 16; }
  int64_t codeBytes() const { return outer() * paddedDepth(); }
  /// cuBLASLt's scale array: VEC128 [tiles(K)][outer], or BLK128x128
  /// [tiles(outer)][tiles(K) padded to a multiple of 4].
  int64_t scaleCount() const;
};

/// c [m, n] (the kernel's output 0, FP32, row-major) = x w^T + beta c, from
/// the codes of x [m, k] and w [n, k], k being the operands' padded depth.
struct Fp8Gemm {
  Fp8Operand x, w;
  int64_t m = 0, n = 0, k = 0;
  float beta = 0;
};

/// The FP8 GEMM of `op` (linear, linear_grad, linear_wgrad) for a layer with
/// `tokens` rows of `in` inputs and `out` outputs (W [out, in]); nullopt for
/// other ops.
std::optional<Fp8Gemm> fp8LinearGemm(const std::string &op, int64_t tokens,
                                     int64_t out, int64_t in);

/// Whether cuBLASLt's FP8 GEMMs can take these sizes: 16-byte aligned rows
/// of the FP32 output (n a multiple of 4), none empty. (The codes' rows are
/// padded; whether cuBLASLt has an algorithm is known only when asked.)
bool fp8GemmSizesSupported(const Fp8Gemm &g);

} // namespace dsflow::cuda

#endif // DSFLOW_RUNTIME_BACKENDS_CUDA_FP8LINEARSTEPS_H
