//===- DeviceFfn.h - The SwiGLU FFNs on a GPU -------------------*- C++ -*-===//
//
// expert_ffn and shared_experts, forward and both gradients, on the device:
// the CPU backend's steps (runtime/backends/cpu/FfnSteps.h, operands read as
// exec/FfnKernels.h reads them) with cuBLASLt for the GEMMs and the module's
// support functions for SwiGLU and the row dots. Under the FP8 recipe the
// inner GEMMs run on the FP8 tensor cores (Fp8FfnGemms.h), or, emulated, read
// activations quantized to E4M3 and back (the weights quantized before,
// DeviceEmulation.h). The routed experts' row counts are read back first (a
// small synchronous copy) to split the rows by expert. FP32 plans.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_BACKENDS_CUDA_DEVICEFFN_H
#define DSFLOW_RUNTIME_BACKENDS_CUDA_DEVICEFFN_H

#include "runtime/backends/cuda/DeviceGemms.h"
#include "runtime/backends/cuda/DeviceKit.h"

#include <functional>
#include <map>
#include <vector>

namespace dsflow::cuda {

/// What the FFNs use of the device.
struct FfnDevice {
  DeviceKit &kit;
  CublasLtGemm &gemm;
  /// How the GEMMs multiply (with Bf16, the engine reads activations
  /// through BF16 copies; the weights arrive as BF16 copies).
  Fp32Gemms mode;
  /// Under the FP8 recipe, the GEMMs on the FP8 tensor cores
  /// (Fp8FfnGemms.h): the weights arrive unquantized. Else emulated, the
  /// weights quantized by the runtime (DeviceEmulation.h).
  bool fp8TensorCores;
  /// Copies a whole buffer to the host once the queued work is done.
  std::function<io::Status(int32_t, std::byte *)> download;
  /// The routed experts' row counts read back so far, by buffer: a layer's
  /// forward, gradient and weight gradient read the same counts, so one
  /// synchronous copy serves the three. Whoever writes a buffer drops it.
  std::map<int32_t, std::vector<int32_t>> counts;
  /// Under the FP8 recipe: GEMMs run on the FP8 tensor cores, and emulated.
  int64_t fp8Gemms = 0, fp8GemmsEmulated = 0;
};

bool hasDeviceFfn(const Plan &plan, const Kernel &kernel);
/// The scratch an FFN kernel's steps need at most (0 for other kernels).
int64_t ffnScratchBytes(const Plan &plan, const Kernel &kernel);
/// Runs FFN kernel `index`, reading buffer b at `address(b)`.
io::Status runDeviceFfn(FfnDevice &device, const Plan &plan, int32_t index,
                        const std::function<DeviceArray(int32_t)> &operand);

} // namespace dsflow::cuda

#endif // DSFLOW_RUNTIME_BACKENDS_CUDA_DEVICEFFN_H
