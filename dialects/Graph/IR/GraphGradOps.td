//===- GraphGradOps.td - Gradient ops of the graph dialect -*- tablegen -*-===//
//
// The ops the autodiff pass (dsflow-autodiff) emits. Activation gradients ("B")
// and weight gradients ("W") are separate ops; W ops carry the WeightGradient
// trait so that zero-bubble and DualPipe schedules can defer them.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_GRAPH_GRAD_OPS
#define DSFLOW_GRAPH_GRAD_OPS

def Graph_WeightGradient : NativeOpTrait<"WeightGradient"> {
  let cppNamespace = "::dsflow::graph::OpTrait";
}

class Graph_GradOp<string mnemonic, list<Trait> traits = []>
    : Graph_Op<mnemonic, !listconcat([Pure], traits)>;
class Graph_WeightGradOp<string mnemonic, list<Trait> traits = []>
    : Graph_GradOp<mnemonic, !listconcat([Graph_WeightGradient], traits)>;

//===----------------------------------------------------------------------===//
// Values and gradient sinks
//===----------------------------------------------------------------------===//

def Graph_FillOp : Graph_Op<"fill", [Pure]> {
  let summary = "A tensor with every element equal to `value`";
  let description = [{
    Seeds the backward pass (d loss / d loss = 1) and stands for the zero gradient
    of an unused value.

    ```mlir
    %one = graph.fill 1.0 : tensor<f32>
    ```
  }];
  let arguments = (ins F64Attr:$value);
  let results = (outs AnyTypeOf<[Graph_Tensor, Graph_Loss]>:$result);
  let assemblyFormat = "$value attr-dict `:` type($result)";
}

def Graph_ConcatOp : Graph_Op<"concat", [Pure]> {
  let summary = "Concatenates along the last dimension (the inverse of split)";
  let description = [{
    ```mlir
    %x = graph.concat %a, %b : tensor<2x8x32xf32>, tensor<2x8x8xf32> -> tensor<2x8x40xf32>
    ```
  }];
  let arguments = (ins Variadic<Graph_Tensor>:$pieces);
  let results = (outs Graph_Tensor:$result);
  let assemblyFormat = "$pieces attr-dict `:` type($pieces) `->` type($result)";
  let hasVerifier = 1;
}

