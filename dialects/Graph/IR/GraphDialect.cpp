//===- GraphDialect.cpp - The dsflow graph dialect ------------------------===//
#include "Graph/IR/GraphDialect.h"
#include "Graph/IR/GraphOps.h"

#include "mlir/IR/BuiltinAttributes.h"

using namespace dsflow::graph;

#include "Graph/IR/GraphDialect.cpp.inc"

void GraphDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "Graph/IR/GraphOps.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// The FP8 pass's attributes
//===----------------------------------------------------------------------===//

/// graph.fp8 = {format = "e4m3", activations = "1x128" | "128x1",
///              weights = "128x128" (GEMMs with weights), scales = "fp32" |
///              "ue8m0"} marks an op whose GEMM (or, on dispatch, whose
/// output) is FP8: activations tiled along the contraction ("128x1": along
/// the token dimension, for weight gradients), weights in 128x128 blocks.
/// graph.precision = "bf16" marks an op computed from BF16-rounded inputs.
mlir::LogicalResult
GraphDialect::verifyOperationAttribute(mlir::Operation *op,
                                       mlir::NamedAttribute attribute) {
  llvm::StringRef name = attribute.getName().strref();
  if (name == "graph.precision") {
    auto value = llvm::dyn_cast<mlir::StringAttr>(attribute.getValue());
    if (!value || value.getValue() != "bf16")
      return op->emitOpError("graph.precision must be \"bf16\"");
    return mlir::success();
  }
  if (name != "graph.fp8")
    return mlir::success();
  auto dict = llvm::dyn_cast<mlir::DictionaryAttr>(attribute.getValue());
  if (!dict)
    return op->emitOpError("graph.fp8 must be a dictionary");
  auto text = [&](llvm::StringRef key) -> std::optional<llvm::StringRef> {
    if (auto s = dict.getAs<mlir::StringAttr>(key))
      return s.getValue();
    return std::nullopt;
  };
  if (text("format") != std::optional<llvm::StringRef>("e4m3"))
    return op->emitOpError("graph.fp8: format must be \"e4m3\"");
  std::optional<llvm::StringRef> tiles = text("activations");
  if (!tiles || (*tiles != "1x128" && *tiles != "128x1"))
    return op->emitOpError(
        "graph.fp8: activations must be tiled \"1x128\" or \"128x1\"");
  std::optional<llvm::StringRef> scales = text("scales");
  if (!scales || (*scales != "fp32" && *scales != "ue8m0"))
    return op->emitOpError("graph.fp8: scales must be \"fp32\" or \"ue8m0\"");
  bool hasWeights = llvm::isa<LinearOp, LinearGradOp, LinearWGradOp,
                              MtpProjectOp, MtpProjectGradOp, MtpProjectWGradOp,
                              SharedExpertsOp, SharedExpertsGradOp,
                              SharedExpertsWGradOp, ExpertFfnOp, ExpertFfnGradOp,
                              ExpertFfnWGradOp>(op);
  if (!hasWeights && !llvm::isa<DispatchOp>(op))
    return op->emitOpError("graph.fp8 applies to GEMM ops and dispatch only");
  if (hasWeights && text("weights") != std::optional<llvm::StringRef>("128x128"))
    return op->emitOpError("graph.fp8: weights must be blocked \"128x128\"");
  return mlir::success();
}
