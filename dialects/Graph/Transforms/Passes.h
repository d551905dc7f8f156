//===- Passes.h - Passes on the graph dialect -------------------*- C++ -*-===//
#ifndef DSFLOW_DIALECTS_GRAPH_TRANSFORMS_PASSES_H
#define DSFLOW_DIALECTS_GRAPH_TRANSFORMS_PASSES_H

#include "Graph/IR/GraphDialect.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace dsflow::graph {

/// The unit attribute dsflow-autodiff puts on every op of the backward part.
constexpr const char *kBackwardAttr = "graph.backward";
/// dsflow-autodiff numbers the forward ops (graph.fwd_id) and marks the ops it
/// emits for a forward op with that number (graph.grad_of). Recomputed copies
/// keep their original's number. The plan finds saved buffers through them.
constexpr const char *kForwardIdAttr = "graph.fwd_id";
constexpr const char *kGradOfAttr = "graph.grad_of";

#define GEN_PASS_DECL
#include "Graph/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "Graph/Transforms/Passes.h.inc"

} // namespace dsflow::graph

#endif // DSFLOW_DIALECTS_GRAPH_TRANSFORMS_PASSES_H
