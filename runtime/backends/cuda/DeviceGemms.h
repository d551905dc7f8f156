//===- DeviceGemms.h - The linear layers' GEMMs on a GPU --------*- C++ -*-===//
//
// linear and mtp_project, forward and both gradients, through cuBLASLt: the
// same decomposition into GEMMs as the CPU backend's
// (runtime/backends/cpu/LinearGemms.h), on the device copies of the
// kernel's buffers, in FP32 or BF16 as the buffers are.
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

/// Whether plan kernel `kernel` is one whose GEMMs run here.
bool hasDeviceGemms(const Plan &plan, const Kernel &kernel);

/// Runs kernel `kernel`'s GEMMs on `stream`; `address(b)` is buffer b's
/// device address. The executor validated the shapes when it bound the plan.
io::Status runDeviceGemms(CublasLtGemm &gemm, const Plan &plan, int32_t kernel,
                          const std::function<CUdeviceptr(int32_t)> &address,
                          CUstream stream);

} // namespace dsflow::cuda

#endif // DSFLOW_RUNTIME_BACKENDS_CUDA_DEVICEGEMMS_H
