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
// - activations: what the forward keeps for the backward (the plan's
//   boundary_activation_bytes for the whole model) in proportion to the
//   stage's estimated cost, times the schedule's peak in-flight chunks.
// The parameter name says where a tensor lives: "model.layers.L." a decoder
// layer (L >= num_layers: an MTP module), the embedding, else the head.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_COMPILER_STAGES_RANKMEMORY_H
#define DSFLOW_COMPILER_STAGES_RANKMEMORY_H

#include "schemas/plan.pb.h"

#include <vector>

namespace dsflow::stages {

struct RankMemory {
  double parameters = 0, gradients = 0, optimizer = 0, activations = 0;
  double total() const {
    return parameters + gradients + optimizer + activations;
  }
};

/// For each pipeline rank: `stagesOfRank[r]` the stages it holds and
/// `peakChunks[r]` the most stage-chunk activations it keeps at once.
std::vector<RankMemory>
estimateRankMemory(const Plan &plan,
                   const std::vector<std::vector<int>> &stagesOfRank,
                   const std::vector<int> &peakChunks);

} // namespace dsflow::stages

#endif // DSFLOW_COMPILER_STAGES_RANKMEMORY_H
