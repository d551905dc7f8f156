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
    of a value used several times are summed with `graph.add`. Every backward op
    carries the unit attribute `graph.backward`.
  }];
  let dependentDialects = ["::dsflow::graph::GraphDialect"];
}

def Recompute : Pass<"dsflow-recompute", "mlir::ModuleOp"> {
  let summary = "Recomputes selected activations in the backward instead of keeping them";
  let description = [{
    Runs on @train_step (after dsflow-autodiff). For every value produced by a
    selected forward op and read by the backward, the producing op is cloned
    right before the value's first backward use, and the backward reads the
    clone. The forward value then dies at its last forward use, so the plan's
    activation arena shrinks. The recomputed ops are the same kernels on the
    same inputs, so results are bitwise identical. Selections:
      rmsnorm      every graph.rms_norm
      mla_up_proj  the MLA up-projections (q_b_proj, kv_b_proj) and the
                   reshape/split/rope ops between them and the attention core
      swiglu       every graph.swiglu
      moe_dispatch every graph.dispatch: the k rows per token the routed
                   experts read, gathered again from the MoE input
    `all` selects the first three (DeepSeek-V3's selection); `none` (the
    default) nothing. A recomputed op's
    operands that are themselves recomputable are recomputed too.
  }];
  let options = [
    ListOption<"ops", "ops", "std::string",
               "What to recompute: rmsnorm, mla_up_proj, swiglu, moe_dispatch, "
               "all, none">
  ];
  let dependentDialects = ["::dsflow::graph::GraphDialect"];
}

def Fp8Cast : Pass<"dsflow-fp8-cast", "mlir::ModuleOp"> {
  let summary = "Marks the linear layers' GEMMs as FP8 E4M3 with fine-grained scaling";
  let description = [{
    DeepSeek-V3's FP8 recipe. Marks (graph.fp8) every GEMM of a linear layer, in
    the forward, the activation gradient and the weight gradient: activations
    scaled per 1x128 tile along the contraction (128x1, along the tokens, in
    weight gradients), weights per 128x128 block, scales FP32 or (ue8m0) powers
    of two. Kept in higher precision: the embedding, the output head, the MoE
    gate, the norms and the attention core. The MoE dispatch is marked FP8 (its
    rows, which the expert up-projections cache for the backward, are FP8) and
    the combine BF16 (graph.precision = "bf16").
  }];
  let options = [
    Option<"ue8m0", "ue8m0", "bool", "false",
           "Round scales up to powers of two (UE8M0)">
  ];
  let dependentDialects = ["::dsflow::graph::GraphDialect"];
}

#endif // DSFLOW_GRAPH_PASSES
