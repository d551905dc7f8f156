//===- ParamSummary.h - Parameter counts read off the graph -----*- C++ -*-===//
//
// Counts parameters by walking the graph's graph.param ops, so the figures describe
// exactly the graph that gets compiled. Components follow the checkpoint's naming.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_FRONTEND_PARAMSUMMARY_H
#define DSFLOW_FRONTEND_PARAMSUMMARY_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

#include <string>
#include <vector>

namespace dsflow {

struct ComponentCount {
  std::string component;
  int64_t tensors = 0;
  int64_t parameters = 0;
  /// Parameters a token passes through: routed experts count k/E of theirs.
  double activated = 0;
};

struct ParamSummary {
  /// Main-model components, in a fixed display order (empty ones omitted).
  std::vector<ComponentCount> components;
  ComponentCount main;
  /// The MTP modules' own parameters (they share embedding and output head).
  ComponentCount mtp;
  /// The embedding and head copies the Hugging Face checkpoint stores per MTP module.
  int64_t mtpSharedCopies = 0;
  int64_t withMtp() const { return main.parameters + mtp.parameters + mtpSharedCopies; }
};

/// Counts the parameters of a module built by buildGraph().
ParamSummary summarizeParameters(mlir::ModuleOp module);

/// Prints the table: one row per component, then the totals.
void printParamSummary(const ParamSummary &summary, mlir::ModuleOp module,
                       llvm::raw_ostream &os);

} // namespace dsflow

#endif // DSFLOW_FRONTEND_PARAMSUMMARY_H
