//===- Passes.h - Passes on the graph dialect -------------------*- C++ -*-===//
#ifndef DSFLOW_DIALECTS_GRAPH_TRANSFORMS_PASSES_H
#define DSFLOW_DIALECTS_GRAPH_TRANSFORMS_PASSES_H

#include "Graph/IR/GraphDialect.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace dsflow::graph {

#define GEN_PASS_DECL
#include "Graph/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "Graph/Transforms/Passes.h.inc"

} // namespace dsflow::graph

#endif // DSFLOW_DIALECTS_GRAPH_TRANSFORMS_PASSES_H
