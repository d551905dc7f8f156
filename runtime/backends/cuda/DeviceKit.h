//===- DeviceKit.h - What the runtime's own device steps use ----*- C++ -*-===//
//
// The support functions of the plan's module (compiler/Codegen/CudaSupport.h)
// and a scratch area for the copies and temporaries of one kernel at a time:
// what DeviceFfn and DeviceEmulation launch with, on the compute stream.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_BACKENDS_CUDA_DEVICEKIT_H
#define DSFLOW_RUNTIME_BACKENDS_CUDA_DEVICEKIT_H

#include "runtime/backends/cuda/CudaDriver.h"
#include "schemas/plan.pb.h"

#include <initializer_list>

namespace dsflow::cuda {

/// The module's support functions, looked up by name.
struct SupportFunctions {
  CUfunction swiglu = nullptr, swigluGrad = nullptr, rowDots = nullptr;
  CUfunction quantize1x128 = nullptr, quantize128x1 = nullptr,
             quantize128x128 = nullptr, roundBf16 = nullptr;
  CUfunction adamw = nullptr, adamwBf16Moments = nullptr, sumSquares = nullptr;
  CUfunction toBf16 = nullptr, rowDotsBf16 = nullptr;
  /// E4M3 codes and cuBLASLt-ordered scales for the FP8 GEMMs.
  CUfunction quantizeRows = nullptr, quantizeColumnsTransposed = nullptr,
             quantizeBlocks = nullptr, swigluQuantizeRows = nullptr;
  /// Refuses a module without them (a plan from an older dsflow).
  static io::Expected<SupportFunctions> load(CudaDriver &driver,
                                             CUmodule module, const Plan &plan);
};

/// A bump allocator over one device allocation, emptied per kernel.
struct DeviceScratch {
  CUdeviceptr base = 0;
  int64_t capacity = 0, used = 0;
  /// `bytes` (rounded up to 256) of it; an error when it is full.
  io::Expected<CUdeviceptr> take(int64_t bytes);
};

struct DeviceKit {
  CudaDriver &driver;
  const SupportFunctions &support;
  CUstream stream;
  DeviceScratch &scratch;

  /// Launches an elementwise support function over `count` elements: its
  /// pointer arguments, then the count (none when count is 0).
  io::Status elementwise(CUfunction f, int64_t count,
                         std::initializer_list<CUdeviceptr> pointers);
};

} // namespace dsflow::cuda

#endif // DSFLOW_RUNTIME_BACKENDS_CUDA_DEVICEKIT_H
