//===- LayerCost.h - Estimated compute of each part of a model --*- C++ -*-===//
//
// The cost model the stage partitioner balances: multiply-adds per token of
// the forward pass (the backward is about twice that for every part, so the
// ratios are what matter). Attention counts the MLA projections and the causal
// attention core at the training sequence length; a MoE layer counts its
// router, the k routed experts a token visits and the shared experts.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_COMPILER_STAGES_LAYERCOST_H
#define DSFLOW_COMPILER_STAGES_LAYERCOST_H

#include "schemas/model.pb.h"

#include <vector>

namespace dsflow::stages {

struct ModelCosts {
  /// Per decoder layer, in model order.
  std::vector<double> layers;
  /// The embedding lookup (no multiply-adds; kept for completeness), the
  /// final norm and output head, and all MTP modules (their projection, layer
  /// and their use of the shared output head).
  double embedding = 0, head = 0, mtp = 0;
};

ModelCosts estimateCosts(const ModelSpec &spec, int64_t seqLen);

} // namespace dsflow::stages

#endif // DSFLOW_COMPILER_STAGES_LAYERCOST_H
