//===- ClusterConfig.h - The cluster a plan is compiled for -----*- C++ -*-===//
//
// Reads a cluster description (ClusterConfig in protobuf text format) and checks
// a layout against itself and the model: degrees that multiply to the world
// size, experts that divide over the expert-parallel ranks, expert groups that
// map onto the nodes an expert-parallel group spans. Errors are one line.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_CLUSTER_CLUSTERCONFIG_H
#define DSFLOW_CLUSTER_CLUSTERCONFIG_H

#include "schemas/plan.pb.h"

#include <optional>
#include <string>

namespace dsflow {

/// A 1-rank cluster (what a plan without a cluster means).
ClusterConfig singleRankCluster();

/// Reads a ClusterConfig text proto; on error returns nullopt and sets `error`
/// ("PATH: what is wrong"). Unset fields default to 1 (zero1 to false).
std::optional<ClusterConfig> loadClusterConfig(const std::string &path,
                                               std::string &error);

/// The first rule `cluster` breaks for `model`, or "" when it is valid.
std::string validateCluster(const ClusterConfig &cluster,
                            const ModelSpec &model);

inline int64_t worldSize(const ClusterConfig &c) {
  return int64_t(c.nodes()) * c.ranks_per_node();
}
/// Ranks that train on their own data within a pipeline stage.
inline int64_t dataParallelRanks(const ClusterConfig &c) {
  return int64_t(c.ep()) * c.dp();
}

} // namespace dsflow

#endif // DSFLOW_CLUSTER_CLUSTERCONFIG_H
