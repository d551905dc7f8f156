//===- CudaSupport.cpp - Functions the CUDA runtime launches itself -------===//
#include "Codegen/CudaSupport.h"

namespace dsflow::codegen {

const char *cudaSupportSource() {
  return R"CUDA(
// ---- The CUDA runtime's support functions (compiler/Codegen/CudaSupport.h).
namespace dsflow_rt {
__device__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// E4M3 (OCP e4m3fn) as cpu::floatToE4M3: round to nearest even, saturating
// at 448, NaN to 0x7F.
__device__ unsigned long long shiftRightRne(unsigned long long v,
                                            unsigned shift) {
  unsigned long long kept = v >> shift, rest = v & ((1ull << shift) - 1),
                     half = 1ull << (shift - 1);
  return kept + ((rest > half || (rest == half && (kept & 1))) ? 1 : 0);
}
__device__ unsigned char toE4M3(float x) {
  unsigned bits = __float_as_uint(x);
  unsigned char sign = (bits >> 24) & 0x80;
  unsigned abs = bits & 0x7FFFFFFFu;
  if (abs > 0x7F800000u)
    return 0x7F;
  if (fabsf(x) >= 448.0f)
    return sign | 0x7E;
  int exponent = int(abs >> 23) - 127;
  unsigned long long significand = (abs & 0x7FFFFFu) | (1u << 23);
  if (exponent >= -6)
    return sign | (((exponent + 7) << 3) + int(shiftRightRne(significand, 20)) - 8);
  if (exponent < -11)
    return sign;
  return sign | (unsigned char)shiftRightRne(significand, unsigned(14 - exponent));
}
// As cpu::e4m3ToFloat.
__device__ float fromE4M3(unsigned char code) {
  int exponent = (code >> 3) & 0xF, mantissa = code & 0x7;
  if (exponent == 0xF && mantissa == 0x7)
    return __int_as_float(0x7FC00000);
  float magnitude = exponent == 0 ? ldexpf(float(mantissa), -9)
                                  : ldexpf(float(8 + mantissa), exponent - 10);
  return (code & 0x80) ? -magnitude : magnitude;
}
// As cpu::ue8m0Ceil: the power of two at or above s.
__device__ float ue8m0Ceil(float s) {
  unsigned abs = __float_as_uint(s) & 0x7FFFFFFFu;
  unsigned code;
  if (abs > 0x7F800000u)
    return __int_as_float(0x7FC00000);
  if (abs >= 0x7F000000u)
    code = 0xFE;
  else if ((abs >> 23) == 0)
    code = abs > 0x00400000u ? 1 : 0;
  else
    code = (abs >> 23) + ((abs & 0x7FFFFFu) != 0 ? 1 : 0);
  return code == 0 ? __uint_as_float(0x00400000u) : __uint_as_float(code << 23);
}
// As cpu::fp8ScaleFromAmax (no amax floor).
__device__ float scaleOf(float amax, int ue8m0) {
  float scale = float(double(amax) / 448.0);
  if (!isfinite(scale))
    return scale;
  if (ue8m0)
    scale = ue8m0Ceil(scale);
  return scale == 0.0f ? 1.0f : scale;
}
// NaN wins, so that a NaN element poisons its group (as the CPU's absMax).
__device__ float amaxOf(float amax, float x) {
  float a = fabsf(x);
  return (a > amax || isnan(a)) ? a : amax;
}
// A float's bits rounded to BF16 (the low 16 bits zero), as io::floatToBf16:
// nearest even, NaN kept quiet.
__device__ unsigned roundToBf16Bits(float x) {
  unsigned bits = __float_as_uint(x);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u)
    return (bits | 0x00400000u) & 0xFFFF0000u;
  return (bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF0000u;
}
__device__ float fakeQuantize(float x, float scale) {
  return float(double(fromE4M3(toE4M3(x / scale))) * double(scale));
}
} // namespace dsflow_rt

/// act = silu(g) * u (cpu::swigluForward).
extern "C" __global__ void dsflow_rt_swiglu_f32(const float *g, const float *u,
                                                float *act, long long count) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
       i < count; i += (long long)gridDim.x * blockDim.x) {
    float x = g[i];
    act[i] = x * dsflow_rt::sigmoid(x) * u[i];
  }
}

