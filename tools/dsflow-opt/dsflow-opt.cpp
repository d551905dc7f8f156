//===- dsflow-opt.cpp - mlir-opt with dsflow's dialects and passes --------===//
#include "Graph/IR/GraphDialect.h"
#include "Graph/Transforms/Passes.h"
#include "Pipelines/Pipelines.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  registry.insert<dsflow::graph::GraphDialect, mlir::func::FuncDialect>();
  // The core passes (canonicalize, cse, ...) run on the graph dialect too.
  mlir::registerTransformsPasses();
  dsflow::graph::registerGraphPasses();
  dsflow::registerPipelines();
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "dsflow optimizer driver\n", registry));
}
