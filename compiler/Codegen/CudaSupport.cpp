//===- CudaSupport.cpp - Functions the CUDA runtime launches itself -------===//
#include "Codegen/CudaSupport.h"

#include <string>

namespace dsflow::codegen {

namespace {
// The numerics shared with the host test, as source text.
#define DSFLOW_CUDA_SOURCE(...) #__VA_ARGS__
const char *const kNumerics =
#include "Codegen/CudaNumerics.inc"
    ;
#undef DSFLOW_CUDA_SOURCE
} // namespace

const char *cudaSupportSource() {
  static const std::string source = std::string(R"CUDA(
// ---- The CUDA runtime's support functions (compiler/Codegen/CudaSupport.h).
)CUDA") + kNumerics + R"CUDA(

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

namespace dsflow_rt {
__device__ float valueOf(float v) { return v; }
__device__ float valueOf(unsigned short bf16) {
  return __uint_as_float(unsigned(bf16) << 16);
}
/// dots[r] = <a_r, b_r> over rows of `cols`: a warp per row.
template <typename B>
__device__ void rowDots(const float *a, const B *b, float *dots,
                        long long rows, long long cols) {
  long long row = (blockIdx.x * (long long)blockDim.x + threadIdx.x) / 32;
  int lane = threadIdx.x % 32;
  if (row >= rows)
    return;
  float sum = 0;
  for (long long j = lane; j < cols; j += 32)
    sum += a[row * cols + j] * valueOf(b[row * cols + j]);
  for (int offset = 16; offset > 0; offset /= 2)
    sum += __shfl_down_sync(0xffffffffu, sum, offset);
  if (lane == 0)
    dots[row] = sum;
}
} // namespace dsflow_rt

extern "C" __global__ void dsflow_rt_row_dots_f32(const float *a,
                                                  const float *b, float *dots,
                                                  long long rows,
                                                  long long cols) {
  dsflow_rt::rowDots(a, b, dots, rows, cols);
}

namespace dsflow_rt {
/// The FP8 recipe's groupings of x [rows, cols], written once for the
/// emulation (E4M3 and back) and the real FP8 GEMMs (codes and scales): each
/// computes its groups' scales as the CPU does, then calls put(r, c, value,
/// scale) for every element and keep(i, j, scale) once per group.

/// 1x128 tiles (i = row, j = tile): a warp per tile; element (r, c) is
/// load(r, c).
template <typename Load, typename Put, typename Keep>
__device__ void eachTile1x128(Load load, long long rows, long long cols,
                              int ue8m0, Put put, Keep keep) {
  long long tiles = (cols + 127) / 128;
  long long warp = (blockIdx.x * (long long)blockDim.x + threadIdx.x) / 32;
  int lane = threadIdx.x % 32;
  if (warp >= rows * tiles)
    return;
  long long r = warp / tiles, begin = (warp % tiles) * 128;
  float v[4], amax = 0;
  for (int j = 0; j < 4; ++j) {
    long long c = begin + lane + 32 * j;
    v[j] = c < cols ? load(r, c) : 0.0f;
    if (c < cols)
      amax = amaxOf(amax, v[j]);
  }
  for (int offset = 16; offset > 0; offset /= 2)
    amax = amaxOf(amax, __shfl_xor_sync(0xffffffffu, amax, offset));
  float scale = scaleOf(amax, ue8m0);
  if (lane == 0)
    keep(r, warp % tiles, scale);
  for (int j = 0; j < 4; ++j) {
    long long c = begin + lane + 32 * j;
    if (c < cols)
      put(r, c, v[j], scale);
  }
}

/// x [rows, cols] read in place.
struct Loaded {
  const float *x;
  long long cols;
  __device__ float operator()(long long r, long long c) const {
    return x[r * cols + c];
  }
};

/// 128x1 tiles (i = band of 128 rows, j = column): a thread per tile.
template <typename Put, typename Keep>
__device__ void eachTile128x1(const float *x, long long rows, long long cols,
                              int ue8m0, Put put, Keep keep) {
  long long id = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  long long bands = (rows + 127) / 128;
  if (id >= bands * cols)
    return;
  long long c = id % cols, begin = (id / cols) * 128;
  long long end = begin + 128 < rows ? begin + 128 : rows;
  float amax = 0;
  for (long long r = begin; r < end; ++r)
    amax = amaxOf(amax, x[r * cols + c]);
  float scale = scaleOf(amax, ue8m0);
  keep(id / cols, c, scale);
  for (long long r = begin; r < end; ++r)
    put(r, c, x[r * cols + c], scale);
}

/// 128x128 blocks (i = row block, j = column block): a block of 256 threads
/// per block.
template <typename Put, typename Keep>
__device__ void eachBlock128x128(const float *x, long long rows,
                                 long long cols, int ue8m0, Put put,
                                 Keep keep) {
  long long colBlocks = (cols + 127) / 128;
  long long r0 = (blockIdx.x / colBlocks) * 128, c0 = (blockIdx.x % colBlocks) * 128;
  long long r1 = r0 + 128 < rows ? r0 + 128 : rows;
  long long c1 = c0 + 128 < cols ? c0 + 128 : cols;
  long long width = c1 - c0, count = (r1 - r0) * width;
  float amax = 0;
  for (long long i = threadIdx.x; i < count; i += blockDim.x)
    amax = amaxOf(amax, x[(r0 + i / width) * cols + c0 + i % width]);
  __shared__ float partial[256];
  partial[threadIdx.x] = amax;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half)
      partial[threadIdx.x] = amaxOf(partial[threadIdx.x], partial[threadIdx.x + half]);
    __syncthreads();
  }
  float scale = scaleOf(partial[0], ue8m0);
  if (threadIdx.x == 0)
    keep(r0 / 128, c0 / 128, scale);
  for (long long i = threadIdx.x; i < count; i += blockDim.x) {
    long long r = r0 + i / width, c = c0 + i % width;
    put(r, c, x[r * cols + c], scale);
  }
}
} // namespace dsflow_rt

namespace dsflow_rt {
/// The emulation's put(): y = E4M3 and back (y may be x); no scales kept.
struct FakeQuantized {
  float *y;
  long long cols;
  __device__ void operator()(long long r, long long c, float v, float s) const {
    y[r * cols + c] = fakeQuantize(v, s);
  }
};
struct ScalesUnused {
  __device__ void operator()(long long, long long, float) const {}
};
} // namespace dsflow_rt

/// y = E4M3 and back, x [rows, cols] per 1x128 tile, 128x1 tile (128 rows
/// of one column) or 128x128 block.
extern "C" __global__ void dsflow_rt_fake_quant_1x128_f32(
    const float *x, float *y, long long rows, long long cols, int ue8m0) {
  dsflow_rt::eachTile1x128(dsflow_rt::Loaded{x, cols}, rows, cols, ue8m0,
                           dsflow_rt::FakeQuantized{y, cols},
                           dsflow_rt::ScalesUnused{});
}
extern "C" __global__ void dsflow_rt_fake_quant_128x1_f32(
    const float *x, float *y, long long rows, long long cols, int ue8m0) {
  dsflow_rt::eachTile128x1(x, rows, cols, ue8m0, dsflow_rt::FakeQuantized{y, cols},
                           dsflow_rt::ScalesUnused{});
}
extern "C" __global__ void dsflow_rt_fake_quant_128x128_f32(
    const float *x, float *y, long long rows, long long cols, int ue8m0) {
  dsflow_rt::eachBlock128x128(x, rows, cols, ue8m0,
                              dsflow_rt::FakeQuantized{y, cols},
                              dsflow_rt::ScalesUnused{});
}

// The FP8 GEMM operands: E4M3 codes in rows of ld (K rounded up; the
// runtime zeroes the padding first) and scales in cuBLASLt's order.

namespace dsflow_rt {
/// put() and keep() of an operand with K along each row: codes q [rows, ld]
/// and a scale per 1x128 tile, in VEC128 order.
struct RowCodes {
  unsigned char *q;
  long long ld;
  __device__ void operator()(long long r, long long c, float v, float s) const {
    q[r * ld + c] = toE4M3(v / s);
  }
};
struct RowScales {
  float *scales;
  long long rows;
  __device__ void operator()(long long r, long long tile, float s) const {
    scales[tileScaleAt(r, tile, rows)] = s;
  }
};
} // namespace dsflow_rt

/// K along each row of x [rows, cols].
extern "C" __global__ void dsflow_rt_quantize_rows_f32(
    const float *x, unsigned char *q, float *scales, long long rows,
    long long cols, long long ld, int ue8m0) {
  dsflow_rt::eachTile1x128(dsflow_rt::Loaded{x, cols}, rows, cols, ue8m0,
                           dsflow_rt::RowCodes{q, ld},
                           dsflow_rt::RowScales{scales, rows});
}

/// SwiGLU fused into that quantization: the operand is act = silu(g) * u
/// [rows, cols] (as dsflow_rt_swiglu_f32 computes it), never stored in FP32
/// (the FFNs' down projection on the FP8 tensor cores).
extern "C" __global__ void dsflow_rt_swiglu_quantize_rows_f32(
    const float *g, const float *u, unsigned char *q, float *scales,
    long long rows, long long cols, long long ld, int ue8m0) {
  auto act = [&](long long r, long long c) {
    float x = g[r * cols + c];
    return x * dsflow_rt::sigmoid(x) * u[r * cols + c];
  };
  dsflow_rt::eachTile1x128(act, rows, cols, ue8m0, dsflow_rt::RowCodes{q, ld},
                           dsflow_rt::RowScales{scales, rows});
}

/// K along the columns of x [rows, cols] (a weight gradient's operands,
/// contracted over the tokens): the transposed codes qT [cols, ld] and a
/// scale per 128x1 tile of x (1x128 of the transpose), in VEC128 order.
extern "C" __global__ void dsflow_rt_quantize_columns_t_f32(
    const float *x, unsigned char *qT, float *scales, long long rows,
    long long cols, long long ld, int ue8m0) {
  dsflow_rt::eachTile128x1(
      x, rows, cols, ue8m0,
      [&](long long r, long long c, float v, float s) {
        qT[c * ld + r] = dsflow_rt::toE4M3(v / s);
      },
      [&](long long band, long long c, float s) {
        scales[dsflow_rt::tileScaleAt(c, band, cols)] = s;
      });
}

/// A weight w [rows, cols] per 128x128 block: codes q [rows, ld] (K along
/// the columns) or, transposed, [cols, ld] (K along w's rows), and the block
/// scales in BLK128x128 order, the padding of each row of K blocks set to 1.
extern "C" __global__ void dsflow_rt_quantize_blocks_f32(
    const float *w, unsigned char *q, float *scales, long long rows,
    long long cols, long long ld, int ue8m0, int transposed) {
  long long rowBlocks = (rows + 127) / 128, colBlocks = (cols + 127) / 128;
  long long kBlocks = transposed ? rowBlocks : colBlocks;
  dsflow_rt::eachBlock128x128(
      w, rows, cols, ue8m0,
      [&](long long r, long long c, float v, float s) {
        q[transposed ? c * ld + r : r * ld + c] = dsflow_rt::toE4M3(v / s);
      },
      [&](long long rb, long long cb, float s) {
        long long outer = transposed ? cb : rb, k = transposed ? rb : cb;
        scales[dsflow_rt::blockScaleAt(outer, k, kBlocks)] = s;
        if (k == kBlocks - 1)
          for (long long pad = kBlocks; pad < dsflow_rt::blockScaleRow(kBlocks); ++pad)
            scales[dsflow_rt::blockScaleAt(outer, pad, kBlocks)] = 1.0f;
      });
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

/// y = x in BF16 storage (the GEMM operands of --bf16-gemms), rounded as
/// io::floatToBf16.
extern "C" __global__ void dsflow_rt_to_bf16_f32(const float *x,
                                                 unsigned short *y,
                                                 long long count) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
       i < count; i += (long long)gridDim.x * blockDim.x)
    y[i] = (unsigned short)(dsflow_rt::roundToBf16Bits(x[i]) >> 16);
}

