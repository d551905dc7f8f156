//===- DeviceEmulation.h - The CPU's FP8 emulation on a GPU -----*- C++ -*-===//
//
// What the CPU binding does around a kernel marked with DeepSeek-V3's FP8
// recipe (graph.fp8.*) or BF16 inputs (graph.precision = bf16), see
// exec/Fp8Emulation.h (KernelEmulation) and exec/KernelBinding.h, done on the
// device with the module's support functions: each GEMM operand the recipe
// quantizes is read through a scratch copy quantized to E4M3 and back (1x128
// tiles, 128x1 tiles or 128x128 blocks, as exec::fp8InputRole says), combine's
// rows through a copy rounded to BF16, and an FP8 dispatch quantizes its rows
// after it runs. So a plan compiled with --fp8 runs on the GPU computing what
// the CPU backend computes (FP32 arithmetic on the quantized values).
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_BACKENDS_CUDA_DEVICEEMULATION_H
#define DSFLOW_RUNTIME_BACKENDS_CUDA_DEVICEEMULATION_H

#include "exec/Fp8Emulation.h"
#include "runtime/backends/cuda/DeviceKit.h"

#include <map>

namespace dsflow::cuda {

/// y = x [rows, cols] quantized to E4M3 and back in `role`'s tiling (or
/// rounded to BF16); y may be x.
io::Status fakeQuantizeOnDevice(DeviceKit &kit, exec::Fp8Role role, bool ue8m0,
                                CUdeviceptr x, CUdeviceptr y, int64_t rows,
                                int64_t cols);

/// The scratch copies of kernel `index`'s emulated inputs: buffer -> the
/// copy's address, to read instead of the buffer.
io::Expected<std::map<int32_t, CUdeviceptr>>
emulateInputs(DeviceKit &kit, const Plan &plan, int32_t index,
              const std::function<CUdeviceptr(int32_t)> &address);
/// After kernel `index` ran: an FP8 dispatch's rows, quantized in place.
io::Status emulateOutputs(DeviceKit &kit, const Plan &plan, int32_t index,
                          const std::function<CUdeviceptr(int32_t)> &address);
/// The scratch emulateInputs takes for kernel `index`.
int64_t emulationScratchBytes(const Plan &plan, int32_t index);

} // namespace dsflow::cuda

#endif // DSFLOW_RUNTIME_BACKENDS_CUDA_DEVICEEMULATION_H
