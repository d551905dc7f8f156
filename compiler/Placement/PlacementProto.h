//===- PlacementProto.h - Placements in the plan ----------------*- C++ -*-===//
//
// The plan records a placement as dsflow.ExpertPlacement (runtime/schemas/
// plan.proto): the layout's EP ranks, slots per rank and nodes, and per MoE
// layer the logical expert of every physical slot. The model's expert and
// group counts are the plan's model's.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_COMPILER_PLACEMENT_PLACEMENTPROTO_H
#define DSFLOW_COMPILER_PLACEMENT_PLACEMENTPROTO_H

#include "Placement/ExpertPlacement.h"
#include "schemas/plan.pb.h"

namespace dsflow::placement {

dsflow::ExpertPlacement toProto(const Placement &placement);

/// Reads a plan's record for a model with `experts` routed experts in
/// `groups` groups, checking it as untrusted input: a valid layout, layers
/// named once, every slot holding an expert in range, every expert placed.
/// The algorithm is not recorded and reads as Auto.
io::Expected<Placement> fromProto(const dsflow::ExpertPlacement &proto,
                                  int64_t experts, int64_t groups);

} // namespace dsflow::placement

#endif // DSFLOW_COMPILER_PLACEMENT_PLACEMENTPROTO_H
