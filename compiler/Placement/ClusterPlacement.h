//===- ClusterPlacement.h - The placement a plan records --------*- C++ -*-===//
//
// What dsflow-compile records for a cluster with expert parallelism: EPLB over
// one EP group (ep ranks spanning ep / ranks_per_node nodes, or one node) for
// every MoE layer of the model, from measured router loads (dsflow-run
// --expert-loads) or uniform ones when only extra slots are asked for.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_COMPILER_PLACEMENT_CLUSTERPLACEMENT_H
#define DSFLOW_COMPILER_PLACEMENT_CLUSTERPLACEMENT_H

#include "Placement/ExpertPlacement.h"
#include "schemas/plan.pb.h"

namespace dsflow::placement {

/// The model's MoE layers: from the first non-dense layer through the MTP
/// modules (MTP module k is layer num_layers + k - 1).
std::vector<int64_t> moeLayers(const ModelSpec &spec);

/// The layout of one EP group of `cluster`; `slotsPerRank` 0 means
/// experts / ep (no replicas).
PlacementLayout epGroupLayout(const ModelSpec &spec,
                              const ClusterConfig &cluster,
                              int64_t slotsPerRank);

/// The loads to place every MoE layer of `spec` by: those of `file` (which
/// must name each MoE layer, in any order, and no other layer) or, when null,
/// uniform ones.
io::Expected<std::vector<io::LayerLoads>>
modelLoads(const ModelSpec &spec, int64_t experts, const io::ExpertLoads *file);

} // namespace dsflow::placement

#endif // DSFLOW_COMPILER_PLACEMENT_CLUSTERPLACEMENT_H
