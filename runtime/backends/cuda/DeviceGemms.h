//===- DeviceGemms.h - The linear layers' GEMMs on a GPU --------*- C++ -*-===//
//
// linear and mtp_project, forward and both gradients, through cuBLASLt: the
// same decomposition into GEMMs as the CPU backend's
// (runtime/backends/cpu/LinearGemms.h), on the device copies of the
// kernel's buffers, in FP32 or BF16 as the buffers are. Under the FP8 recipe
// the runtime hands them quantized copies of their operands
// (DeviceEmulation.h).
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

/// cuBLASLt as the `gemm` of those compositions; keeps the first error.
struct GemmEngine {
  CublasLtGemm &gemm;
  GemmPrecision precision;
  CUstream stream;
  io::Status error;
  void operator()(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
                  float alpha, DeviceArray a, int64_t lda, DeviceArray b,
                  int64_t ldb, float beta, DeviceArray c, int64_t ldc);
};

/// Whether plan kernel `kernel` is one whose GEMMs run here.
bool hasDeviceGemms(const Plan &plan, const Kernel &kernel);

/// Runs kernel `kernel`'s GEMMs on `stream`; `address(b)` is buffer b's
/// device address; FP32 ones on the tensor cores in TF32 with `tf32`. The
/// executor validated the shapes when it bound the plan.
io::Status runDeviceGemms(CublasLtGemm &gemm, const Plan &plan, int32_t kernel,
                          const std::function<CUdeviceptr(int32_t)> &address,
                          CUstream stream, bool tf32);

} // namespace dsflow::cuda

#endif // DSFLOW_RUNTIME_BACKENDS_CUDA_DEVICEGEMMS_H
