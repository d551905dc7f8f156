//===- StepDump.h - One training step's internals, for checking -*- C++ -*-===//
//
// Captures a step for comparison with an independent implementation
// (test/reference/): the tokens of its last micro-batch, the losses and logits
// of that micro-batch, every parameter before the update, every accumulated
// gradient, the learning rate and gradient scale used, each MoE layer's expert
// loads, and every parameter after the update (AdamW and the bias rule). All
// in one safetensors file, FP32 unless said:
//   tokens (I32), loss.total, loss.lm, loss.mtp, logits.<i> (per cross-entropy),
//   param.<name>, grad.<name>, updated.<name>, lr (F64), grad_scale (F64),
//   load.<bias name> (I64)
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_TRAIN_STEPDUMP_H
#define DSFLOW_RUNTIME_TRAIN_STEPDUMP_H

#include "exec/Executor.h"
#include "io/SafetensorsWriter.h"
#include "train/ExpertBalance.h"

#include <deque>

namespace dsflow::train {

class StepDump {
public:
  /// Captures the state before the optimizer update.
  StepDump(exec::Executor &executor, const std::vector<int32_t> &tokens);
  /// Captures the updated parameters and writes the file.
  io::Status finish(const std::string &path, double lr, double gradScale,
                    const ExpertBalance &balance);

private:
  /// Copies `count` values into storage that outlives the write.
  template <typename T>
  void add(const std::string &name, io::Shape shape, const T *values,
           int64_t count);

  exec::Executor &executor;
  std::vector<io::TensorRef> tensors;
  std::deque<std::vector<float>> floats;
  std::deque<std::vector<int32_t>> ints;
  std::deque<std::vector<int64_t>> longs;
  std::deque<std::vector<double>> doubles;
};

} // namespace dsflow::train

#endif // DSFLOW_RUNTIME_TRAIN_STEPDUMP_H
