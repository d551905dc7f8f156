//===- Fp8.h - FP8 (E4M3) numerics of the CPU reference backend -*- C++ -*-===//
//
// The numerics of DeepSeek-V3's fine-grained FP8 recipe (docs: the report's
// section 3.3; /work/shared/ANCHORS.md "FP8 recipe"), as reference kernels
// that the fp8-cast graph pass lowers to and that a CUDA backend is checked
// against:
//
//  - E4M3 conversion. The format is OCP's "e4m3fn" (CUDA's __NV_E4M3): 1 sign,
//    4 exponent bits with bias 7, 3 mantissa bits, no infinities, a single
//    NaN per sign (S.1111.111), largest finite 448, smallest normal 2^-6,
//    smallest subnormal 2^-9. Encoding rounds to nearest, ties to even, and
//    saturates: every finite value at or beyond 448 in magnitude, and +-inf,
//    become +-448 -- bit for bit what CUDA's
//    __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3) returns (checked
//    against cuda_fp8.h's host code on all 2^32 float bit patterns,
//    test/runtime/cpu/Fp8CudaOracleTest.cpp). NaN becomes the
//    positive NaN code 0x7F whatever its sign (CUDA canonicalizes NaN first).
//    Magnitudes at or below 2^-10 (half the smallest subnormal) become a
//    signed zero. The encoders do not read the floating-point environment.
//  - UE8M0: the unsigned power-of-two scale format (8 exponent bits, bias
//    127, 0xFF = NaN), for the "scales rounded up to powers of two" option.
//  - Fine-grained quantization: activations per 1x128 tile (one scale per
//    row and per 128 consecutive columns), weights per 128x128 block, and
//    per-tensor quantization for comparison; dequantization.
//  - A GEMM on quantized operands that emulates the recipe's accumulation:
//    the products of a 128-long K chunk are summed, then scaled and promoted
//    into an FP32 accumulator (see fp8GemmBlockScaled).
//
// Conventions (as runtime/backends/cpu/Kernels.h): contiguous row-major raw
// pointers, explicit int64_t sizes that are the caller's contract, outputs
// overwritten, templates explicitly instantiated for float and double.
//
// Scales. A scale s maps a real value x to the code q = E4M3(x / s); x is
// recovered as q * s (DeepSeek's checkpoints call s `weight_scale_inv`).
// Scales are FP32. For a group (tile, block or tensor) with max-abs `amax`,
// computed online from the data being quantized:
//    s = fl32(max(amax, amaxFloor) / 448)            (one rounding)
//    s = ue8m0Ceil(s)                                 (if ue8m0Scales)
//    s = 1                                            (if s == 0: a group of
//                                                      zeros, or an underflow)
// and each element is encoded as q = E4M3(fl_T(x / s)): the quotient rounded
// in the input type T (FP32 division for float input, as a GPU kernel would
// compute it; division, not multiplication by 1/s), then converted once.
// With power-of-two scales x / s is exact (barring FP32 subnormals). A
// non-finite element makes its group's scale inf or NaN (never rounded to a
// power of two) and the group's codes NaN or zero, which dequantize to NaN
// (0 * inf): the fault is not hidden.
//
// Partial tiles. When a dimension is not a multiple of 128, its last tile
// (or block) is shorter and holds only the valid elements; its amax is taken
// over those. This is what padding the tensor with zeros to a multiple of 128
// would give (DeepGEMM's layout), without storing the padding. Scale arrays
// have ceil(dim / 128) entries along each tiled dimension (fp8Tiles).
//
//===----------------------------------------------------------------------===//

#ifndef DSFLOW_RUNTIME_BACKENDS_CPU_FP8_H
#define DSFLOW_RUNTIME_BACKENDS_CPU_FP8_H

#include <cstdint>
#include <cstring>

