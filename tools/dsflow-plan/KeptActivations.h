//===- KeptActivations.h - What the forward keeps for the backward -*- C++
//-*-===//
//
// The activations alive when the backward starts, grouped by the op that
// produces them and the output's name (buffer names are "op.K.output"), largest
// first: where the activation memory of a training step goes.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_TOOLS_DSFLOW_PLAN_KEPTACTIVATIONS_H
#define DSFLOW_TOOLS_DSFLOW_PLAN_KEPTACTIVATIONS_H

#include "schemas/plan.pb.h"

namespace dsflow {

/// Prints the largest groups (all with `all`).
void printKeptActivations(const Plan &plan, bool all);

} // namespace dsflow

#endif // DSFLOW_TOOLS_DSFLOW_PLAN_KEPTACTIVATIONS_H