/// dg += dy u silu'(g), du += dy silu(g) (cpu::swigluBackward).
extern "C" __global__ void dsflow_rt_swiglu_grad_f32(
    const float *dy, const float *g, const float *u, float *dg, float *du,
    long long count) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
       i < count; i += (long long)gridDim.x * blockDim.x) {
    float x = g[i], s = dsflow_rt::sigmoid(x);
    dg[i] += dy[i] * u[i] * s * (1.0f + x * (1.0f - s));
    du[i] += dy[i] * x * s;
  }
}

/// dots[r] = <a_r, b_r> over rows of `cols`: a warp per row.
extern "C" __global__ void dsflow_rt_row_dots_f32(const float *a,
                                                  const float *b, float *dots,
                                                  long long rows,
                                                  long long cols) {
  long long row = (blockIdx.x * (long long)blockDim.x + threadIdx.x) / 32;
  int lane = threadIdx.x % 32;
  if (row >= rows)
    return;
  float sum = 0;
  for (long long j = lane; j < cols; j += 32)
    sum += a[row * cols + j] * b[row * cols + j];
  for (int offset = 16; offset > 0; offset /= 2)
    sum += __shfl_down_sync(0xffffffffu, sum, offset);
  if (lane == 0)
    dots[row] = sum;
}

/// y = E4M3 and back, x [rows, cols] per 1x128 tile: a warp per tile (y may
/// be x).
extern "C" __global__ void dsflow_rt_fake_quant_1x128_f32(
    const float *x, float *y, long long rows, long long cols, int ue8m0) {
  long long tiles = (cols + 127) / 128;
  long long warp = (blockIdx.x * (long long)blockDim.x + threadIdx.x) / 32;
  int lane = threadIdx.x % 32;
  if (warp >= rows * tiles)
    return;
  long long r = warp / tiles, begin = (warp % tiles) * 128;
  float v[4], amax = 0;
  for (int j = 0; j < 4; ++j) {
    long long c = begin + lane + 32 * j;
    v[j] = c < cols ? x[r * cols + c] : 0.0f;
    if (c < cols)
      amax = dsflow_rt::amaxOf(amax, v[j]);
  }
  for (int offset = 16; offset > 0; offset /= 2)
    amax = dsflow_rt::amaxOf(amax, __shfl_xor_sync(0xffffffffu, amax, offset));
  float scale = dsflow_rt::scaleOf(amax, ue8m0);
  for (int j = 0; j < 4; ++j) {
    long long c = begin + lane + 32 * j;
    if (c < cols)
      y[r * cols + c] = dsflow_rt::fakeQuantize(v[j], scale);
  }
}

/// The same per 128x1 tile (128 rows of one column): a thread per band of
/// 128 rows and column.
extern "C" __global__ void dsflow_rt_fake_quant_128x1_f32(
    const float *x, float *y, long long rows, long long cols, int ue8m0) {
  long long id = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  long long bands = (rows + 127) / 128;
  if (id >= bands * cols)
    return;
  long long c = id % cols, begin = (id / cols) * 128;
  long long end = begin + 128 < rows ? begin + 128 : rows;
  float amax = 0;
  for (long long r = begin; r < end; ++r)
    amax = dsflow_rt::amaxOf(amax, x[r * cols + c]);
  float scale = dsflow_rt::scaleOf(amax, ue8m0);
  for (long long r = begin; r < end; ++r)
    y[r * cols + c] = dsflow_rt::fakeQuantize(x[r * cols + c], scale);
}

