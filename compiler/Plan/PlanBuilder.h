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
/// op the plan cannot express.
std::optional<Plan> buildPlan(mlir::ModuleOp module, const ModelSpec &spec,
                              const TrainingConfig &training);

} // namespace dsflow

#endif // DSFLOW_COMPILER_PLAN_PLANBUILDER_H
