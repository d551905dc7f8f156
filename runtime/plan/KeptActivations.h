//===- KeptActivations.h - What the forward keeps for the backward -*- C++
//-*-===//
//
// An activation is kept for the backward when a forward kernel writes it and a
// backward kernel reads it (in the train program's order): the memory a
// pipeline stage holds per micro-batch in flight. dsflow-plan groups these by
// producer; the per-GPU estimate (compiler/Stages/RankMemory.h) sums them per
// stage.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_PLAN_KEPTACTIVATIONS_H
#define DSFLOW_RUNTIME_PLAN_KEPTACTIVATIONS_H

#include "schemas/plan.pb.h"

#include <vector>

namespace dsflow {

/// Per buffer of the plan: kept for the backward.
std::vector<bool> keptForBackward(const Plan &plan);

} // namespace dsflow

#endif // DSFLOW_RUNTIME_PLAN_KEPTACTIVATIONS_H
