//===- DeviceAdamW.h - AdamW where the GPU keeps the state ------*- C++ -*-===//
//
// exec::DeviceOptimizer for the CUDA runtime: the AdamW moments of every
// gradient buffer in one device allocation (FP32, or BF16 as DeepSeek-V3
// keeps them), updates through the module's support functions (the numbers
// of train/AdamWUpdate.h), the gradient norm as per-block partial sums in
// double added on the host in a fixed order, gradients zeroed in place. With
// it the parameters, gradients and moments stay on the GPU between steps;
// only tokens, losses, expert counts and router biases cross per step.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_BACKENDS_CUDA_DEVICEADAMW_H
#define DSFLOW_RUNTIME_BACKENDS_CUDA_DEVICEADAMW_H

#include "exec/Device.h"
#include "runtime/backends/cuda/DeviceKit.h"
#ifdef DSFLOW_WITH_NCCL
#include "runtime/backends/cuda/NcclGroup.h"
#endif

#include <functional>
#include <map>

namespace dsflow::cuda {

class DeviceAdamW : public exec::DeviceOptimizer {
public:
  /// `address(b)`: buffer b on the device; the gradients are the arena's
  /// [gradients, gradients + gradientBytes) (padding included, kept zero).
  DeviceAdamW(DeviceKit &kit, const Plan &plan,
              std::function<CUdeviceptr(int32_t)> address,
              CUdeviceptr gradients, int64_t gradientBytes)
      : kit(kit), plan(plan), address(std::move(address)), gradients(gradients),
        gradientBytes(gradientBytes) {}
  ~DeviceAdamW() override;

  io::Status prepareMoments(bool bf16Moments) override;
  io::Status zeroGradients() override;
#ifdef DSFLOW_WITH_NCCL
  /// Through NCCL on `communication`, once attached (several ranks): the
  /// buckets started in the step, or the whole region at once.
  io::Status reduceGradients() override;
  bool sumsOverRanks() const override { return nccl != nullptr; }
  io::Status startReduction(int64_t begin, int64_t end) override;
  void attach(std::unique_ptr<NcclGroup> group, CUstream communication,
              CUevent computed, CUevent reduced);
#endif
  io::Expected<double> squaredGradientSum() override;
  io::Status adamw(int32_t param, int32_t grad, bool matrix,
                   const exec::AdamWScalars &scalars) override;
  io::Status downloadMoments(int32_t grad, void *m, void *v) override;
  io::Status uploadMoments(int32_t grad, const void *m, const void *v) override;

private:
  /// Gradient `grad`'s first moment (the second follows it).
  CUdeviceptr moments(int32_t grad) const;
  int64_t momentBytes(int32_t grad) const;

  DeviceKit &kit;
  const Plan &plan;
  std::function<CUdeviceptr(int32_t)> address;
  CUdeviceptr gradients;
  int64_t gradientBytes;
  bool bf16 = false;
#ifdef DSFLOW_WITH_NCCL
  std::unique_ptr<NcclGroup> nccl;
  CUstream communication = nullptr;
  CUevent computed = nullptr, reduced = nullptr;
  /// Whether this step's sums were started bucket by bucket.
  bool bucketsStarted = false;
#endif
  CUdeviceptr storage = 0;
  int64_t partialsAt = 0;
  /// Per gradient buffer, its moments' offset in `storage`.
  std::map<int32_t, int64_t> offsets;
};

} // namespace dsflow::cuda

#endif // DSFLOW_RUNTIME_BACKENDS_CUDA_DEVICEADAMW_H
