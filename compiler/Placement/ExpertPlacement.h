//===- ExpertPlacement.h - Routed experts onto EP ranks ---------*- C++ -*-===//
//
// Places each MoE layer's logical experts onto physical expert slots, as
// DeepSeek's EPLB does: hot experts get redundant replicas in the extra slots
// and the replicas are packed so that every EP rank expects about the same
// number of tokens. Two algorithms, as in EPLB:
//
//  hierarchical (groups % nodes == 0): expert groups are packed onto nodes
//    (heaviest group first, onto the lightest node with room), so that
//    node-limited routing keeps sending a token to few nodes; then, within
//    each node, replicas are chosen and packed onto the node's ranks;
//  global (otherwise): replicas are chosen over all slots and packed onto all
//    ranks.
//
// Replicas: every expert gets one slot; each extra slot goes to the expert with
// the highest load per replica. Packing: replicas (load / replica count each),
// heaviest first, onto the lightest rank with a free slot. Ties go to the lower
// index, so a placement is a pure function of its inputs.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_COMPILER_PLACEMENT_EXPERTPLACEMENT_H
#define DSFLOW_COMPILER_PLACEMENT_EXPERTPLACEMENT_H

#include "io/ExpertLoads.h"
#include "io/Status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace dsflow::placement {

/// The cluster's expert-parallel layout and the model's expert structure.
struct PlacementLayout {
  int64_t experts = 0;
  /// The model's expert groups (node-limited routing).
  int64_t groups = 1;
  int64_t nodes = 1;
  /// The EP degree; ranks are spread evenly over the nodes, node-major.
  int64_t epRanks = 1;
  /// Physical expert slots per rank; those beyond experts / epRanks hold
  /// redundant replicas.
  int64_t slotsPerRank = 1;

  int64_t slots() const { return epRanks * slotsPerRank; }
  int64_t ranksPerNode() const { return epRanks / nodes; }
  int64_t expertsPerRank() const { return experts / epRanks; }
};

enum class Algorithm { Auto, Hierarchical, Global };

/// "auto", "hierarchical", "global".
const char *algorithmName(Algorithm algorithm);

/// Checks the layout: positive sizes, experts divisible by groups and by EP
/// ranks, EP ranks by nodes, enough slots for one replica of every expert.
io::Status validateLayout(const PlacementLayout &layout);

/// The algorithm Auto resolves to for `layout`, or an error when `requested`
/// is Hierarchical and the groups do not divide over the nodes.
io::Expected<Algorithm> resolveAlgorithm(const PlacementLayout &layout,
                                         Algorithm requested);

/// One MoE layer's placement.
struct LayerPlacement {
  int64_t layer = 0;
  /// The logical expert in each physical slot; slot s of rank r is
  /// r * slotsPerRank + s.
  std::vector<int32_t> slotExpert;
  /// Each logical expert's slots, ascending; never empty.
  std::vector<std::vector<int32_t>> replicas;

  /// The share of its expert's tokens that `slot` receives: tokens are split
  /// evenly between an expert's replicas.
  double share(int64_t slot) const {
    return 1.0 / static_cast<double>(replicas[slotExpert[slot]].size());
  }
};

/// Every MoE layer's placement under one layout.
struct Placement {
  PlacementLayout layout;
  Algorithm algorithm = Algorithm::Auto;
  std::vector<LayerPlacement> layers;
};

/// Places one layer with per-expert `loads` (tokens; one per expert, not
/// negative). `algorithm` must be resolved (not Auto) and the layout valid.
LayerPlacement placeLayer(const PlacementLayout &layout, Algorithm algorithm,
                          int64_t layer, const std::vector<int64_t> &loads);

/// Checks that every layer of `loads` has one non-negative load per expert.
io::Status checkLoads(const PlacementLayout &layout,
                      const std::vector<io::LayerLoads> &loads);

/// Places every layer of `loads`. Errors: an invalid layout, an algorithm the
/// layout does not allow, loads checkLoads refuses.
io::Expected<Placement> placeExperts(const PlacementLayout &layout,
                                     Algorithm requested,
                                     const std::vector<io::LayerLoads> &loads);

/// Fills `replicas` from `slotExpert`; false if an expert has no slot or a
/// slot holds an expert out of range.
bool indexReplicas(LayerPlacement &placement, int64_t experts);

} // namespace dsflow::placement

#endif // DSFLOW_COMPILER_PLACEMENT_EXPERTPLACEMENT_H
