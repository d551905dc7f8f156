//===- GraphBuilder.h - ModelSpec -> graph dialect --------------*- C++ -*-===//
#ifndef DSFLOW_FRONTEND_GRAPHBUILDER_H
#define DSFLOW_FRONTEND_GRAPHBUILDER_H

#include "schemas/model.pb.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace dsflow {

/// The training shapes and loss weights the graph is built for.
struct GraphOptions {
  int64_t microBatch = 1;
  int64_t seqLen = 4096;
  /// Weight λ of the MTP loss (DeepSeek-V3: 0.3, later 0.1).
  double mtpLossWeight = 0.3;
  /// Weight alpha of the complementary sequence-wise balance loss, added to the
  /// total loss for every MoE layer (DeepSeek-V3: 0.0001; 0 disables).
  double balanceLossAlpha = 0.0001;
  /// Build everything (parameters, activations, router, losses) in float64:
  /// for finite-difference gradient checks, whatever the model's precision.
  bool float64 = false;
};

/// Builds the forward training graph of `spec`: one function @forward whose body
/// declares every parameter (named as in the Hugging Face checkpoint) and returns
/// (total loss, LM loss[, MTP loss]), where total = LM + λ·MTP + the MoE layers'
/// sequence-wise balance losses. The module carries graph.model,
/// graph.num_layers and graph.mtp_depth attributes.
mlir::OwningOpRef<mlir::ModuleOp> buildGraph(mlir::MLIRContext &context,
                                             const ModelSpec &spec,
                                             const GraphOptions &options);

/// Registers the dialects the frontend's output uses.
void registerFrontendDialects(mlir::MLIRContext &context);

} // namespace dsflow

#endif // DSFLOW_FRONTEND_GRAPHBUILDER_H
