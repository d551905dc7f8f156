//===- Pipelines.h - The named pass pipelines -------------------*- C++ -*-===//
#ifndef DSFLOW_COMPILER_PIPELINES_PIPELINES_H
#define DSFLOW_COMPILER_PIPELINES_PIPELINES_H

#include "mlir/Pass/PassManager.h"

namespace dsflow {

struct TrainingPipelineOptions {};

/// The graph passes from the forward model to a differentiated training step:
/// canonicalization, then dsflow-autodiff. (FP8, recompute and the
/// distribution passes will join here.)
void buildTrainingPipeline(mlir::OpPassManager &pm,
                           const TrainingPipelineOptions &options);

/// Registers the pipelines with dsflow-opt ("--dsflow-training").
void registerPipelines();

} // namespace dsflow

#endif // DSFLOW_COMPILER_PIPELINES_PIPELINES_H
