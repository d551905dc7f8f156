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
#include <utility>
#include <vector>

namespace dsflow::exec {

/// The numbers of one AdamW update (train/AdamW.h computes them; every
/// element then computes m = beta1 m + (1 - beta1) g, v = beta2 v +
/// (1 - beta2) g^2 with g = gradient * gradScale, and
/// p = p * decay - stepSize * m / (sqrt(v) / sqrtCorrection2 + eps)).
struct AdamWScalars {
  float beta1 = 0, beta2 = 0, eps = 0, stepSize = 0, sqrtCorrection2 = 1;
  /// 1 - lr * weight decay for matrices; 1 for vectors (RMSNorm weights).
  float matrixDecay = 1;
  double gradScale = 1;
};

/// A device that keeps the parameters, their gradients and the optimizer's
/// moments between programs, and runs the optimizer's steps there
/// (Offload's resident mode; the trainer drives it).
class DeviceOptimizer {
public:
  virtual ~DeviceOptimizer() = default;
  /// Zeroed moments (FP32, or BF16 as DeepSeek-V3 keeps them) for every
  /// gradient buffer of the plan.
  virtual io::Status prepareMoments(bool bf16Moments) = 0;
  virtual io::Status zeroGradients() = 0;
  /// Sums every gradient over the data-parallel ranks, in place (nothing to
  /// do on one).
  virtual io::Status reduceGradients() { return std::nullopt; }
  /// Whether reduceGradients sums over other ranks.
  virtual bool sumsOverRanks() const { return false; }
  /// Starts summing bytes [begin, end) of the gradient region over the
  /// ranks behind the kernels launched so far (a bucket the backward is done
  /// with), so that the sum overlaps the rest of the backward. The buckets
  /// a step starts cover the region once; that step's reduceGradients then
  /// waits for their sums instead of summing.
  virtual io::Status startReduction(int64_t begin, int64_t end) {
    (void)begin, (void)end;
    return std::nullopt;
  }
  /// The sum of the squares of every gradient (for clipping).
  virtual io::Expected<double> squaredGradientSum() = 0;
  /// Updates parameter `param` from gradient buffer `grad`.
  virtual io::Status adamw(int32_t param, int32_t grad, bool matrix,
                           const AdamWScalars &scalars) = 0;
  /// Gradient `grad`'s moments to or from host arrays of its element count
  /// (float, or BF16 bits with prepareMoments(true)).
  virtual io::Status downloadMoments(int32_t grad, void *m, void *v) = 0;
  virtual io::Status uploadMoments(int32_t grad, const void *m,
                                   const void *v) = 0;
};

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
  /// Starts copying buffer `buffer` to host memory `to` as the kernels
  /// launched so far leave it, without waiting for them (kernels launched
  /// later do not change the copy); `to` holds the bytes once
  /// finishDownloads returns. By default a download.
  virtual io::Status startDownload(int32_t buffer, std::byte *to) {
    return download(buffer, to);
  }
  /// Waits for the downloads started so far.
  virtual io::Status finishDownloads() { return std::nullopt; }
  virtual io::Status zero(int32_t buffer) = 0;
  /// Runs kernel `kernel` on the device copies of its buffers (its outputs
  /// already zeroed unless it accumulates).
  virtual io::Status launch(int32_t kernel) = 0;
  /// Whether launching kernel `kernel` now makes the host wait for the
  /// kernels launched before it (a routed MoE FFN reading its experts' row
  /// counts back to split its GEMMs). The executor then launches another
  /// chunk's kernels first (Executor::launchKernels).
  virtual bool waitsBeforeLaunch(int32_t kernel) const {
    (void)kernel;
    return false;
  }
  /// The optimizer it runs, when it can keep the training state (null:
  /// the host keeps it).
  virtual DeviceOptimizer *optimizer() { return nullptr; }
  /// With `on`, it times each kernel it runs on the device (--profile).
  virtual void setTiming(bool on) { (void)on; }
  /// The kernels timed since the last call, once they are done: (kernel,
  /// seconds).
  virtual io::Expected<std::vector<std::pair<int32_t, double>>>
  takeKernelTimes() {
    return std::vector<std::pair<int32_t, double>>();
  }
};

} // namespace dsflow::exec

#endif // DSFLOW_RUNTIME_EXEC_DEVICE_H
