//===- Passes.td - Passes on the graph dialect -------------*- tablegen -*-===//
#ifndef DSFLOW_GRAPH_PASSES
#define DSFLOW_GRAPH_PASSES

include "mlir/Pass/PassBase.td"

def Autodiff : Pass<"dsflow-autodiff", "mlir::ModuleOp"> {
  let summary = "Appends the backward pass to @forward (B and W gradients apart)";
  let description = [{
    Differentiates the total loss (the first result of `@forward`) with respect to
    every trainable `graph.param`, in reverse-mode. The backward ops go after the
    forward ops in the same function, which is renamed `@train_step`.
    Activation gradients (`*_grad`, "B") and weight gradients (`*_wgrad`, "W") are
    separate ops, so that schedules can run W later. Each parameter's gradient
    ends in a `graph.accumulate_grad`; `no_grad` parameters get none. Gradients
    of a value used several times are summed with `graph.add`.
  }];
  let dependentDialects = ["::dsflow::graph::GraphDialect"];
}

#endif // DSFLOW_GRAPH_PASSES
