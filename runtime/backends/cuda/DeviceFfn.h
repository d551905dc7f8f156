//===- DeviceFfn.h - The SwiGLU FFNs on a GPU -------------------*- C++ -*-===//
//
// expert_ffn and shared_experts, forward and both gradients, on the device:
// the CPU backend's steps (runtime/backends/cpu/FfnSteps.h) with cuBLASLt
// for the GEMMs and the runtime's support kernels (SupportKernels.cu) for
// SwiGLU and the row dots. The routed experts' row counts are read back
// first (a small synchronous copy) to split the rows by expert. FP32
// without the FP8 recipe; other kernels stay on the host.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_BACKENDS_CUDA_DEVICEFFN_H
#define DSFLOW_RUNTIME_BACKENDS_CUDA_DEVICEFFN_H

#include "runtime/backends/cuda/CudaDriver.h"
#include "runtime/backends/cuda/DeviceGemms.h"

#include <functional>

namespace dsflow::cuda {

/// The functions of SupportKernels.cu, loaded.
struct SupportFunctions {
  CUfunction swiglu = nullptr, swigluGrad = nullptr, rowDots = nullptr;
};

/// What the FFNs use of the device.
struct FfnDevice {
  CudaDriver &driver;
  CublasLtGemm &gemm;
  const SupportFunctions &support;
  CUstream stream;
  /// Zeroed per use; ffnScratchBytes(plan) of it.
  CUdeviceptr scratch;
  int64_t scratchBytes;
  std::function<CUdeviceptr(int32_t)> address;
  /// Copies a whole buffer to the host once the queued work is done.
  std::function<io::Status(int32_t, std::byte *)> download;
};

bool hasDeviceFfn(const Plan &plan, const Kernel &kernel);
/// The scratch the plan's device FFN kernels need at most (0: none).
int64_t ffnScratchBytes(const Plan &plan);
io::Status runDeviceFfn(FfnDevice &device, const Plan &plan, int32_t kernel);

} // namespace dsflow::cuda

#endif // DSFLOW_RUNTIME_BACKENDS_CUDA_DEVICEFFN_H
