//===- AdamW.h - The optimizer, with optional BF16 moments ------*- C++ -*-===//
//
// AdamW as PyTorch defines it (decoupled weight decay, bias-corrected moments),
// over the FP32 master parameters of a plan. Moments are kept in FP32 or, as
// DeepSeek-V3 did, in BF16 (each update computes in FP32 and rounds back).
// Weight decay applies to matrices only, not to RMSNorm weights. Under ZeRO-1
// an instance updates (and keeps moments for) only the tensors its rank owns.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_TRAIN_ADAMW_H
#define DSFLOW_RUNTIME_TRAIN_ADAMW_H

#include "exec/Device.h"
#include "exec/Memory.h"
#include "io/Checkpoint.h"
#include "io/DType.h"

#include <functional>
#include <vector>

namespace dsflow::train {

class AdamW {
public:
  /// Over the parameters whose gradient buffer `g` satisfies updates(g) (all
  /// when `updates` is empty).
  AdamW(const Plan &plan, bool bf16Moments,
        const std::function<bool(int32_t)> &updates = {});

  /// The sum of squares of the gradients whose buffer satisfies `counted`.
  double squaredGradientSum(exec::Memory &memory,
                            const std::function<bool(int32_t)> &counted) const;

  /// One update: gradients are multiplied by `gradScale` (1/micro-batches and
  /// clipping) before use.
  void step(exec::Memory &memory, double lr, double gradScale);
  /// The same update where the device keeps parameters, gradients and
  /// moments (the same numbers; the device computes each element).
  io::Status step(exec::DeviceOptimizer &device, double lr, double gradScale);
  /// Zeroed moments on the device, or this object's (after a resume).
  io::Status prepareDevice(exec::DeviceOptimizer &device, bool resumed);
  /// The device's moments into this object (before a checkpoint).
  io::Status momentsFromDevice(exec::DeviceOptimizer &device);

  int64_t steps() const { return stepCount; }

  /// The state as checkpoint tensors ("<param>.exp_avg", "<param>.exp_avg_sq",
  /// "optimizer.step"); they point into this object.
  std::vector<io::TensorRef> stateTensors() const;
  /// Restores the state from a checkpoint's optimizer file.
  io::Status loadState(const io::SafetensorsFile &file);

private:
  /// The numbers of update number `step`.
  exec::AdamWScalars scalarsFor(int64_t step, double lr,
                                double gradScale) const;
  struct Slot {
    int32_t param, grad;
    int64_t size;
    bool decay;
    std::string name;
    std::vector<float> m, v;        // FP32 moments
    std::vector<io::BF16> m16, v16; // BF16 moments
  };
  const Plan &plan;
  const TrainingConfig &config;
  bool bf16;
  std::vector<Slot> slots;
  int64_t stepCount = 0;
  std::vector<int64_t> stepTensor = {0};
};

} // namespace dsflow::train

#endif // DSFLOW_RUNTIME_TRAIN_ADAMW_H
