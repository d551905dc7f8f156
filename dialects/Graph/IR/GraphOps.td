//===- GraphOps.td - The dsflow graph dialect's ops --------*- tablegen -*-===//
#ifndef DSFLOW_GRAPH_OPS
#define DSFLOW_GRAPH_OPS

include "GraphDialect.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/IR/CommonTypeConstraints.td"
include "mlir/IR/OpBase.td"
include "mlir/Interfaces/InferTypeOpInterface.td"

defvar GraphFloats = [F64, F32, BF16, F16];

def Graph_Tensor : RankedTensorOf<GraphFloats, [HasStaticShapePred],
                                  "statically shaped float tensor">;
def Graph_IdTensor : RankedTensorOf<[I32, I64], [HasStaticShapePred],
                                    "statically shaped integer tensor">;
def Graph_Loss : 0DTensorOf<[F32, F64]>;

//===----------------------------------------------------------------------===//
// Parameters and data
//===----------------------------------------------------------------------===//

def Graph_ParamOp : Graph_Op<"param", [Pure]> {
  let summary = "A trainable parameter, named as in the Hugging Face checkpoint";
  let description = [{
    The tensor stored under `name` in the checkpoint. `no_grad` marks state that
    is updated by a rule rather than by its gradient (the MoE gate's
    `e_score_correction_bias`, moved by auxiliary-loss-free balancing).

    ```mlir
    %w = graph.param "model.layers.3.mlp.experts.17.gate_proj.weight" : tensor<2048x7168xbf16>
    %b = graph.param "model.layers.3.mlp.gate.e_score_correction_bias" no_grad : tensor<256xf32>
    ```
  }];
  let arguments = (ins StrAttr:$name, UnitAttr:$no_grad);
  let results = (outs Graph_Tensor:$result);
  let assemblyFormat = "$name (`no_grad` $no_grad^)? attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Graph_InputOp : Graph_Op<"input", [Pure]> {
  let summary = "A batch of token ids fed by the data loader";
  let description = [{
    Token ids of shape [batch, sequence + mtp_depth + 1]: one window holds the
    inputs and the labels of the main model and of every MTP depth.

    ```mlir
    %tokens = graph.input "tokens" : tensor<2x66xi32>
    ```
  }];
  let arguments = (ins StrAttr:$name);
  let results = (outs Graph_IdTensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Graph_TokenWindowOp : Graph_Op<"token_window", [Pure]> {
  let summary = "The tokens from `offset` on, as many as the result holds";
  let description = [{
    Selects ids[:, offset : offset + S] along the sequence: offset 0 gives the main
    model's inputs, 1 its labels, k the inputs of MTP depth k.

    ```mlir
    %labels = graph.token_window %tokens[1] : tensor<2x66xi32> -> tensor<2x64xi32>
    ```
  }];
  let arguments = (ins Graph_IdTensor:$tokens,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$offset);
  let results = (outs Graph_IdTensor:$result);
  let assemblyFormat =
      "$tokens `[` $offset `]` attr-dict `:` type($tokens) `->` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Dense building blocks
//===----------------------------------------------------------------------===//

def Graph_EmbeddingOp : Graph_Op<"embedding", [Pure]> {
  let summary = "Looks token ids up in an embedding table";
  let description = [{
    table [V, H], ids [B, S] -> [B, S, H].

    ```mlir
    %h = graph.embedding %table, %ids : (tensor<256x64xf32>, tensor<2x16xi32>) -> tensor<2x16x64xf32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$table, Graph_IdTensor:$ids);
  let results = (outs Graph_Tensor:$result);
  let assemblyFormat = "$table `,` $ids attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Graph_RmsNormOp : Graph_Op<"rms_norm", [Pure]> {
  let summary = "RMSNorm over the last dimension";
  let description = [{
    y = x / sqrt(mean(x^2) + epsilon) * weight; weight has the size of x's last
    dimension.

    ```mlir
    %y = graph.rms_norm %x, %w {epsilon = 1.0e-06 : f64} : (tensor<2x16x64xf32>, tensor<64xf32>) -> tensor<2x16x64xf32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$input, Graph_Tensor:$weight,
                       F64Attr:$epsilon);
  let results = (outs Graph_Tensor:$result);
  let assemblyFormat = "$input `,` $weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Graph_LinearOp : Graph_Op<"linear", [Pure]> {
  let summary = "A bias-free linear layer, y = x W^T";
  let description = [{
    x [..., K], weight [N, K] (the checkpoint's out x in layout) -> [..., N].

    ```mlir
    %y = graph.linear %x, %w : (tensor<2x16x64xf32>, tensor<128x64xf32>) -> tensor<2x16x128xf32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$input, Graph_Tensor:$weight);
  let results = (outs Graph_Tensor:$result);
  let assemblyFormat = "$input `,` $weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Graph_ReshapeOp : Graph_Op<"reshape", [Pure]> {
  let summary = "Reinterprets a tensor's shape, keeping its elements in order";
  let description = [{
    ```mlir
    %y = graph.reshape %x : tensor<2x16x128xf32> -> tensor<2x16x4x32xf32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$input);
  let results = (outs Graph_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
  // reshape to the same type is the input; reshape of a reshape is one reshape.
  let hasFolder = 1;
}

def Graph_SplitOp : Graph_Op<"split", [Pure]> {
  let summary = "Splits the last dimension into consecutive pieces";
  let description = [{
    The pieces' sizes are their result types' last dimensions; they must add up to
    the input's.

    ```mlir
    %kv, %pe = graph.split %x : tensor<2x16x576xf32> -> tensor<2x16x512xf32>, tensor<2x16x64xf32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$input);
  let results = (outs Variadic<Graph_Tensor>:$results);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($results)";
  let hasVerifier = 1;
}

def Graph_RopeOp : Graph_Op<"rope", [Pure, SameOperandsAndResultType]> {
  let summary = "Rotary position embedding, with optional YaRN scaling";
  let description = [{
    x [B, S, heads, D] with D even; position = index along S. The `yarn_*`
    attributes are all present or all absent.

    ```mlir
    %y = graph.rope %x {theta = 1.0e+04 : f64} : tensor<2x16x4x16xf32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$input, F64Attr:$theta,
                       OptionalAttr<F64Attr>:$yarn_factor,
                       OptionalAttr<I64Attr>:$yarn_original_max_position,
                       OptionalAttr<F64Attr>:$yarn_beta_fast,
                       OptionalAttr<F64Attr>:$yarn_beta_slow);
  let results = (outs Graph_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def Graph_MlaAttentionOp : Graph_Op<"mla_attention", [Pure]> {
  let summary = "The causal attention core of Multi-head Latent Attention";
  let description = [{
    softmax(q k^T * softmax_scale + causal mask) v per head, where
    q = [q_nope, q_pe] and k = [k_nope, k_pe] concatenated on the head dimension,
    and k_pe is one rotary key shared by every head (MLA's decoupled RoPE).
    q_nope [B,S,H,N], q_pe [B,S,H,R], k_nope [B,S,H,N], k_pe [B,S,1,R],
    v [B,S,H,V] -> [B,S,H,V].

    ```mlir
    %o = graph.mla_attention %qn, %qp, %kn, %kp, %v {softmax_scale = 0.17 : f64}
        : (tensor<2x16x4x32xf32>, tensor<2x16x4x16xf32>, tensor<2x16x4x32xf32>,
           tensor<2x16x1x16xf32>, tensor<2x16x4x32xf32>) -> tensor<2x16x4x32xf32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$q_nope, Graph_Tensor:$q_pe,
                       Graph_Tensor:$k_nope, Graph_Tensor:$k_pe,
                       Graph_Tensor:$value, F64Attr:$softmax_scale);
  let results = (outs Graph_Tensor:$result);
  let assemblyFormat = [{
    $q_nope `,` $q_pe `,` $k_nope `,` $k_pe `,` $value attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Graph_SwigluOp : Graph_Op<"swiglu", [Pure, SameOperandsAndResultType]> {
  let summary = "silu(gate) * up";
  let description = [{
    ```mlir
    %h = graph.swiglu %gate, %up : tensor<2x16x128xf32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$gate, Graph_Tensor:$up);
  let results = (outs Graph_Tensor:$result);
  let assemblyFormat = "$gate `,` $up attr-dict `:` type($result)";
}

def Graph_AddOp : Graph_Op<"add", [Pure, Commutative, SameOperandsAndResultType]> {
  let summary = "Elementwise sum (residual connections, loss terms)";
  let description = [{
    ```mlir
    %y = graph.add %x, %r : tensor<2x16x64xf32>
    ```
  }];
  let arguments = (ins AnyTypeOf<[Graph_Tensor, Graph_Loss]>:$lhs,
                       AnyTypeOf<[Graph_Tensor, Graph_Loss]>:$rhs);
  let results = (outs AnyTypeOf<[Graph_Tensor, Graph_Loss]>:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def Graph_ScaleOp : Graph_Op<"scale", [Pure, SameOperandsAndResultType]> {
  let summary = "Multiplies by a constant factor (loss weights)";
  let description = [{
    ```mlir
    %w = graph.scale %mtp_loss {factor = 3.0e-01 : f64} : tensor<f32>
    ```
  }];
  let arguments = (ins AnyTypeOf<[Graph_Tensor, Graph_Loss]>:$input,
                       F64Attr:$factor);
  let results = (outs AnyTypeOf<[Graph_Tensor, Graph_Loss]>:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
  // scale by 1 is the input; scale of a scale multiplies the factors.
  let hasFolder = 1;
}

def Graph_CrossEntropyOp : Graph_Op<"cross_entropy", [Pure]> {
  let summary = "Mean next-token cross-entropy of logits against labels";
  let description = [{
    logits [B, S, V], labels [B, S] -> scalar mean over the B*S tokens.

    ```mlir
    %loss = graph.cross_entropy %logits, %labels : (tensor<2x16x256xf32>, tensor<2x16xi32>) -> tensor<f32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$logits, Graph_IdTensor:$labels);
  let results = (outs Graph_Loss:$result);
  let assemblyFormat = "$logits `,` $labels attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Mixture of experts
//===----------------------------------------------------------------------===//

def Graph_MoeGateOp : Graph_Op<"moe_gate", [Pure]> {
  let summary = "DeepSeek-V3's router: scores, group-limited top-k, weights";
  let description = [{
    scores = sigmoid (or softmax) of x W^T, in FP32. Selection uses
    scores + bias (the auxiliary-loss-free balancing bias) and may use only
    `groups_per_token` of the `expert_groups` groups, ranked by group score (sum of
    the group's top 2 biased scores for sigmoid, its max for softmax). The combine
    weights are the unbiased scores of the chosen experts, normalized to sum 1 when
    `normalize_topk`, then multiplied by `route_scale`.
    x [T, H], weight [E, H], bias [E] -> weights [T, k] f32, indices [T, k] i32,
    scores [T, E] f32 (for the sequence-wise balance loss).

    ```mlir
    %w, %i, %s = graph.moe_gate %x, %gw, %bias {expert_groups = 2 : i64,
        groups_per_token = 1 : i64, route_scale = 2.5 : f64,
        score_function = "sigmoid", normalize_topk = true}
        : (tensor<32x64xf32>, tensor<8x64xf32>, tensor<8xf32>)
        -> (tensor<32x2xf32>, tensor<32x2xi32>, tensor<32x8xf32>)
    ```
  }];
  let arguments = (ins Graph_Tensor:$input, Graph_Tensor:$weight,
                       Graph_Tensor:$bias,
                       ConfinedAttr<I64Attr, [IntPositive]>:$expert_groups,
                       ConfinedAttr<I64Attr, [IntPositive]>:$groups_per_token,
                       F64Attr:$route_scale, StrAttr:$score_function,
                       BoolAttr:$normalize_topk);
  let results = (outs Graph_Tensor:$weights, Graph_IdTensor:$indices,
                      Graph_Tensor:$scores);
  let assemblyFormat = "$input `,` $weight `,` $bias attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Graph_BalanceLossOp : Graph_Op<"balance_loss", [Pure]> {
  let summary = "DeepSeek-V3's complementary sequence-wise balance loss";
  let description = [{
    For each of the `sequences` equal runs of S tokens: f_i = E / (k S) times the
    number of the run's tokens that chose expert i, P_i = the run's mean of
    s'_i = s_i / sum_j s_j (scores normalized over the experts), and
    L_seq = alpha * sum_i f_i P_i. The result is the mean over sequences.
    Gradients flow through the scores only (f is a count).

    ```mlir
    %bal = graph.balance_loss %scores, %indices {alpha = 1.0e-04 : f64, sequences = 2 : i64}
        : (tensor<16x8xf32>, tensor<16x2xi32>) -> tensor<f32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$scores, Graph_IdTensor:$indices,
                       F64Attr:$alpha,
                       ConfinedAttr<I64Attr, [IntPositive]>:$sequences);
  let results = (outs Graph_Loss:$result);
  let assemblyFormat = "$scores `,` $indices attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Graph_DispatchOp : Graph_Op<"dispatch", [Pure]> {
  let summary = "Permutes token copies into expert order";
  let description = [{
    Each of the T tokens is copied once per chosen expert; the T*k copies are
    grouped by expert (stable in token order). `counts[e]` is the number of rows
    expert e receives. No token is dropped.
    x [T, H], indices [T, k] -> rows [T*k, H], counts [E] i32.

    ```mlir
    %rows, %counts = graph.dispatch %x, %i : (tensor<32x64xf32>, tensor<32x2xi32>) -> (tensor<64x64xf32>, tensor<8xi32>)
    ```
  }];
  let arguments = (ins Graph_Tensor:$input, Graph_IdTensor:$indices);
  let results = (outs Graph_Tensor:$rows, Graph_IdTensor:$counts);
  let assemblyFormat = "$input `,` $indices attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Graph_ExpertFfnOp : Graph_Op<"expert_ffn", [Pure, AttrSizedOperandSegments]> {
  let summary = "The routed experts' SwiGLU FFNs over dispatched rows";
  let description = [{
    Rows [counts[0] rows of expert 0, counts[1] of expert 1, ...] go through their
    expert's down(silu(gate x) * up x). One gate, up and down weight per expert, as
    in the checkpoint; all experts' weights share one type each.

    ```mlir
    %y = graph.expert_ffn %rows, %counts gate(%g0, %g1) up(%u0, %u1) down(%d0, %d1)
        : (tensor<64x64xf32>, tensor<2xi32>) weights tensor<32x64xf32>,
          tensor<32x64xf32>, tensor<64x32xf32> -> tensor<64x64xf32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$rows, Graph_IdTensor:$counts,
                       Variadic<Graph_Tensor>:$gate_weights,
                       Variadic<Graph_Tensor>:$up_weights,
                       Variadic<Graph_Tensor>:$down_weights);
  let results = (outs Graph_Tensor:$result);
  let assemblyFormat = [{
    $rows `,` $counts `gate` `(` $gate_weights `)` `up` `(` $up_weights `)`
    `down` `(` $down_weights `)` attr-dict `:` `(` type($rows) `,` type($counts) `)`
    `weights` custom<UniformType>(type($gate_weights), ref($gate_weights)) `,`
    custom<UniformType>(type($up_weights), ref($up_weights)) `,`
    custom<UniformType>(type($down_weights), ref($down_weights)) `->` type($result)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The number of routed experts.
    int64_t getNumExperts() { return getGateWeights().size(); }
  }];
}

def Graph_CombineOp : Graph_Op<"combine", [Pure]> {
  let summary = "Weighted sum of each token's expert outputs, undoing dispatch";
  let description = [{
    rows [T*k, H] in dispatch order, weights [T, k], indices [T, k] -> [T, H].

    ```mlir
    %y = graph.combine %rows, %w, %i : (tensor<64x64xf32>, tensor<32x2xf32>, tensor<32x2xi32>) -> tensor<32x64xf32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$rows, Graph_Tensor:$weights,
                       Graph_IdTensor:$indices);
  let results = (outs Graph_Tensor:$result);
  let assemblyFormat = "$rows `,` $weights `,` $indices attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Graph_SharedExpertsOp : Graph_Op<"shared_experts", [Pure]> {
  let summary = "The always-active shared experts, as one SwiGLU FFN";
  let description = [{
    `num_shared` experts of FFN size F stored as one FFN of size num_shared * F,
    as in the checkpoint (mlp.shared_experts.*). They see every token, locally:
    expert placement never moves them.
    x [T, H], gate [I, H], up [I, H], down [H, I] -> [T, H].

    ```mlir
    %y = graph.shared_experts %x, %g, %u, %d {num_shared = 1 : i64}
        : (tensor<32x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x32xf32>) -> tensor<32x64xf32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$input, Graph_Tensor:$gate_weight,
                       Graph_Tensor:$up_weight, Graph_Tensor:$down_weight,
                       ConfinedAttr<I64Attr, [IntPositive]>:$num_shared);
  let results = (outs Graph_Tensor:$result);
  let assemblyFormat = [{
    $input `,` $gate_weight `,` $up_weight `,` $down_weight attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Multi-token prediction
//===----------------------------------------------------------------------===//

def Graph_MtpProjectOp : Graph_Op<"mtp_project", [Pure]> {
  let summary = "Merges an MTP module's two inputs: eh_proj([enorm(e); hnorm(h)])";
  let description = [{
    The entry of MTP depth `depth`: the normalized embedding of the tokens `depth`
    ahead and the normalized hidden state of the previous depth, concatenated on
    the hidden dimension and projected back by eh_proj [H, 2H].

    ```mlir
    %h1 = graph.mtp_project %e, %h, %eh {depth = 1 : i64}
        : (tensor<2x16x64xf32>, tensor<2x16x64xf32>, tensor<64x128xf32>) -> tensor<2x16x64xf32>
    ```
  }];
  let arguments = (ins Graph_Tensor:$embedded, Graph_Tensor:$hidden,
                       Graph_Tensor:$eh_proj,
                       ConfinedAttr<I64Attr, [IntPositive]>:$depth);
  let results = (outs Graph_Tensor:$result);
  let assemblyFormat = "$embedded `,` $hidden `,` $eh_proj attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

include "GraphGradOps.td"

#endif // DSFLOW_GRAPH_OPS
