//===- DeviceFp8Gemm.h - Linear layers on the FP8 tensor cores --*- C++ -*-===//
//
// A linear kernel under the FP8 recipe (graph.fp8, E4M3) of an FP32 plan runs
// its GEMM on the GPU's FP8 tensor cores: the module's support functions
// quantize its operands into E4M3 codes and cuBLASLt-ordered scales in the
// kernel's scratch (Fp8LinearSteps.h says how), then cuBLASLt multiplies them
// with the recipe's block scaling and FP32 accumulation, into the FP32
// output. The values are the CPU backend's emulation's (the same codes and
// scales), summed in another order. Sizes cuBLASLt's FP8 GEMMs do not take,
// or a GEMM it has no algorithm for, leave the kernel to the emulation
// (DeviceEmulation.h). The FFNs' inner GEMMs run through the same steps
// (Fp8FfnGemms.h), the down projection with SwiGLU fused into its operand's
// quantization; a linear layer whose activation a fused RMSNorm quantized
// reads that operand (Fp8OperandCache.h).
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_BACKENDS_CUDA_DEVICEFP8GEMM_H
#define DSFLOW_RUNTIME_BACKENDS_CUDA_DEVICEFP8GEMM_H

#include "runtime/backends/cuda/CublasLtGemm.h"
#include "runtime/backends/cuda/DeviceKit.h"
#include "runtime/backends/cuda/Fp8LinearSteps.h"
#include "runtime/backends/cuda/Fp8OperandCache.h"

#include <functional>

namespace dsflow::cuda {

/// The FP8 GEMM of plan kernel `kernel`, if it is one that can run on the
/// FP8 tensor cores: a linear layer's (forward or a gradient) marked with
/// the E4M3 recipe, on FP32 buffers, with sizes cuBLASLt takes.
std::optional<Fp8Gemm> fp8TensorCoreGemm(const Plan &plan,
                                         const Kernel &kernel);

/// The scratch runFp8Gemm takes.
int64_t fp8GemmScratchBytes(const Fp8Gemm &g);

/// `g` on the kit's stream from FP32 sources (its x and w operands) into
/// the FP32 output c, its operands quantized in the kit's scratch (given
/// back after); false, with c untouched, when cuBLASLt has no algorithm for
/// it.
io::Expected<bool> runFp8Gemm(DeviceKit &kit, CublasLtGemm &gemm,
                              const Fp8Gemm &g, CUdeviceptr xSource,
                              CUdeviceptr wSource, CUdeviceptr c, bool ue8m0);

/// The same with SwiGLU fused into the quantization of x: x = silu(gate) *
/// up, never stored in FP32 (the FFNs' down projection).
io::Expected<bool> runFp8SwigluGemm(DeviceKit &kit, CublasLtGemm &gemm,
                                    const Fp8Gemm &g, CUdeviceptr gate,
                                    CUdeviceptr up, CUdeviceptr wSource,
                                    CUdeviceptr c, bool ue8m0);

/// Kernel `kernel`'s GEMM `g`, its buffers at `address(b)`; `quantizedX`:
/// x's operand as a fused RMSNorm wrote it (Fp8OperandCache.h), if it did.
io::Expected<bool>
runFp8Gemm(DeviceKit &kit, CublasLtGemm &gemm, const Plan &plan, int32_t kernel,
           const Fp8Gemm &g, const std::function<CUdeviceptr(int32_t)> &address,
           std::optional<Fp8OperandCache::Slot> quantizedX = std::nullopt);

} // namespace dsflow::cuda

#endif // DSFLOW_RUNTIME_BACKENDS_CUDA_DEVICEFP8GEMM_H
