//===- DeviceGemms.h - The linear layers' GEMMs on a GPU --------*- C++ -*-===//
//
// linear and mtp_project, forward and both gradients, through cuBLASLt: the
// same decomposition into GEMMs as the CPU backend's
// (runtime/backends/cpu/LinearGemms.h), on the device copies of the
// kernel's buffers, in FP32 or BF16 as the buffers are. Under the FP8 recipe
// the runtime hands them quantized copies of their operands
// (DeviceEmulation.h) where the FP8 tensor cores do not take the linear
// layer (DeviceFp8Gemm.h).
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_BACKENDS_CUDA_DEVICEGEMMS_H
#define DSFLOW_RUNTIME_BACKENDS_CUDA_DEVICEGEMMS_H

#include "runtime/backends/cuda/CublasLtGemm.h"
#include "schemas/plan.pb.h"

#include <cuda.h>

#include <functional>
#include <string>

namespace dsflow::cuda {

/// A device operand for the CPU backend's GEMM compositions
/// (LinearGemms.h, FfnSteps.h): offsets by elements.
struct DeviceArray {
  CUdeviceptr address = 0;
  int64_t elementBytes = 4;
  DeviceArray operator+(int64_t elements) const {
    return {address + static_cast<CUdeviceptr>(elements * elementBytes),
            elementBytes};
  }
};

/// A key for the FFN engines' copies of an array (FfnSteps.h).
inline uintptr_t arrayKey(DeviceArray a) { return uintptr_t(a.address); }

/// How an FP32 plan's GEMMs multiply: in FP32; on the tensor cores in TF32;
/// or with their operands in BF16 (copies; FP32 accumulation and outputs, as
/// torch.autocast(bfloat16) runs them).
enum class Fp32Gemms { Fp32, Tf32, Bf16 };

/// cuBLASLt as the `gemm` of those compositions, the precision following
/// the operands' element sizes (BF16 A and B: BF16 GEMM, with an FP32 C or
/// not); keeps the first error.
struct GemmEngine {
  CublasLtGemm &gemm;
  /// FP32 operands on the tensor cores in TF32.
  bool tf32;
  CUstream stream;
  io::Status error;
  void operator()(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
                  float alpha, DeviceArray a, int64_t lda, DeviceArray b,
                  int64_t ldb, float beta, DeviceArray c, int64_t ldc);
};

/// A linear layer's sizes: x [tokens, in], W [out, in], y [tokens, out].
struct LinearShape {
  int64_t tokens = 0, out = 0, in = 0;
};
/// Those of a linear, linear_grad or linear_wgrad kernel, from its inputs as
/// the CPU binders derive them (BindDense.cpp).
LinearShape linearShapeOf(const Plan &plan, const Kernel &kernel);

/// Whether plan kernel `kernel` is one whose GEMMs run here.
bool hasDeviceGemms(const Plan &plan, const Kernel &kernel);

/// Runs kernel `kernel`'s GEMMs on `stream`, reading buffer b as
/// `operand(b)` (the buffer, or a copy of it: quantized, or in BF16). The
/// executor validated the shapes when it bound the plan.
io::Status runDeviceGemms(CublasLtGemm &gemm, const Plan &plan, int32_t kernel,
                          const std::function<DeviceArray(int32_t)> &operand,
                          CUstream stream, bool tf32);

} // namespace dsflow::cuda

#endif // DSFLOW_RUNTIME_BACKENDS_CUDA_DEVICEGEMMS_H
