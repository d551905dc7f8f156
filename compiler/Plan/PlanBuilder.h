//===- PlanBuilder.h - Lower @train_step to a plan --------------*- C++ -*-===//
#ifndef DSFLOW_COMPILER_PLAN_PLANBUILDER_H
#define DSFLOW_COMPILER_PLAN_PLANBUILDER_H

#include "schemas/plan.pb.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LogicalResult.h"

#include <optional>

namespace dsflow {

/// Lowers a module after dsflow-autodiff to a single-rank plan: one buffer per
/// value (plus the kernels' saved buffers), one kernel per op, static offsets
/// for every region, one program. Emits a diagnostic and returns nullopt for an
/// op the plan cannot express. With `deferWeightGradients` the arena keeps
/// the inputs of the weight-gradient part of the backward to the end of the
/// step (MemoryPlan.weight_gradients_deferred), as zero-bubble pipeline
/// schedules (ZB1P, DualPipe) need.
std::optional<Plan> buildPlan(mlir::ModuleOp module, const ModelSpec &spec,
                              const TrainingConfig &training,
                              bool deferWeightGradients = false);

} // namespace dsflow

#endif // DSFLOW_COMPILER_PLAN_PLANBUILDER_H
