//===- RankMemory.h - Memory of each pipeline rank of a plan ----*- C++ -*-===//
//
// What one GPU of a pipeline needs, estimated from the plan's buffers, its
// pipeline stages and cluster, and the schedule's in-flight activations:
// - parameters and gradients: the tensors of the stages the rank holds
//   (DualPipe: two), routed experts divided over the EP ranks (the placement's
//   slots per rank, or experts / ep);
// - optimizer: AdamW's two moments (FP32, or BF16 with bf16_moments) and an
//   FP32 master copy when the parameters are not FP32, sharded by ZeRO-1 over
//   the ranks holding the same tensor (ep x dp for dense ones, dp for experts);
// - activations: the caller's peak of live activation bytes, from the
//   schedule's stream and keptBytesByStage: per micro-batch, each stage holds
//   the activations its backward kernels read that the forward wrote
//   (plan/KeptActivations.h), counted from the plan's kernels and buffers;
//   plus the workspace of the chunks running at once (workspaceBytesByStage).
// The parameter name says where a tensor lives: "model.layers.L." a decoder
// layer (L >= num_layers: an MTP module), the embedding, else the head.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_COMPILER_STAGES_RANKMEMORY_H
#define DSFLOW_COMPILER_STAGES_RANKMEMORY_H

#include "Schedule/ScheduleSimulation.h"
#include "plan/KernelStages.h"
#include "schemas/plan.pb.h"

#include <vector>

namespace dsflow::stages {

struct RankMemory {
  double parameters = 0, gradients = 0, optimizer = 0, activations = 0;
  double total() const {
    return parameters + gradients + optimizer + activations;
  }
};

/// Per stage: the bytes one micro-batch keeps for its backward there. A
/// buffer read by the backward of several stages (one received from the
/// stage before, say) counts on each of them.
std::vector<double> keptBytesByStage(const Plan &plan,
                                     const KernelStages &split);

/// Per stage: the most bytes of its other (transient) activations live at
/// once while one micro-batch runs there, by liveness in the plan's kernel
/// order (a buffer belongs to the stage of the kernel that writes it first);
/// what deferred weight gradients wait for is not part of it.
std::vector<double> workspaceBytesByStage(const Plan &plan,
                                          const KernelStages &split);

/// Per stage, what a chunk holds for its backward (the schedule's
/// peakLiveActivations weighs streams with it): the kept bytes and, when the
/// plan defers weight gradients, the kept bytes the W part reads and the
/// bytes the B part writes for it. A BF16 tensor waiting for a W kernel the
/// FP8 pass marked counts at its FP8 size: that kernel reads it quantized
/// (128x1 tiles), so the quantized copy is all it needs to wait.
std::vector<schedule::ChunkActivations>
chunkActivationsByStage(const Plan &plan, const KernelStages &split);

/// For each pipeline rank: `stagesOfRank[r]` the stages it holds and
/// `activationBytes[r]` the most activation bytes it keeps at once.
std::vector<RankMemory>
estimateRankMemory(const Plan &plan,
                   const std::vector<std::vector<int>> &stagesOfRank,
                   const std::vector<double> &activationBytes);

} // namespace dsflow::stages

#endif // DSFLOW_COMPILER_STAGES_RANKMEMORY_H
