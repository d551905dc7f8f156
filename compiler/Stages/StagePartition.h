//===- StagePartition.h - Decoder layers onto pipeline stages ---*- C++ -*-===//
//
// Splits the decoder layers into PP contiguous stages so that the costliest
// stage is as cheap as possible (an exact search over the split points). The
// embedding is on stage 0; the output head and the MTP modules, which share
// the embedding and the head, are on the last stage: under DualPipe rank 0
// holds both stage 0 and stage PP-1, so embedding, head and MTP live on one
// rank (the parameters MTP shares are not duplicated).
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_COMPILER_STAGES_STAGEPARTITION_H
#define DSFLOW_COMPILER_STAGES_STAGEPARTITION_H

#include "Stages/LayerCost.h"
#include "io/Status.h"

namespace dsflow::stages {

struct Stage {
  /// Decoder layers [firstLayer, endLayer).
  int64_t firstLayer = 0, endLayer = 0;
  bool embedding = false, head = false, mtp = false;
  double cost = 0;
};

/// `stages` >= 1 stages over `costs`; an error when there are fewer layers
/// than stages.
io::Expected<std::vector<Stage>> partitionStages(const ModelCosts &costs,
                                                 int64_t stages);

/// max / mean stage cost (1 = perfectly balanced).
double imbalance(const std::vector<Stage> &stages);

} // namespace dsflow::stages

#endif // DSFLOW_COMPILER_STAGES_STAGEPARTITION_H
