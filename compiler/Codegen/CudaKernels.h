//===- CudaKernels.h - CUDA C++ for the plan's kernels -----------*- C++
//-*-===//
//
// Generates the __global__ functions of each plan kernel whose op has a
// generator (memory-bound ops: elementwise, RMSNorm, RoPE, embedding,
// cross-entropy, data movement, the MoE routing: router, dispatch, combine,
// balance loss, with their gradients; and the fused MLA attention core),
// specialized to the kernel's shapes, element types and attributes. Each
// function takes the device addresses of the kernel's inputs, then its
// outputs, and does what the CPU kernel of that op does
// (runtime/backends/cpu/Kernels.h): forward kernels overwrite their outputs,
// backward kernels add (+=) into them; arithmetic is FP32 whatever the storage
// type. GEMMs go through cuBLASLt (runtime/backends/cuda/CublasLtGemm.h),
// except the router's small one, which moe_gate's function computes.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_COMPILER_CODEGEN_CUDAKERNELS_H
#define DSFLOW_COMPILER_CODEGEN_CUDAKERNELS_H

#include "schemas/plan.pb.h"

#include <optional>
#include <string>
#include <vector>

namespace dsflow::codegen {

struct CudaFunction {
  /// The function's definition with `@NAME@` where its name goes, so that
  /// identical bodies can share one function.
  std::string body;
  int64_t grid = 1;
  int32_t block = 1;
  int32_t sharedBytes = 0;
  /// The function applies the FP8 recipe's quantization of output 0 itself
  /// (an FP32 dispatch's rows, quantized per 1x128 tile and back), which the
  /// runtime otherwise does after the kernel.
  bool quantizesOutput = false;
  /// rms_norm with FP32 output: the same function that also writes output 0
  /// as the FP8 operand of the linear layer reading it (E4M3 codes and 1x128
  /// tile scales as dsflow_rt_quantize_rows_f32 writes them, in three more
  /// parameters: codes, scales, ue8m0), launched alike. Empty otherwise.
  std::string quantizingBody;
};

/// The CUDA functions for `kernel` of `plan`, launched in this order (one for
/// most ops); empty when its op is not generated here or its buffers have a
/// type the generator does not handle.
std::vector<CudaFunction> generateCudaFunctions(const Plan &plan,
                                                const Kernel &kernel);

/// The function of a kernel that takes a single launch; none otherwise.
std::optional<CudaFunction> generateCudaFunction(const Plan &plan,
                                                 const Kernel &kernel);

/// What every module starts with: includes, load/store helpers, the block sum.
const char *cudaModulePrelude();

} // namespace dsflow::codegen

#endif // DSFLOW_COMPILER_CODEGEN_CUDAKERNELS_H