def Graph_AccumulateGradOp : Graph_Op<"accumulate_grad",
    [MemoryEffects<[MemWrite]>, AllTypesMatch<["param", "grad"]>]> {
  let summary = "Adds a gradient to a parameter's gradient buffer";
  let description = [{
    The sink of the backward pass: `grad` is d loss / d `param` for this
    micro-batch; the runtime sums it over the micro-batches of a step.

    ```mlir
    graph.accumulate_grad %w, %dw : tensor<128x64xf32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$param, Graph_Tensor:$grad);
  let assemblyFormat = "$param `,` $grad attr-dict `:` type($grad)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Dense building blocks
//===----------------------------------------------------------------------===//

def Graph_EmbeddingWGradOp : Graph_WeightGradOp<"embedding_wgrad"> {
  let summary = "Gradient of an embedding table: scatter-add of dy rows";
  let description = [{
    ```mlir
    %dt = graph.embedding_wgrad %dy, %ids : (tensor<2x8x64xf32>, tensor<2x8xi32>) -> tensor<256x64xf32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$grad_output, Graph_IdTensor:$ids);
  let results = (outs Graph_Tensor:$grad_table);
  let assemblyFormat = "$grad_output `,` $ids attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Graph_RmsNormGradOp : Graph_GradOp<"rms_norm_grad"> {
  let summary = "Input gradient of rms_norm";
  let description = [{
    ```mlir
    %dx = graph.rms_norm_grad %dy, %x, %w {epsilon = 1.0e-06 : f64} : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$grad_output, Graph_Tensor:$input,
                       Graph_Tensor:$weight, F64Attr:$epsilon);
  let results = (outs Graph_Tensor:$grad_input);
  let assemblyFormat = "$grad_output `,` $input `,` $weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Graph_RmsNormWGradOp : Graph_WeightGradOp<"rms_norm_wgrad"> {
  let summary = "Weight gradient of rms_norm";
  let description = [{
    ```mlir
    %dw = graph.rms_norm_wgrad %dy, %x {epsilon = 1.0e-06 : f64} : (tensor<2x8x64xf32>, tensor<2x8x64xf32>) -> tensor<64xf32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$grad_output, Graph_Tensor:$input,
                       F64Attr:$epsilon);
  let results = (outs Graph_Tensor:$grad_weight);
  let assemblyFormat = "$grad_output `,` $input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Graph_LinearGradOp : Graph_GradOp<"linear_grad"> {
  let summary = "Input gradient of linear: dx = dy W";
  let description = [{
    ```mlir
    %dx = graph.linear_grad %dy, %w : (tensor<2x8x128xf32>, tensor<128x64xf32>) -> tensor<2x8x64xf32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$grad_output, Graph_Tensor:$weight);
  let results = (outs Graph_Tensor:$grad_input);
  let assemblyFormat = "$grad_output `,` $weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Graph_LinearWGradOp : Graph_WeightGradOp<"linear_wgrad"> {
  let summary = "Weight gradient of linear: dW = dy^T x over all leading dims";
  let description = [{
    ```mlir
    %dw = graph.linear_wgrad %dy, %x : (tensor<2x8x128xf32>, tensor<2x8x64xf32>) -> tensor<128x64xf32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$grad_output, Graph_Tensor:$input);
  let results = (outs Graph_Tensor:$grad_weight);
  let assemblyFormat = "$grad_output `,` $input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Graph_RopeGradOp : Graph_GradOp<"rope_grad", [SameOperandsAndResultType]> {
  let summary = "Input gradient of rope: the inverse rotation";
  let description = [{
    Carries the forward op's attributes.

    ```mlir
    %dx = graph.rope_grad %dy {theta = 1.0e+04 : f64} : tensor<2x8x4x8xf32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$grad_output, F64Attr:$theta,
                       OptionalAttr<F64Attr>:$yarn_factor,
                       OptionalAttr<I64Attr>:$yarn_original_max_position,
                       OptionalAttr<F64Attr>:$yarn_beta_fast,
                       OptionalAttr<F64Attr>:$yarn_beta_slow);
  let results = (outs Graph_Tensor:$grad_input);
  let assemblyFormat = "$grad_output attr-dict `:` type($grad_output)";
}

def Graph_MlaAttentionGradOp : Graph_GradOp<"mla_attention_grad"> {
  let summary = "Gradients of the MLA attention core w.r.t. all five inputs";
  let description = [{
    d k_pe sums over heads (the rotary key is shared).

    ```mlir
    %dqn, %dqp, %dkn, %dkp, %dv = graph.mla_attention_grad %do, %qn, %qp, %kn, %kp, %v {softmax_scale = 0.2 : f64} : (...) -> (...)
    ```
  }];
  let arguments = (ins Graph_Tensor:$grad_output, Graph_Tensor:$q_nope,
                       Graph_Tensor:$q_pe, Graph_Tensor:$k_nope,
                       Graph_Tensor:$k_pe, Graph_Tensor:$value,
                       F64Attr:$softmax_scale);
  let results = (outs Graph_Tensor:$grad_q_nope, Graph_Tensor:$grad_q_pe,
                      Graph_Tensor:$grad_k_nope, Graph_Tensor:$grad_k_pe,
                      Graph_Tensor:$grad_value);
  let assemblyFormat = [{
    $grad_output `,` $q_nope `,` $q_pe `,` $k_nope `,` $k_pe `,` $value attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Graph_SwigluGradOp : Graph_GradOp<"swiglu_grad",
    [AllTypesMatch<["grad_output", "gate", "up", "grad_gate", "grad_up"]>]> {
  let summary = "Gradients of silu(gate) * up";
  let description = [{
    ```mlir
    %dg, %du = graph.swiglu_grad %dy, %g, %u : tensor<2x8x128xf32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$grad_output, Graph_Tensor:$gate,
                       Graph_Tensor:$up);
  let results = (outs Graph_Tensor:$grad_gate, Graph_Tensor:$grad_up);
  let assemblyFormat = "$grad_output `,` $gate `,` $up attr-dict `:` type($grad_output)";
  }

def Graph_CrossEntropyGradOp : Graph_GradOp<"cross_entropy_grad"> {
  let summary = "Logit gradient of the mean cross-entropy, times d loss";
  let description = [{
    ```mlir
    %dl = graph.cross_entropy_grad %dloss, %logits, %labels : (tensor<f32>, tensor<2x8x256xf32>, tensor<2x8xi32>) -> tensor<2x8x256xf32>
    ```
  }];
  let arguments = (ins Graph_Loss:$grad_loss, Graph_Tensor:$logits,
                       Graph_IdTensor:$labels);
  let results = (outs Graph_Tensor:$grad_logits);
  let assemblyFormat = "$grad_loss `,` $logits `,` $labels attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Mixture of experts
//===----------------------------------------------------------------------===//

def Graph_MoeGateGradOp : Graph_GradOp<"moe_gate_grad"> {
  let summary = "Router logit gradient from the gradients of weights and scores";
  let description = [{
    Back through route_scale, top-k normalization and the score function to the
    router logits x W^T; the selection itself is piecewise constant. The scores'
    own gradient (from the balance loss) is optional. The input and weight
    gradients then follow as linear_grad / linear_wgrad of the gate weight.

    ```mlir
    %dlogits = graph.moe_gate_grad %dw, %scores, %idx {route_scale = 2.5 : f64, score_function = "sigmoid", normalize_topk = true} : (tensor<16x2xf32>, tensor<16x8xf32>, tensor<16x2xi32>) -> tensor<16x8xf32>
    %dlogits2 = graph.moe_gate_grad %dw, %scores, %idx scores_grad %ds {...} : (tensor<16x2xf32>, tensor<16x8xf32>, tensor<16x2xi32>, tensor<16x8xf32>) -> tensor<16x8xf32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$grad_weights, Graph_Tensor:$scores,
                       Graph_IdTensor:$indices,
                       Optional<Graph_Tensor>:$grad_scores, F64Attr:$route_scale,
                       StrAttr:$score_function, BoolAttr:$normalize_topk);
  let results = (outs Graph_Tensor:$grad_logits);
  let assemblyFormat = [{
    $grad_weights `,` $scores `,` $indices (`scores_grad` $grad_scores^)? attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Graph_BalanceLossGradOp : Graph_GradOp<"balance_loss_grad"> {
  let summary = "Score gradient of the sequence-wise balance loss";
  let description = [{
    ```mlir
    %ds = graph.balance_loss_grad %dl, %scores, %indices {alpha = 1.0e-04 : f64, sequences = 2 : i64} : (tensor<f32>, tensor<16x8xf32>, tensor<16x2xi32>) -> tensor<16x8xf32>
    ```
  }];
  let arguments = (ins Graph_Loss:$grad_loss, Graph_Tensor:$scores,
                       Graph_IdTensor:$indices, F64Attr:$alpha,
                       ConfinedAttr<I64Attr, [IntPositive]>:$sequences);
  let results = (outs Graph_Tensor:$grad_scores);
  let assemblyFormat = "$grad_loss `,` $scores `,` $indices attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Graph_DispatchGradOp : Graph_GradOp<"dispatch_grad"> {
  let summary = "Input gradient of dispatch: each token sums its k rows' gradients";
  let description = [{
    ```mlir
    %dx = graph.dispatch_grad %drows, %idx : (tensor<32x64xf32>, tensor<16x2xi32>) -> tensor<16x64xf32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$grad_rows, Graph_IdTensor:$indices);
  let results = (outs Graph_Tensor:$grad_input);
  let assemblyFormat = "$grad_rows `,` $indices attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Graph_ExpertFfnGradOp : Graph_GradOp<"expert_ffn_grad", [AttrSizedOperandSegments]> {
  let summary = "Row gradient of the routed experts' FFNs, and each row's dot";
  let description = [{
    Besides the rows' gradient, `row_dots[r]` = <dA_r, A_r>, A the SwiGLU
    output that the down-projection reads and dA its gradient. With dy_r =
    w_r dy_t (combine_grad), that is w_r <dy_t, y_r>: the combine weight times
    its gradient, so combine_weights_grad needs no copy of the expert outputs.

    ```mlir
    %drows, %dots = graph.expert_ffn_grad %dy, %rows, %counts gate(%g0) up(%u0) down(%d0) : (tensor<8x64xf32>, tensor<8x64xf32>, tensor<1xi32>) weights tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x32xf32> -> tensor<8x64xf32>, tensor<8xf32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$grad_output, Graph_Tensor:$rows,
                       Graph_IdTensor:$counts,
                       Variadic<Graph_Tensor>:$gate_weights,
                       Variadic<Graph_Tensor>:$up_weights,
                       Variadic<Graph_Tensor>:$down_weights);
  let results = (outs Graph_Tensor:$grad_rows, Graph_Tensor:$row_dots);
  let assemblyFormat = [{
    $grad_output `,` $rows `,` $counts `gate` `(` $gate_weights `)` `up` `(` $up_weights `)`
    `down` `(` $down_weights `)` attr-dict `:` `(` type($grad_output) `,` type($rows) `,`
    type($counts) `)` `weights` custom<UniformType>(type($gate_weights), ref($gate_weights)) `,`
    custom<UniformType>(type($up_weights), ref($up_weights)) `,`
    custom<UniformType>(type($down_weights), ref($down_weights)) `->` type($grad_rows) `,`
    type($row_dots)
  }];
  let hasVerifier = 1;
}

def Graph_ExpertFfnWGradOp : Graph_WeightGradOp<"expert_ffn_wgrad", [AttrSizedOperandSegments, AttrSizedResultSegments]> {
  let summary = "Weight gradients of every routed expert";
  let description = [{
    One gate, up and down gradient per expert, in the order of the weights.

    ```mlir
    %dg, %du, %dd = graph.expert_ffn_wgrad %dy, %rows, %counts gate(%g0) up(%u0) down(%d0) : (tensor<8x64xf32>, tensor<8x64xf32>, tensor<1xi32>) weights tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x32xf32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$grad_output, Graph_Tensor:$rows,
                       Graph_IdTensor:$counts,
                       Variadic<Graph_Tensor>:$gate_weights,
                       Variadic<Graph_Tensor>:$up_weights,
                       Variadic<Graph_Tensor>:$down_weights);
  let results = (outs Variadic<Graph_Tensor>:$grad_gate_weights,
                      Variadic<Graph_Tensor>:$grad_up_weights,
                      Variadic<Graph_Tensor>:$grad_down_weights);
  let assemblyFormat = [{
    $grad_output `,` $rows `,` $counts `gate` `(` $gate_weights `)` `up` `(` $up_weights `)`
    `down` `(` $down_weights `)` attr-dict `:` `(` type($grad_output) `,` type($rows) `,`
    type($counts) `)` `weights` custom<UniformType>(type($gate_weights), ref($gate_weights)) `,`
    custom<UniformType>(type($up_weights), ref($up_weights)) `,`
    custom<UniformType>(type($down_weights), ref($down_weights))
    `->` custom<UniformType>(type($grad_gate_weights), ref($gate_weights)) `,`
    custom<UniformType>(type($grad_up_weights), ref($up_weights)) `,`
    custom<UniformType>(type($grad_down_weights), ref($down_weights))
  }];
  let hasVerifier = 1;
}

def Graph_CombineGradOp : Graph_GradOp<"combine_grad"> {
  let summary = "Gradient of combine w.r.t. the expert rows";
  let description = [{
    dRows[row(t, j)] = w[t, j] dy[t]. The weights' gradient is
    combine_weights_grad's: it needs no expert outputs kept for the backward.

    ```mlir
    %drows = graph.combine_grad %dy, %w, %idx : (tensor<16x64xf32>, tensor<16x2xf32>, tensor<16x2xi32>) -> tensor<32x64xf32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$grad_output, Graph_Tensor:$weights,
                       Graph_IdTensor:$indices);
  let results = (outs Graph_Tensor:$grad_rows);
  let assemblyFormat = "$grad_output `,` $weights `,` $indices attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Graph_CombineWeightsGradOp : Graph_GradOp<"combine_weights_grad"> {
  let summary = "Gradient of combine w.r.t. its weights, from the experts' row dots";
  let description = [{
    dw[t, j] = <dy[t], y[row(t, j)]> = row_dots[row(t, j)] / w[t, j], the row
    dots being expert_ffn_grad's (w <dy, y> computed from the SwiGLU output,
    which the backward has anyway). A zero weight gets a zero gradient.

    ```mlir
    %dw = graph.combine_weights_grad %dots, %w, %idx : (tensor<32xf32>, tensor<16x2xf32>, tensor<16x2xi32>) -> tensor<16x2xf32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$row_dots, Graph_Tensor:$weights,
                       Graph_IdTensor:$indices);
  let results = (outs Graph_Tensor:$grad_weights);
  let assemblyFormat = "$row_dots `,` $weights `,` $indices attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Graph_SharedExpertsGradOp : Graph_GradOp<"shared_experts_grad"> {
  let summary = "Input gradient of the shared experts";
  let description = [{
    ```mlir
    %dx = graph.shared_experts_grad %dy, %x, %g, %u, %d : (...) -> tensor<16x64xf32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$grad_output, Graph_Tensor:$input,
                       Graph_Tensor:$gate_weight, Graph_Tensor:$up_weight,
                       Graph_Tensor:$down_weight);
  let results = (outs Graph_Tensor:$grad_input);
  let assemblyFormat = "$grad_output `,` $input `,` $gate_weight `,` $up_weight `,` $down_weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Graph_SharedExpertsWGradOp : Graph_WeightGradOp<"shared_experts_wgrad"> {
  let summary = "Weight gradients of the shared experts";
  let description = [{
    ```mlir
    %dg, %du, %dd = graph.shared_experts_wgrad %dy, %x, %g, %u, %d : (...) -> (...)
    ```
  }];
  let arguments = (ins Graph_Tensor:$grad_output, Graph_Tensor:$input,
                       Graph_Tensor:$gate_weight, Graph_Tensor:$up_weight,
                       Graph_Tensor:$down_weight);
  let results = (outs Graph_Tensor:$grad_gate_weight, Graph_Tensor:$grad_up_weight,
                      Graph_Tensor:$grad_down_weight);
  let assemblyFormat = "$grad_output `,` $input `,` $gate_weight `,` $up_weight `,` $down_weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Multi-token prediction
//===----------------------------------------------------------------------===//

def Graph_MtpProjectGradOp : Graph_GradOp<"mtp_project_grad"> {
  let summary = "Gradients of mtp_project w.r.t. its two inputs";
  let description = [{
    ```mlir
    %de, %dh = graph.mtp_project_grad %dy, %eh : (tensor<2x8x64xf32>, tensor<64x128xf32>) -> (tensor<2x8x64xf32>, tensor<2x8x64xf32>)
    ```
  }];
  let arguments = (ins Graph_Tensor:$grad_output, Graph_Tensor:$eh_proj);
  let results = (outs Graph_Tensor:$grad_embedded, Graph_Tensor:$grad_hidden);
  let assemblyFormat = "$grad_output `,` $eh_proj attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Graph_MtpProjectWGradOp : Graph_WeightGradOp<"mtp_project_wgrad"> {
  let summary = "Gradient of eh_proj";
  let description = [{
    ```mlir
    %deh = graph.mtp_project_wgrad %dy, %e, %h : (...) -> tensor<64x128xf32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$grad_output, Graph_Tensor:$embedded,
                       Graph_Tensor:$hidden);
  let results = (outs Graph_Tensor:$grad_eh_proj);
  let assemblyFormat = "$grad_output `,` $embedded `,` $hidden attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

#endif // DSFLOW_GRAPH_GRAD_OPS
