//===- Pipelines.h - The named pass pipelines -------------------*- C++ -*-===//
#ifndef DSFLOW_COMPILER_PIPELINES_PIPELINES_H
#define DSFLOW_COMPILER_PIPELINES_PIPELINES_H

#include "mlir/Pass/PassManager.h"

#include <string>
#include <vector>

namespace dsflow {

struct TrainingPipelineOptions {
  /// What dsflow-recompute recomputes: rmsnorm, mla_up_proj, swiglu, all, none.
  std::vector<std::string> recompute;
};

/// The graph passes from the forward model to a differentiated training step:
/// canonicalization, dsflow-autodiff, then dsflow-recompute when asked. (FP8 and
/// the distribution passes will join here.)
void buildTrainingPipeline(mlir::OpPassManager &pm,
                           const TrainingPipelineOptions &options);

/// Registers the pipelines with dsflow-opt ("--dsflow-training").
void registerPipelines();

} // namespace dsflow

#endif // DSFLOW_COMPILER_PIPELINES_PIPELINES_H