/// The same with b in BF16 storage.
extern "C" __global__ void dsflow_rt_row_dots_bf16b_f32(
    const float *a, const unsigned short *b, float *dots, long long rows,
    long long cols) {
  dsflow_rt::rowDots(a, b, dots, rows, cols);
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
  return source.c_str();
}

const std::vector<std::string> &cudaSupportFunctionNames() {
  static const std::vector<std::string> names = {
      "dsflow_rt_swiglu_f32",           "dsflow_rt_swiglu_grad_f32",
      "dsflow_rt_row_dots_f32",         "dsflow_rt_fake_quant_1x128_f32",
      "dsflow_rt_fake_quant_128x1_f32", "dsflow_rt_fake_quant_128x128_f32",
      "dsflow_rt_round_bf16_f32",       "dsflow_rt_adamw_f32",
      "dsflow_rt_adamw_bf16m_f32",      "dsflow_rt_sum_squares_f32",
      "dsflow_rt_to_bf16_f32",          "dsflow_rt_row_dots_bf16b_f32",
      "dsflow_rt_quantize_rows_f32",    "dsflow_rt_quantize_columns_t_f32",
      "dsflow_rt_quantize_blocks_f32",  "dsflow_rt_swiglu_quantize_rows_f32"};
  return names;
}

} // namespace dsflow::codegen
