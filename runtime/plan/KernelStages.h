//===- KernelStages.h - The plan's kernels on pipeline stages --*- C++ -*-===//
//
// Assigns every kernel of the plan's train program to a pipeline stage and
// lists the tensors that cross stages, the first step towards running stages
// on separate ranks:
// - a forward kernel runs on the latest stage among the parameters it reads
//   (by name, see stageOfTensor) and the kernels producing its inputs;
// - a recomputed forward op (dsflow-recompute) runs by the same rule;
// - a backward kernel runs where the forward op it differentiates runs (the
//   graph.grad_of attribute autodiff sets); the loss's seed on the last stage;
//   any other on the earliest stage among the kernels producing its inputs.
// Then forward tensors only flow to later stages and gradients to earlier
// ones; a plan where that fails is reported (with the kernel) rather than
// split.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_PLAN_KERNELSTAGES_H
#define DSFLOW_RUNTIME_PLAN_KERNELSTAGES_H

#include "io/Status.h"
#include "schemas/plan.pb.h"

#include <optional>
#include <string>
#include <vector>

namespace dsflow {

/// The model layer of a parameter named "model.layers.L. ...", if it is one
/// (MTP modules come after the decoder layers).
std::optional<int64_t> modelLayerOf(const std::string &name);

} // namespace dsflow

namespace dsflow::stages {

/// The stage holding the parameter named `name` in `pipeline`: a decoder
/// layer's ("model.layers.L.", L past the last stage: an MTP module, on the
/// last stage), the embedding on stage 0, anything else (head, final norm) on
/// the last stage.
int stageOfTensor(const PipelinePlan &pipeline, const std::string &name);

struct StageCrossing {
  int32_t buffer;
  int from, to;
  /// A gradient travelling towards the first stage (else an activation).
  bool backward;
};

struct KernelStages {
  /// Per kernel of the plan (-1: not in the train program).
  std::vector<int> stageOfKernel;
  /// Buffers a kernel of one stage writes and a kernel of another reads.
  std::vector<StageCrossing> crossings;
  /// Parameters read (or whose gradients are written) on a stage that does
  /// not hold them: shared across stages (e.g. the embedding that MTP reuses).
  std::vector<int32_t> sharedParameters;
};

io::Expected<KernelStages> assignKernelStages(const Plan &plan);

/// Per kernel: part of the weight-gradient ("W") part of the backward, which
/// zero-bubble schedules run after the rest (the "B" part): the kernels marked
/// weight_gradient, and every kernel after them that reads what one of them
/// (transitively) wrote, such as the addition of two contributions to a
/// shared parameter's gradient.
std::vector<char> weightGradientPart(const Plan &plan);

} // namespace dsflow::stages

#endif // DSFLOW_RUNTIME_PLAN_KERNELSTAGES_H
