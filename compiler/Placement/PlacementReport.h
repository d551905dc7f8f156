//===- PlacementReport.h - Expected tokens per EP rank and node -*- C++ -*-===//
//
// Measures a placement against the loads it was made for: the tokens each EP
// rank (and each node) expects, given that an expert's tokens split evenly
// between its replicas, and the imbalance max / mean. "Before" is the naive
// contiguous placement with no replicas (expert e on rank e / (experts /
// epRanks)); "after" is the placement.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_COMPILER_PLACEMENT_PLACEMENTREPORT_H
#define DSFLOW_COMPILER_PLACEMENT_PLACEMENTREPORT_H

#include "Placement/ExpertPlacement.h"

namespace dsflow::placement {

struct Balance {
  double max = 0, mean = 0;
  /// max / mean; 1 when nothing is routed.
  double ratio() const { return mean > 0 ? max / mean : 1.0; }
};

Balance balanceOf(const std::vector<double> &values);

/// Tokens each EP rank expects under `placement`.
std::vector<double> rankLoads(const PlacementLayout &layout,
                              const LayerPlacement &placement,
                              const std::vector<int64_t> &loads);

/// Tokens each EP rank receives under the naive contiguous placement.
std::vector<double> naiveRankLoads(const PlacementLayout &layout,
                                   const std::vector<int64_t> &loads);

/// Sums per-rank loads into per-node loads (ranks are node-major).
std::vector<double> nodeLoads(const PlacementLayout &layout,
                              const std::vector<double> &rankLoads);

struct LayerReport {
  int64_t layer = 0;
  Balance rankBefore, rankAfter, nodeBefore, nodeAfter;
  /// The most replicas any expert got.
  int64_t maxReplicas = 1;
};

/// A max / mean ratio over layers: the worst layer's and the mean.
struct OverLayers {
  double worstBefore = 0, worstAfter = 0, meanBefore = 0, meanAfter = 0;
};

struct PlacementReport {
  std::vector<LayerReport> layers;
  /// Per EP rank and per node.
  OverLayers rank, node;
};

/// Reports `placement` against the loads it was made for (same layers, in the
/// same order).
PlacementReport reportPlacement(const Placement &placement,
                                const std::vector<io::LayerLoads> &loads);

} // namespace dsflow::placement

#endif // DSFLOW_COMPILER_PLACEMENT_PLACEMENTREPORT_H
