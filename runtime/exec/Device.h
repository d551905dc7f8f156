//===- Device.h - Where the kernels with device code run --------*- C++ -*-===//
//
// An accelerator holding a copy of every plan buffer (the CUDA backend's one
// device arena: runtime/backends/cuda/CudaDevice). The executor runs a kernel
// there when the device has code for it and keeps the host copy current
// around the others (exec/Offload.h). Calls are in program order; a device
// may queue launches, but a download returns the finished bytes.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_EXEC_DEVICE_H
#define DSFLOW_RUNTIME_EXEC_DEVICE_H

#include "io/Status.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace dsflow::exec {

class Device {
public:
  virtual ~Device() = default;
  /// For messages: "cuda: NVIDIA H100 80GB HBM3".
  virtual std::string name() const = 0;
  /// Whether the device has code for plan kernel `kernel`.
  virtual bool runs(int32_t kernel) const = 0;
  /// Copies plan buffer `buffer` (its plan size) between host and device.
  virtual io::Status upload(int32_t buffer, const std::byte *from) = 0;
  virtual io::Status download(int32_t buffer, std::byte *to) = 0;
  virtual io::Status zero(int32_t buffer) = 0;
  /// Runs kernel `kernel` on the device copies of its buffers (its outputs
  /// already zeroed unless it accumulates).
  virtual io::Status launch(int32_t kernel) = 0;
};

} // namespace dsflow::exec

#endif // DSFLOW_RUNTIME_EXEC_DEVICE_H
