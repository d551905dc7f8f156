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
  /// Run dsflow-fp8-cast (DeepSeek-V3's FP8 GEMMs), with UE8M0 scales or not.
  bool fp8 = false;
  bool fp8Ue8m0 = false;
};

/// The graph passes from the forward model to a differentiated training step:
/// canonicalization, dsflow-autodiff, dsflow-recompute and dsflow-fp8-cast when
/// asked. (The distribution passes will join here.)
void buildTrainingPipeline(mlir::OpPassManager &pm,
                           const TrainingPipelineOptions &options);

/// Registers the pipelines with dsflow-opt ("--dsflow-training").
void registerPipelines();

} // namespace dsflow

#endif // DSFLOW_COMPILER_PIPELINES_PIPELINES_H
