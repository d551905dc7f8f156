//===- PlacementJson.h - A placement as JSON --------------------*- C++ -*-===//
//
// dsflow-placement -o FILE writes this (one layer per line; fields in
// docs/expert-placement.md):
//   {"format": "dsflow.expert_placement", "model": "...", "experts": 256,
//    "groups": 8, "nodes": 8, "ep_ranks": 64, "slots_per_rank": 5,
//    "algorithm": "hierarchical", "layers": [{"layer": 3, "loads": [...],
//    "slot_expert": [...], "replicas": [[...], ...], "slot_share": [...],
//    "rank_max_over_mean": {"before": 4.1, "after": 1.02}}, ...]}
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_COMPILER_PLACEMENT_PLACEMENTJSON_H
#define DSFLOW_COMPILER_PLACEMENT_PLACEMENTJSON_H

#include "Placement/PlacementReport.h"

#include <string>

namespace dsflow::placement {

inline constexpr const char *kPlacementFormat = "dsflow.expert_placement";

/// The JSON text of `placement`, with the loads it was made for and its
/// report (both in the placement's layer order).
std::string encodePlacementJson(const Placement &placement,
                                const std::vector<io::LayerLoads> &loads,
                                const PlacementReport &report,
                                const std::string &model);

} // namespace dsflow::placement

#endif // DSFLOW_COMPILER_PLACEMENT_PLACEMENTJSON_H
