//===- CompileForTest.h - A model compiled in-process for a test -*- C++
//-*-===//
//
// The training pipeline and plan lowering of dsflow-compile, for tests that
// need a real plan of one of the bundled models.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_TEST_UNIT_COMPILEFORTEST_H
#define DSFLOW_TEST_UNIT_COMPILEFORTEST_H

#include "Frontend/GraphBuilder.h"
#include "Frontend/ModelSpecLoader.h"
#include "Pipelines/Pipelines.h"
#include "Plan/PlanBuilder.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace dsflow {

/// models/`model`, sequence 6, micro-batch 2, one micro-batch per step.
inline std::optional<Plan>
compileForTest(const std::string &model, bool float64,
               const TrainingPipelineOptions &passes = {}) {
  std::string error;
  std::optional<ModelSpec> spec =
      loadModelSpec(std::string(DSFLOW_MODELS_DIR) + "/" + model, error);
  EXPECT_TRUE(spec) << error;
  if (!spec)
    return std::nullopt;
  mlir::MLIRContext context;
  GraphOptions options;
  options.seqLen = 6;
  options.microBatch = 2;
  options.float64 = float64;
  mlir::OwningOpRef<mlir::ModuleOp> module =
      buildGraph(context, *spec, options);
  mlir::PassManager pm(&context);
  buildTrainingPipeline(pm, passes);
  if (mlir::failed(pm.run(*module)))
    return std::nullopt;
  TrainingConfig training;
  training.set_seq_len(options.seqLen);
  training.set_micro_batch(options.microBatch);
  training.set_micro_batches(1);
  return buildPlan(*module, *spec, training);
}

} // namespace dsflow

#endif // DSFLOW_TEST_UNIT_COMPILEFORTEST_H
