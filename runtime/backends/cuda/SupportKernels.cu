//===- SupportKernels.cu - Kernels the CUDA runtime launches itself -------===//
//
// The elementwise steps inside the plan ops the runtime composes from
// cuBLASLt GEMMs (the SwiGLU FFNs: expert_ffn and shared_experts with their
// gradients, runtime/backends/cuda/DeviceFfn.cpp). Unlike the compiler's
// generated kernels they take their sizes as arguments. Compiled by nvcc when
// dsflow is built (sm_90a machine code, embedded in the runtime), so nothing
// compiles at run time. Each computes what its CPU counterpart in
// runtime/backends/cpu/Elementwise.cpp and Ffn.cpp computes.
//
//===----------------------------------------------------------------------===//

namespace {
__device__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
} // namespace

/// act = silu(g) * u (cpu::swigluForward).
extern "C" __global__ void dsflow_swiglu_f32(const float *g, const float *u,
                                             float *act, long long count) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
       i < count; i += (long long)gridDim.x * blockDim.x) {
    float x = g[i];
    act[i] = x * sigmoid(x) * u[i];
  }
}

/// dg += dy u silu'(g), du += dy silu(g) (cpu::swigluBackward).
extern "C" __global__ void dsflow_swiglu_grad_f32(const float *dy,
                                                  const float *g,
                                                  const float *u, float *dg,
                                                  float *du, long long count) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
       i < count; i += (long long)gridDim.x * blockDim.x) {
    float x = g[i], s = sigmoid(x);
    dg[i] += dy[i] * u[i] * s * (1.0f + x * (1.0f - s));
    du[i] += dy[i] * x * s;
  }
}

/// dots[r] = <a_r, b_r> over rows of `cols`: a warp per row.
extern "C" __global__ void dsflow_row_dots_f32(const float *a, const float *b,
                                               float *dots, long long rows,
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