namespace dsflow::cpu {

//===----------------------------------------------------------------------===//
// E4M3 and UE8M0 conversions
//===----------------------------------------------------------------------===//

/// The largest finite E4M3 value.
inline constexpr double kE4M3Max = 448.0;
/// The E4M3 code of NaN (the only NaN code produced; 0xFF also decodes NaN).
inline constexpr uint8_t kE4M3NaN = 0x7F;
/// The E4M3 code of +448 (OR 0x80 for -448).
inline constexpr uint8_t kE4M3MaxCode = 0x7E;

/// Round-to-nearest-even, saturating (SATFINITE) conversion to E4M3.
uint8_t floatToE4M3(float x);
/// The same from double, rounded once (no detour through float).
uint8_t doubleToE4M3(double x);
/// The value of an E4M3 code (exact in float; NaN for 0x7F and 0xFF).
float e4m3ToFloat(uint8_t code);
/// A float's bits and back (std::bit_cast before C++20).
inline uint32_t floatBits(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits;
}
inline float floatFromBits(uint32_t bits) {
  float v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

/// e4m3ToFloat(floatToE4M3(v)), computed without the code: v rounded to
/// E4M3's grid, nearest even, saturating at 448, NaN kept (as the quiet NaN).
/// The FP8 emulation's hot path, so it is branch-free and inline, and a loop
/// over it vectorizes: every case is computed and the right one selected.
/// Normal range: the mantissa rounded to 3 bits in place (as BF16 rounds to
/// 7). Below 2^-6 the grid is 2^-9 apart: |v| * 512 (exact) rounded to an
/// integer by adding and subtracting 1.5 * 2^23 (nearest even, since
/// |v| * 512 < 8), scaled back exactly, the sign put back. Fp8Test checks it
/// on every float.
inline float e4m3RoundTrip(float v) {
  uint32_t bits = floatBits(v);
  uint32_t sign = bits & 0x80000000u, abs = bits & 0x7FFFFFFFu;
  uint32_t normal = (abs + 0x7FFFFu + ((abs >> 20) & 1u)) & 0xFFF00000u;
  const float integerMagic = 12582912.0f; // 1.5 * 2^23
  float small = ((floatFromBits(abs) * 512.0f + integerMagic) - integerMagic) *
                (1.0f / 512.0f);
  uint32_t rounded = abs < 0x3C800000u ? floatBits(small) // 2^-6
                                       : normal;
  const uint32_t maxBits = 0x43E00000u; // 448.0f
  rounded = abs >= maxBits ? maxBits : rounded;
  rounded = abs > 0x7F800000u ? 0x7FC00000u : (rounded | sign); // NaN
  return floatFromBits(rounded);
}

/// The smallest power of two >= |s| representable in UE8M0, as a float:
/// 2^ceil(log2 |s|), clamped to [2^-127, 2^127] (0 gives 2^-127, values
/// above 2^127 and inf give 2^127); NaN stays NaN. Matches CUDA's
/// __nv_cvt_float_to_e8m0(s, __NV_SATFINITE, cudaRoundPosInf).
float ue8m0Ceil(float s);
/// The UE8M0 code of ue8m0Ceil(s): biased exponent (bias 127), 0xFF = NaN.
uint8_t floatToUe8m0Ceil(float s);
/// The value of a UE8M0 code: 2^(code - 127), NaN for 0xFF.
float ue8m0ToFloat(uint8_t code);

//===----------------------------------------------------------------------===//
// Quantization
//===----------------------------------------------------------------------===//

/// The tile edge of the recipe: activation tiles are 1 x 128, weight blocks
/// 128 x 128, and GEMM accumulation is promoted every 128 elements of K.
inline constexpr int64_t kFp8Tile = 128;

/// Number of tiles along a dimension of `size` elements: ceil(size / 128).
inline constexpr int64_t fp8Tiles(int64_t size) {
  return (size + kFp8Tile - 1) / kFp8Tile;
}

/// How scales are chosen (see the file comment).
struct Fp8ScaleOptions {
  /// Round every scale up to a power of two (UE8M0-representable).
  bool ue8m0Scales = false;
  /// A lower bound on each group's amax before dividing by 448 (0: none).
  /// DeepGEMM's reference quantizers use 1e-4.
  float amaxFloor = 0.0f;
};

/// The scale of a group with max-abs `amax` (the file comment's formula).
float fp8ScaleFromAmax(double amax, const Fp8ScaleOptions &options);

/// Activations x [rows, cols] -> codes q [rows, cols] and scales
/// [rows, fp8Tiles(cols)]: one scale per row and 128 consecutive columns.
template <typename T>
void quantizeFp8Tiles1x128(const T *x, uint8_t *q, float *scales, int64_t rows,
                           int64_t cols, const Fp8ScaleOptions &options);

/// x[r, c] = q[r, c] * scales[r, c / 128] (computed in double, rounded once).
template <typename T>
void dequantizeFp8Tiles1x128(const uint8_t *q, const float *scales, T *x,
                             int64_t rows, int64_t cols);

/// Activations x [rows, cols] contracted over the rows (a weight gradient's
/// operands) -> codes q [rows, cols] and scales [fp8Tiles(rows), cols]: one
/// scale per column and 128 consecutive rows.
template <typename T>
void quantizeFp8Tiles128x1(const T *x, uint8_t *q, float *scales, int64_t rows,
                           int64_t cols, const Fp8ScaleOptions &options);

/// x[r, c] = q[r, c] * scales[r / 128, c].
template <typename T>
void dequantizeFp8Tiles128x1(const uint8_t *q, const float *scales, T *x,
                             int64_t rows, int64_t cols);

/// Weights w [rows, cols] -> codes q [rows, cols] and scales
/// [fp8Tiles(rows), fp8Tiles(cols)]: one scale per 128x128 block.
template <typename T>
void quantizeFp8Blocks128x128(const T *w, uint8_t *q, float *scales,
                              int64_t rows, int64_t cols,
                              const Fp8ScaleOptions &options);

/// w[r, c] = q[r, c] * scales[r / 128, c / 128].
template <typename T>
void dequantizeFp8Blocks128x128(const uint8_t *q, const float *scales, T *w,
                                int64_t rows, int64_t cols);

/// How fakeQuantizeFp8 groups values under one scale.
enum class Fp8Tiling { Tiles1x128, Tiles128x1, Blocks128x128 };

/// y = dequantize(quantize(x)) for x [rows, cols] in `tiling` (y may be x):
/// the values a GEMM with this FP8 operand computes from. Bands of 128 rows
/// run in parallel; the result does not depend on the thread count.
template <typename T>
void fakeQuantizeFp8(const T *x, T *y, int64_t rows, int64_t cols,
                     Fp8Tiling tiling, const Fp8ScaleOptions &options);

/// x [count] -> codes q [count] and one scale for the whole tensor.
template <typename T>
void quantizeFp8PerTensor(const T *x, uint8_t *q, float *scale, int64_t count,
                          const Fp8ScaleOptions &options);

/// x[i] = q[i] * scale.
template <typename T>
void dequantizeFp8PerTensor(const uint8_t *q, float scale, T *x, int64_t count);

/// What checkFp8Codes finds in quantized data read from outside (an FP8
/// checkpoint's weights and weight_scale_inv, a plan's constants).
enum class Fp8DataStatus {
  Ok,
  /// A NaN code (0x7F or 0xFF).
  NanCode,
  /// A scale that is not a positive finite float.
  BadScale,
};

/// A one-line description of `status`, for error messages.
const char *toString(Fp8DataStatus status);

/// Checks codes [count] and scales [scaleCount] read from untrusted data.
[[nodiscard]] Fp8DataStatus checkFp8Data(const uint8_t *q, int64_t count,
                                         const float *scales,
                                         int64_t scaleCount);

//===----------------------------------------------------------------------===//
// GEMM on quantized operands: y [M, N] = x [M, K] W [N, K]^T
//===----------------------------------------------------------------------===//

/// How the products of a K chunk are accumulated before promotion.
struct Fp8GemmOptions {
  /// 0: each chunk's sum of E4M3 products is computed exactly (chunks of up
  /// to 2^17 elements) and rounded once to FP32 (the most an FP32 accumulator
  /// could hold; independent of the summation order). b in [1, 23]: a model of
  /// a narrower tensor-core accumulator (Hopper keeps about 14 bits,
  /// DeepSeek-V3 report 3.3.2): the products are added in increasing k, and
  /// after each addition the running sum is truncated toward zero to b mantissa
  /// bits after the leading one.
  int accumulatorBits = 0;
  /// Elements of K summed in the chunk accumulator before promotion: a
  /// multiple of 128, or 0 for "never" (one promotion at the end). Block
  /// scaling needs 128 (each chunk has its own scales); per-tensor scaling
  /// accepts any, which shows what the promotion is for.
  int64_t promoteEveryK = kFp8Tile;
};

/// The recipe's GEMM. qx/sx: activations quantized per 1x128 tile
/// (quantizeFp8Tiles1x128 of x [m, k]); qw/sw: weights quantized per 128x128
/// block (quantizeFp8Blocks128x128 of W [n, k]). For each output y[i, j] and
/// each K chunk c = [128c, 128c + 128) (the last one partial):
///    P_c  = sum over k in c of e4m3(qx[i, k]) * e4m3(qw[j, k])
///           (per Fp8GemmOptions::accumulatorBits; each product of two E4M3
///           values is exact in FP32)
///    acc  = fl32(acc + fl32(fl32(sx[i, c] * sw[j / 128, c]) * P_c))
/// starting from acc = 0 in increasing c, every operation rounded to FP32
/// (no fused multiply-add); y[i, j] = acc. That is DeepGEMM's promotion of
/// the WGMMA accumulator into FP32 registers with the two scales applied.
/// Requires options.promoteEveryK == 128 (returns false and writes nothing
/// otherwise). NaN codes propagate.
[[nodiscard]] bool fp8GemmBlockScaled(const uint8_t *qx, const float *sx,
                                      const uint8_t *qw, const float *sw,
                                      float *y, int64_t m, int64_t n, int64_t k,
                                      const Fp8GemmOptions &options = {});

/// The same with one scale per operand (quantizeFp8PerTensor): P is summed
/// over options.promoteEveryK elements of K (0: all of K) between promotions,
/// acc = fl32(acc + fl32(fl32(sx * sw) * P)). Returns false (writing nothing)
/// when promoteEveryK is negative or not a multiple of 128.
[[nodiscard]] bool fp8GemmPerTensor(const uint8_t *qx, float sx,
                                    const uint8_t *qw, float sw, float *y,
                                    int64_t m, int64_t n, int64_t k,
                                    const Fp8GemmOptions &options = {});

/// How fp8LinearForward scales its operands.
enum class Fp8Scaling {
  /// Activations per 1x128 tile, weights per 128x128 block (DeepSeek-V3).
  FineGrained,
  /// One scale per tensor for each operand.
  PerTensor,
};

/// y = x W^T through FP8: quantizes x [m, k] and W [n, k] as `scaling` says,
/// runs fp8GemmBlockScaled / fp8GemmPerTensor with default options, and
/// writes y [m, n] (the FP32 accumulator converted to T).
template <typename T>
void fp8LinearForward(const T *x, const T *w, T *y, int64_t m, int64_t n,
                      int64_t k, Fp8Scaling scaling,
                      const Fp8ScaleOptions &scaleOptions = {});

} // namespace dsflow::cpu

#endif // DSFLOW_RUNTIME_BACKENDS_CPU_FP8_H
