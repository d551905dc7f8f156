//===- CublasLtGemm.h - The plan's GEMMs through cuBLASLt -------*- C++ -*-===//
//
// The CUDA backend's GEMMs: y [m, n] = x [m, k] w [n, k]^T in row-major
// storage, as the CPU backend's linear (runtime/backends/cpu/Kernels.h):
//  - BF16 operands and output, FP32 accumulation;
//  - DeepSeek-V3's FP8 recipe: E4M3 operands, x scaled per 1x128 tile and w
//    per 128x128 block (CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F and
//    BLK128x128_32F, cuBLASLt >= 12.9, Hopper), BF16 output. cuBLASLt applies
//    each K chunk's two scales as it promotes the chunk into the FP32
//    accumulator, which is what cpu::fp8GemmBlockScaled computes;
//  - grouped: one GEMM per MoE expert over its rows, issued back to back on
//    one stream with one descriptor (cuBLASLt 13.1 has no grouped call).
//
// Row-major y = x w^T is column-major y^T = w x^T, so cuBLASLt's A is w
// (transposed) and its B is x: the "TN" layout FP8 requires, K contiguous in
// both operands.
//
// Scale layouts. The CPU backend stores x's scales as [m][ceil(k/128)] and
// w's as [ceil(n/128)][ceil(k/128)] (runtime/backends/cpu/Fp8.h). cuBLASLt
// reads a VEC128 operand's scales with the outer dimension fastest,
// [ceil(k/128)][m], and a BLK128x128 operand's with K fastest and each row
// padded to a multiple of 4, [ceil(n/128)][round_up(ceil(k/128), 4)]: the
// two functions below convert.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_BACKENDS_CUDA_CUBLASLTGEMM_H
#define DSFLOW_RUNTIME_BACKENDS_CUDA_CUBLASLTGEMM_H

#include "io/Status.h"
#include "runtime/backends/cuda/GemmLayout.h"

#include <cstdint>
#include <memory>
#include <vector>

namespace dsflow::cuda {

/// x's 1x128 tile scales, [m][tiles] as the CPU stores them, in cuBLASLt's
/// VEC128_32F order [tiles][m].
std::vector<float> cublasTileScales(const float *scales, int64_t m, int64_t k);

/// w's 128x128 block scales, [nBlocks][kBlocks] as the CPU stores them, in
/// cuBLASLt's BLK128x128_32F order (each row padded to a multiple of 4 with
/// ones).
std::vector<float> cublasBlockScales(const float *scales, int64_t n, int64_t k);

/// One group of a grouped GEMM: rows [first, first + rows) of x and y, and
/// the group's weight (and block scales).
struct GemmGroup {
  int64_t firstRow = 0;
  int64_t rows = 0;
  const void *weight = nullptr;
  const float *weightScales = nullptr;
};

/// The operands of a general GEMM and how it multiplies (FP32 accumulation
/// all): FP32 on the FP32 units; FP32 operands on the tensor cores rounded to
/// TF32 (CUBLAS_COMPUTE_32F_FAST_TF32: about 1e-3 relative, several times
/// faster); BF16.
enum class GemmPrecision {
  Fp32,
  Tf32,
  Bf16,
  /// BF16 operands, FP32 C and D (torch.autocast's BF16 GEMMs).
  Bf16Fp32Out
};

class CublasLtGemm {
public:
  /// A cuBLASLt handle and a device workspace of `workspaceBytes`. With
  /// `tune`, the first GEMM of each kind and shape times the heuristic's
  /// best 8 algorithms on its own operands and keeps the fastest (so it
  /// synchronizes its stream, and must not run under graph capture); else
  /// the heuristic's first choice is used. Tuning gave no consistent gain
  /// at DeepSeek-V3's shapes on an H100 (bench/results/cuda-h100), so it is
  /// off by default.
  static io::Expected<std::unique_ptr<CublasLtGemm>>
  create(size_t workspaceBytes = size_t(32) << 20, bool tune = false);
  ~CublasLtGemm();
  CublasLtGemm(const CublasLtGemm &) = delete;
  CublasLtGemm &operator=(const CublasLtGemm &) = delete;

  /// y = x w^T, BF16 (device pointers to __nv_bfloat16), on `stream`
  /// (a cudaStream_t; null for the default stream).
  io::Status bf16(const void *x, const void *w, void *y, int64_t m, int64_t n,
                  int64_t k, void *stream = nullptr);

  /// y = x w^T from E4M3 codes qx [m, k] and qw [n, k] with scales in
  /// cuBLASLt's order (cublasTileScales, cublasBlockScales); y BF16.
  io::Status fp8BlockScaled(const void *qx, const float *xScales,
                            const void *qw, const float *wScales, void *y,
                            int64_t m, int64_t n, int64_t k,
                            void *stream = nullptr);

  /// Row-major c [m, n] (FP32) = x [m, k] w [n, k]^T + beta c from E4M3
  /// codes qx and qw, K contiguous in both: x scaled per 1x128 tile
  /// ([tiles(k)][m], VEC128 order), w per 128x128 block (cublasBlockScales'
  /// order) or, with wTiles, per 1x128 tile too ([tiles(k)][n]; a weight
  /// gradient's operands, both contracted over the tokens). Each K chunk's
  /// products are promoted into the FP32 accumulator with its two scales.
  /// False, with nothing run, when cuBLASLt has no algorithm for it (the
  /// caller computes it another way).
  io::Expected<bool> fp8Fp32Out(const void *qx, const float *xScales,
                                const void *qw, const float *wScales,
                                bool wTiles, float beta, float *c, int64_t m,
                                int64_t n, int64_t k, void *stream = nullptr);

  /// The grouped forms: for each group, y[rows] = x[rows] weight^T, with x
  /// [total rows, k] and y [total rows, n]. For FP8, xScales are per group in
  /// cuBLASLt's order, stored one group after another (group g's at offset
  /// tiles(k) * firstRow).
  io::Status groupedBf16(const void *x, const std::vector<GemmGroup> &groups,
                         void *y, int64_t n, int64_t k, void *stream = nullptr);
  io::Status groupedFp8(const void *qx, const float *xScales,
                        const std::vector<GemmGroup> &groups, void *y,
                        int64_t n, int64_t k, void *stream = nullptr);

  /// Row-major C = alpha op(A) op(B) + beta C on device operands, as
  /// cpu::detail::gemm computes it (GemmLayout.h): the linear layers'
  /// GEMMs with their transposes, leading dimensions and accumulation.
  /// FP32 operands compute in full FP32 (no TF32), as the CPU backend does.
  io::Status general(GemmPrecision precision, const RowMajorGemm &g,
                     float alpha, const void *a, const void *b, float beta,
                     void *c, void *stream = nullptr);

private:
  CublasLtGemm() = default;
  struct State;
  std::unique_ptr<State> state;
};

} // namespace dsflow::cuda

#endif // DSFLOW_RUNTIME_BACKENDS_CUDA_CUBLASLTGEMM_H