/// The same per 128x128 block: a block of 256 threads per block.
extern "C" __global__ void dsflow_rt_fake_quant_128x128_f32(
    const float *x, float *y, long long rows, long long cols, int ue8m0) {
  long long colBlocks = (cols + 127) / 128;
  long long r0 = (blockIdx.x / colBlocks) * 128, c0 = (blockIdx.x % colBlocks) * 128;
  long long r1 = r0 + 128 < rows ? r0 + 128 : rows;
  long long c1 = c0 + 128 < cols ? c0 + 128 : cols;
  long long width = c1 - c0, count = (r1 - r0) * width;
  float amax = 0;
  for (long long i = threadIdx.x; i < count; i += blockDim.x)
    amax = dsflow_rt::amaxOf(amax, x[(r0 + i / width) * cols + c0 + i % width]);
  __shared__ float partial[256];
  partial[threadIdx.x] = amax;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half)
      partial[threadIdx.x] =
          dsflow_rt::amaxOf(partial[threadIdx.x], partial[threadIdx.x + half]);
    __syncthreads();
  }
  float scale = dsflow_rt::scaleOf(partial[0], ue8m0);
  for (long long i = threadIdx.x; i < count; i += blockDim.x) {
    long long at = (r0 + i / width) * cols + c0 + i % width;
    y[at] = dsflow_rt::fakeQuantize(x[at], scale);
  }
}

/// One AdamW update of n elements (train/AdamWUpdate.h), FP32 moments.
extern "C" __global__ void dsflow_rt_adamw_f32(
    float *p, const float *g, float *m, float *v, long long n, float beta1,
    float beta2, float eps, float stepSize, float sqrtCorrection2, float decay,
    double gradScale) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x) {
    float grad = float(g[i] * gradScale);
    float mi = beta1 * m[i] + (1.0f - beta1) * grad;
    float vi = beta2 * v[i] + (1.0f - beta2) * grad * grad;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - stepSize * mi / (sqrtf(vi) / sqrtCorrection2 + eps);
  }
}

/// The same with BF16 moments (rounded back after each update, as
/// io::floatToBf16 rounds).
extern "C" __global__ void dsflow_rt_adamw_bf16m_f32(
    float *p, const float *g, unsigned short *m, unsigned short *v,
    long long n, float beta1, float beta2, float eps, float stepSize,
    float sqrtCorrection2, float decay, double gradScale) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x) {
    float grad = float(g[i] * gradScale);
    float mi = beta1 * __uint_as_float(unsigned(m[i]) << 16) + (1.0f - beta1) * grad;
    float vi = beta2 * __uint_as_float(unsigned(v[i]) << 16) + (1.0f - beta2) * grad * grad;
    m[i] = (unsigned short)(dsflow_rt::roundToBf16Bits(mi) >> 16);
    v[i] = (unsigned short)(dsflow_rt::roundToBf16Bits(vi) >> 16);
    p[i] = p[i] * decay - stepSize * mi / (sqrtf(vi) / sqrtCorrection2 + eps);
  }
}

/// partial[block] = the sum of x[i]^2 over the block's share of n elements,
/// in double (the host adds the partials in order: the gradient norm).
extern "C" __global__ void dsflow_rt_sum_squares_f32(const float *x,
                                                     double *partial,
                                                     long long n) {
  double sum = 0;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x)
    sum += double(x[i]) * double(x[i]);
  __shared__ double sums[256];
  sums[threadIdx.x] = sum;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half)
      sums[threadIdx.x] += sums[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0)
    partial[blockIdx.x] = sums[0];
}

/// y = x rounded to BF16 and back, as io::floatToBf16 (NaN kept quiet).
extern "C" __global__ void dsflow_rt_round_bf16_f32(const float *x, float *y,
                                                    long long count) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
       i < count; i += (long long)gridDim.x * blockDim.x) {
    y[i] = __uint_as_float(dsflow_rt::roundToBf16Bits(x[i]));
  }
}
)CUDA";
}

const std::vector<std::string> &cudaSupportFunctionNames() {
  static const std::vector<std::string> names = {
      "dsflow_rt_swiglu_f32",           "dsflow_rt_swiglu_grad_f32",
      "dsflow_rt_row_dots_f32",         "dsflow_rt_fake_quant_1x128_f32",
      "dsflow_rt_fake_quant_128x1_f32", "dsflow_rt_fake_quant_128x128_f32",
      "dsflow_rt_round_bf16_f32",       "dsflow_rt_adamw_f32",
      "dsflow_rt_adamw_bf16m_f32",      "dsflow_rt_sum_squares_f32"};
  return names;
}

} // namespace dsflow::codegen
