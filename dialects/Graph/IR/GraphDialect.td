//===- GraphDialect.td - The dsflow graph dialect ----------*- tablegen -*-===//
//
// The model-level dialect: what a DeepSeek-V3-style model computes, one op per
// operation that later passes (autodiff, FP8, recompute, expert placement) reason
// about. docs/dialects/graph.md lists its invariants.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_GRAPH_DIALECT
#define DSFLOW_GRAPH_DIALECT

include "mlir/IR/OpBase.td"

def Graph_Dialect : Dialect {
  let name = "graph";
  let cppNamespace = "::dsflow::graph";
  // graph.fp8 and graph.precision (the FP8 pass's marks) are verified.
  let hasOperationAttrVerify = 1;
  let summary = "The model-level graph of a DeepSeek-V3-style transformer";
  let description = [{
    Values are statically shaped tensors. Parameters are `graph.param` ops named
    exactly as in the Hugging Face checkpoint; data enters through `graph.input`.
    The ops are coarse on purpose: MLA attention, the MoE gate, dispatch, expert FFN
    and combine are single ops so that passes see them whole.
  }];
}

class Graph_Op<string mnemonic, list<Trait> traits = []>
    : Op<Graph_Dialect, mnemonic, traits>;

#endif // DSFLOW_GRAPH_DIALECT
