//===- Pipelines.cpp - The named pass pipelines ---------------------------===//
#include "Pipelines/Pipelines.h"

#include "Graph/Transforms/Passes.h"

#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

namespace dsflow {

void buildTrainingPipeline(mlir::OpPassManager &pm,
                           const TrainingPipelineOptions &options) {
  pm.addPass(mlir::createCanonicalizerPass());
  pm.addPass(graph::createAutodiff());
  if (!options.recompute.empty()) {
    graph::RecomputeOptions recompute;
    recompute.ops.assign(options.recompute.begin(), options.recompute.end());
    pm.addPass(graph::createRecompute(recompute));
  }
  if (options.fp8) {
    graph::Fp8CastOptions fp8;
    fp8.ue8m0 = options.fp8Ue8m0;
    pm.addPass(graph::createFp8Cast(fp8));
  }
}

void registerPipelines() {
  mlir::PassPipelineRegistration<>(
      "dsflow-training",
      "The forward graph to a differentiated training step",
      [](mlir::OpPassManager &pm) { buildTrainingPipeline(pm, {}); });
}

} // namespace dsflow
