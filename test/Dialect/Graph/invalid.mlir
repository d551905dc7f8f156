// Verifier errors, one case per invariant of docs/dialects/graph.md (G1..G17)
// and per ODS type constraint.
// RUN: dsflow-opt %s -split-input-file -verify-diagnostics

// G1: a parameter has a name.
func.func @g1_param_unnamed() {
  // expected-error @+1 {{parameter name must not be empty}}
  %w = graph.param "" : tensor<4xf32>
  return
}

// -----

// Types: parameters are float tensors.
func.func @param_integer() {
  // expected-error @+1 {{result #0 must be statically shaped float tensor}}
  %w = graph.param "w" : tensor<4xi32>
  return
}

// -----

// Types: shapes are static.
func.func @param_dynamic() {
  // expected-error @+1 {{result #0 must be statically shaped float tensor}}
  %w = graph.param "w" : tensor<?xf32>
  return
}

// -----

// G2: token input is [batch, tokens].
func.func @g2_input_rank() {
  // expected-error @+1 {{input [batch, tokens] must have rank 2, got [10]}}
  %t = graph.input "tokens" : tensor<10xi32>
  return
}

// -----

// G3: a token window lies inside the tokens.
func.func @g3_window_overflow(%t: tensor<2x10xi32>) {
  // expected-error @+1 {{window [3, 11) exceeds the 10 tokens}}
  %w = graph.token_window %t[3] : tensor<2x10xi32> -> tensor<2x8xi32>
  return
}

// -----

// G3: and keeps the batch.
func.func @g3_window_batch(%t: tensor<2x10xi32>) {
  // expected-error @+1 {{result batch 1 differs from tokens batch 2}}
  %w = graph.token_window %t[0] : tensor<2x10xi32> -> tensor<1x8xi32>
  return
}

// -----

// G4: embedding result is ids' shape plus the hidden size.
func.func @g4_embedding_shape(%table: tensor<256x64xf32>, %ids: tensor<2x8xi32>) {
  // expected-error @+1 {{result must have shape [2, 8, 64], got [2, 8, 32]}}
  %h = graph.embedding %table, %ids : (tensor<256x64xf32>, tensor<2x8xi32>) -> tensor<2x8x32xf32>
  return
}

// -----

// Types: ids are integers.
func.func @embedding_float_ids(%table: tensor<256x64xf32>, %ids: tensor<2x8xf32>) {
  // expected-error @+1 {{operand #1 must be statically shaped integer tensor}}
  %h = graph.embedding %table, %ids : (tensor<256x64xf32>, tensor<2x8xf32>) -> tensor<2x8x64xf32>
  return
}

// -----

// G5: the RMSNorm weight matches the normalized dimension.
func.func @g5_rms_norm_weight(%x: tensor<2x8x64xf32>, %w: tensor<32xf32>) {
  // expected-error @+1 {{weight [32] does not match the last dimension of input [2, 8, 64]}}
  %y = graph.rms_norm %x, %w {epsilon = 1.0e-06 : f64} : (tensor<2x8x64xf32>, tensor<32xf32>) -> tensor<2x8x64xf32>
  return
}

// -----

// G5: epsilon is positive.
func.func @g5_rms_norm_epsilon(%x: tensor<2x8x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{epsilon must be positive}}
  %y = graph.rms_norm %x, %w {epsilon = 0.0 : f64} : (tensor<2x8x64xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
  return
}

// -----

// G6: a linear weight [out, in] takes the input's features.
func.func @g6_linear_features(%x: tensor<2x8x64xf32>, %w: tensor<128x32xf32>) {
  // expected-error @+1 {{weight [128, 32] expects inputs of 32 features, got input [2, 8, 64]}}
  %y = graph.linear %x, %w : (tensor<2x8x64xf32>, tensor<128x32xf32>) -> tensor<2x8x128xf32>
  return
}

// -----

// G6: and produces [..., out].
func.func @g6_linear_result(%x: tensor<2x8x64xf32>, %w: tensor<128x64xf32>) {
  // expected-error @+1 {{result must have shape [2, 8, 128], got [2, 8, 64]}}
  %y = graph.linear %x, %w : (tensor<2x8x64xf32>, tensor<128x64xf32>) -> tensor<2x8x64xf32>
  return
}

// -----

// G6: in one element type.
func.func @g6_linear_types(%x: tensor<2x8x64xbf16>, %w: tensor<128x64xf32>) {
  // expected-error @+1 {{weight element type 'f32' differs from input element type 'bf16'}}
  %y = graph.linear %x, %w : (tensor<2x8x64xbf16>, tensor<128x64xf32>) -> tensor<2x8x128xbf16>
  return
}

// -----

// G7: reshape keeps the element count.
func.func @g7_reshape_count(%x: tensor<2x8x96xf32>) {
  // expected-error @+1 {{cannot reshape [2, 8, 96] (1536 elements) to [2, 8, 4, 16] (1024 elements)}}
  %y = graph.reshape %x : tensor<2x8x96xf32> -> tensor<2x8x4x16xf32>
  return
}

// -----

// G8: split pieces add up to the input's last dimension.
func.func @g8_split_sum(%x: tensor<2x8x40xf32>) {
  // expected-error @+1 {{pieces' last dimensions add up to 36, input has 40}}
  %a, %b = graph.split %x : tensor<2x8x40xf32> -> tensor<2x8x32xf32>, tensor<2x8x4xf32>
  return
}

// -----

// G8: and agree with it elsewhere.
func.func @g8_split_leading(%x: tensor<2x8x40xf32>) {
  // expected-error @+1 {{piece [2, 4, 32] differs from input [2, 8, 40] outside the last dimension}}
  %a, %b = graph.split %x : tensor<2x8x40xf32> -> tensor<2x4x32xf32>, tensor<2x8x8xf32>
  return
}

// -----

// G8: a split has at least two pieces.
func.func @g8_split_one(%x: tensor<2x8x40xf32>) {
  // expected-error @+1 {{needs at least two results}}
  %a = graph.split %x : tensor<2x8x40xf32> -> tensor<2x8x40xf32>
  return
}

// -----

// G9: RoPE rotates pairs.
func.func @g9_rope_odd(%x: tensor<2x8x4x7xf32>) {
  // expected-error @+1 {{rotary dimension must be even, got 7}}
  %y = graph.rope %x {theta = 1.0e+04 : f64} : tensor<2x8x4x7xf32>
  return
}

// -----

// G9: of [batch, seq, heads, dim] tensors.
func.func @g9_rope_rank(%x: tensor<2x8x8xf32>) {
  // expected-error @+1 {{input [batch, seq, heads, dim] must have rank 4, got [2, 8, 8]}}
  %y = graph.rope %x {theta = 1.0e+04 : f64} : tensor<2x8x8xf32>
  return
}

// -----

// G9: the YaRN attributes go together.
func.func @g9_rope_partial_yarn(%x: tensor<2x8x4x8xf32>) {
  // expected-error @+1 {{yarn_factor, yarn_original_max_position, yarn_beta_fast and yarn_beta_slow go together}}
  %y = graph.rope %x {theta = 1.0e+04 : f64, yarn_factor = 40.0 : f64} : tensor<2x8x4x8xf32>
  return
}

// -----

// G9: theta is positive.
func.func @g9_rope_theta(%x: tensor<2x8x4x8xf32>) {
  // expected-error @+1 {{theta must be positive}}
  %y = graph.rope %x {theta = 0.0 : f64} : tensor<2x8x4x8xf32>
  return
}

// -----

// G10: MLA's rotary key is one head shared by all.
func.func @g10_mla_shared_rope_key(%qn: tensor<2x8x4x16xf32>, %qp: tensor<2x8x4x8xf32>,
    %kn: tensor<2x8x4x16xf32>, %kp: tensor<2x8x4x8xf32>, %v: tensor<2x8x4x16xf32>) {
  // expected-error @+1 {{k_pe (one rotary key shared by all heads) must have shape [2, 8, 1, 8], got [2, 8, 4, 8]}}
  %o = graph.mla_attention %qn, %qp, %kn, %kp, %v {softmax_scale = 0.2 : f64} : (tensor<2x8x4x16xf32>, tensor<2x8x4x8xf32>, tensor<2x8x4x16xf32>, tensor<2x8x4x8xf32>, tensor<2x8x4x16xf32>) -> tensor<2x8x4x16xf32>
  return
}

// -----

// G10: queries and keys have the same no-RoPE width.
func.func @g10_mla_key_width(%qn: tensor<2x8x4x16xf32>, %qp: tensor<2x8x4x8xf32>,
    %kn: tensor<2x8x4x32xf32>, %kp: tensor<2x8x1x8xf32>, %v: tensor<2x8x4x16xf32>) {
  // expected-error @+1 {{k_nope must have shape [2, 8, 4, 16], got [2, 8, 4, 32]}}
  %o = graph.mla_attention %qn, %qp, %kn, %kp, %v {softmax_scale = 0.2 : f64} : (tensor<2x8x4x16xf32>, tensor<2x8x4x8xf32>, tensor<2x8x4x32xf32>, tensor<2x8x1x8xf32>, tensor<2x8x4x16xf32>) -> tensor<2x8x4x16xf32>
  return
}

// -----

// G10: the result has the value's shape.
func.func @g10_mla_result(%qn: tensor<2x8x4x16xf32>, %qp: tensor<2x8x4x8xf32>,
    %kn: tensor<2x8x4x16xf32>, %kp: tensor<2x8x1x8xf32>, %v: tensor<2x8x4x32xf32>) {
  // expected-error @+1 {{result must have shape [2, 8, 4, 32], got [2, 8, 4, 16]}}
  %o = graph.mla_attention %qn, %qp, %kn, %kp, %v {softmax_scale = 0.2 : f64} : (tensor<2x8x4x16xf32>, tensor<2x8x4x8xf32>, tensor<2x8x4x16xf32>, tensor<2x8x1x8xf32>, tensor<2x8x4x32xf32>) -> tensor<2x8x4x16xf32>
  return
}

// -----

// G10: the softmax scale is positive.
func.func @g10_mla_scale(%qn: tensor<2x8x4x16xf32>, %qp: tensor<2x8x4x8xf32>,
    %kn: tensor<2x8x4x16xf32>, %kp: tensor<2x8x1x8xf32>, %v: tensor<2x8x4x16xf32>) {
  // expected-error @+1 {{softmax_scale must be positive}}
  %o = graph.mla_attention %qn, %qp, %kn, %kp, %v {softmax_scale = -1.0 : f64} : (tensor<2x8x4x16xf32>, tensor<2x8x4x8xf32>, tensor<2x8x4x16xf32>, tensor<2x8x1x8xf32>, tensor<2x8x4x16xf32>) -> tensor<2x8x4x16xf32>
  return
}

// -----

// G11: labels cover the logits' tokens.
func.func @g11_cross_entropy_labels(%l: tensor<2x8x256xf32>, %y: tensor<2x7xi32>) {
  // expected-error @+1 {{labels must have shape [2, 8], got [2, 7]}}
  %loss = graph.cross_entropy %l, %y : (tensor<2x8x256xf32>, tensor<2x7xi32>) -> tensor<f32>
  return
}

// -----

// G12: experts divide into equal groups.
func.func @g12_gate_groups_divide(%x: tensor<16x64xf32>, %w: tensor<6x64xf32>, %b: tensor<6xf32>) {
  // expected-error @+1 {{6 experts do not divide into 4 groups}}
  %cw, %ci, %s = graph.moe_gate %x, %w, %b {expert_groups = 4 : i64, groups_per_token = 2 : i64, route_scale = 1.0 : f64, score_function = "softmax", normalize_topk = false} : (tensor<16x64xf32>, tensor<6x64xf32>, tensor<6xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x6xf32>)
  return
}

// -----

// G12: a token may not use more groups than exist.
func.func @g12_gate_too_many_groups(%x: tensor<16x64xf32>, %w: tensor<8x64xf32>, %b: tensor<8xf32>) {
  // expected-error @+1 {{groups_per_token 5 exceeds expert_groups 4}}
  %cw, %ci, %s = graph.moe_gate %x, %w, %b {expert_groups = 4 : i64, groups_per_token = 5 : i64, route_scale = 1.0 : f64, score_function = "sigmoid", normalize_topk = true} : (tensor<16x64xf32>, tensor<8x64xf32>, tensor<8xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x8xf32>)
  return
}

// -----

// G12: the allowed groups hold at least k experts.
func.func @g12_gate_k_unreachable(%x: tensor<16x64xf32>, %w: tensor<8x64xf32>, %b: tensor<8xf32>) {
  // expected-error @+1 {{3 experts per token exceed the 2 experts in 1 allowed groups}}
  %cw, %ci, %s = graph.moe_gate %x, %w, %b {expert_groups = 4 : i64, groups_per_token = 1 : i64, route_scale = 1.0 : f64, score_function = "sigmoid", normalize_topk = true} : (tensor<16x64xf32>, tensor<8x64xf32>, tensor<8xf32>) -> (tensor<16x3xf32>, tensor<16x3xi32>, tensor<16x8xf32>)
  return
}

// -----

// G12: the per-expert bias has one entry per expert.
func.func @g12_gate_bias(%x: tensor<16x64xf32>, %w: tensor<8x64xf32>, %b: tensor<4xf32>) {
  // expected-error @+1 {{bias must have shape [8], got [4]}}
  %cw, %ci, %s = graph.moe_gate %x, %w, %b {expert_groups = 1 : i64, groups_per_token = 1 : i64, route_scale = 1.0 : f64, score_function = "sigmoid", normalize_topk = true} : (tensor<16x64xf32>, tensor<8x64xf32>, tensor<4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x8xf32>)
  return
}

// -----

// G12: scores cover every expert.
func.func @g12_gate_scores(%x: tensor<16x64xf32>, %w: tensor<8x64xf32>, %b: tensor<8xf32>) {
  // expected-error @+1 {{scores must have shape [16, 8], got [16, 4]}}
  %cw, %ci, %s = graph.moe_gate %x, %w, %b {expert_groups = 1 : i64, groups_per_token = 1 : i64, route_scale = 1.0 : f64, score_function = "sigmoid", normalize_topk = true} : (tensor<16x64xf32>, tensor<8x64xf32>, tensor<8xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x4xf32>)
  return
}

// -----

// G12: the score function is sigmoid or softmax.
func.func @g12_gate_score_function(%x: tensor<16x64xf32>, %w: tensor<8x64xf32>, %b: tensor<8xf32>) {
  // expected-error @+1 {{score_function must be "sigmoid" or "softmax", got "relu"}}
  %cw, %ci, %s = graph.moe_gate %x, %w, %b {expert_groups = 1 : i64, groups_per_token = 1 : i64, route_scale = 1.0 : f64, score_function = "relu", normalize_topk = true} : (tensor<16x64xf32>, tensor<8x64xf32>, tensor<8xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x8xf32>)
  return
}

// -----

// G12: sigmoid group scores sum a group's top two experts.
func.func @g12_gate_sigmoid_group_size(%x: tensor<16x64xf32>, %w: tensor<4x64xf32>, %b: tensor<4xf32>) {
  // expected-error @+1 {{sigmoid group scores need at least 2 experts a group}}
  %cw, %ci, %s = graph.moe_gate %x, %w, %b {expert_groups = 4 : i64, groups_per_token = 2 : i64, route_scale = 1.0 : f64, score_function = "sigmoid", normalize_topk = true} : (tensor<16x64xf32>, tensor<4x64xf32>, tensor<4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x4xf32>)
  return
}

// -----

// G12: the route scale is positive.
func.func @g12_gate_route_scale(%x: tensor<16x64xf32>, %w: tensor<8x64xf32>, %b: tensor<8xf32>) {
  // expected-error @+1 {{route_scale must be positive}}
  %cw, %ci, %s = graph.moe_gate %x, %w, %b {expert_groups = 1 : i64, groups_per_token = 1 : i64, route_scale = 0.0 : f64, score_function = "sigmoid", normalize_topk = true} : (tensor<16x64xf32>, tensor<8x64xf32>, tensor<8xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x8xf32>)
  return
}

// -----

// G12 (ODS): groups are positive.
func.func @g12_gate_zero_groups(%x: tensor<16x64xf32>, %w: tensor<8x64xf32>, %b: tensor<8xf32>) {
  // expected-error @+1 {{attribute 'expert_groups' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  %cw, %ci, %s = graph.moe_gate %x, %w, %b {expert_groups = 0 : i64, groups_per_token = 1 : i64, route_scale = 1.0 : f64, score_function = "sigmoid", normalize_topk = true} : (tensor<16x64xf32>, tensor<8x64xf32>, tensor<8xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x8xf32>)
  return
}

// -----

// G13: dispatch makes one row per (token, chosen expert).
func.func @g13_dispatch_rows(%x: tensor<16x64xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{rows must have shape [32, 64], got [16, 64]}}
  %r, %c = graph.dispatch %x, %i : (tensor<16x64xf32>, tensor<16x2xi32>) -> (tensor<16x64xf32>, tensor<8xi32>)
  return
}

// -----

// G13: routing covers every token.
func.func @g13_dispatch_tokens(%x: tensor<16x64xf32>, %i: tensor<8x2xi32>) {
  // expected-error @+1 {{indices cover 8 tokens, input has 16}}
  %r, %c = graph.dispatch %x, %i : (tensor<16x64xf32>, tensor<8x2xi32>) -> (tensor<32x64xf32>, tensor<8xi32>)
  return
}

// -----

// G14: every expert has a gate, an up and a down weight.
func.func @g14_experts_missing_down(%r: tensor<32x64xf32>, %c: tensor<2xi32>,
    %g: tensor<32x64xf32>, %d: tensor<64x32xf32>) {
  // expected-error @+1 {{needs one gate, up and down weight per expert, got 2 gate, 2 up and 1 down}}
  %y = graph.expert_ffn %r, %c gate(%g, %g) up(%g, %g) down(%d) : (tensor<32x64xf32>, tensor<2xi32>) weights tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x32xf32> -> tensor<32x64xf32>
  return
}

// -----

// G14: counts has one entry per expert.
func.func @g14_experts_counts(%r: tensor<32x64xf32>, %c: tensor<4xi32>,
    %g: tensor<32x64xf32>, %d: tensor<64x32xf32>) {
  // expected-error @+1 {{counts must have shape [2], got [4]}}
  %y = graph.expert_ffn %r, %c gate(%g, %g) up(%g, %g) down(%d, %d) : (tensor<32x64xf32>, tensor<4xi32>) weights tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x32xf32> -> tensor<32x64xf32>
  return
}

// -----

// G14: the down projection maps the FFN size back to the hidden size.
func.func @g14_experts_down_shape(%r: tensor<32x64xf32>, %c: tensor<2xi32>,
    %g: tensor<32x64xf32>, %d: tensor<32x64xf32>) {
  // expected-error @+1 {{down weight of expert 0 must have shape [64, 32], got [32, 64]}}
  %y = graph.expert_ffn %r, %c gate(%g, %g) up(%g, %g) down(%d, %d) : (tensor<32x64xf32>, tensor<2xi32>) weights tensor<32x64xf32>, tensor<32x64xf32>, tensor<32x64xf32> -> tensor<32x64xf32>
  return
}

// -----

// G14: all experts have the same shapes (checked on the generic form, where
// each operand's type is spelled out).
func.func @g14_experts_uniform(%r: tensor<32x64xf32>, %c: tensor<2xi32>,
    %g: tensor<32x64xf32>, %g2: tensor<16x64xf32>, %d: tensor<64x32xf32>) {
  // expected-error @+1 {{gate weight of expert 1 must have shape [32, 64], got [16, 64]}}
  %y = "graph.expert_ffn"(%r, %c, %g, %g2, %g, %g, %d, %d) {operandSegmentSizes = array<i32: 1, 1, 2, 2, 2>} : (tensor<32x64xf32>, tensor<2xi32>, tensor<32x64xf32>, tensor<16x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x32xf32>, tensor<64x32xf32>) -> tensor<32x64xf32>
  return
}

// -----

// G15: combine takes tokens * k rows.
func.func @g15_combine_rows(%r: tensor<30x64xf32>, %w: tensor<16x2xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{rows [30, 64] must hold tokens * k = 32 rows}}
  %y = graph.combine %r, %w, %i : (tensor<30x64xf32>, tensor<16x2xf32>, tensor<16x2xi32>) -> tensor<16x64xf32>
  return
}

// -----

// G15: and weights and indices agree.
func.func @g15_combine_indices(%r: tensor<32x64xf32>, %w: tensor<16x2xf32>, %i: tensor<16x4xi32>) {
  // expected-error @+1 {{indices must have shape [16, 2], got [16, 4]}}
  %y = graph.combine %r, %w, %i : (tensor<32x64xf32>, tensor<16x2xf32>, tensor<16x4xi32>) -> tensor<16x64xf32>
  return
}

// -----

// G16: the shared experts' FFN is num_shared equal experts.
func.func @g16_shared_divisible(%x: tensor<16x64xf32>, %g: tensor<30x64xf32>, %d: tensor<64x30xf32>) {
  // expected-error @+1 {{FFN size 30 is not a multiple of 4 shared experts}}
  %y = graph.shared_experts %x, %g, %g, %d {num_shared = 4 : i64} : (tensor<16x64xf32>, tensor<30x64xf32>, tensor<30x64xf32>, tensor<64x30xf32>) -> tensor<16x64xf32>
  return
}

// -----

// G16: with matching projections.
func.func @g16_shared_up(%x: tensor<16x64xf32>, %g: tensor<32x64xf32>, %u: tensor<16x64xf32>, %d: tensor<64x32xf32>) {
  // expected-error @+1 {{up weight must have shape [32, 64], got [16, 64]}}
  %y = graph.shared_experts %x, %g, %u, %d {num_shared = 1 : i64} : (tensor<16x64xf32>, tensor<32x64xf32>, tensor<16x64xf32>, tensor<64x32xf32>) -> tensor<16x64xf32>
  return
}

// -----

// G17: eh_proj maps the concatenation [e; h] back to the hidden size.
func.func @g17_mtp_eh_proj(%e: tensor<2x8x64xf32>, %h: tensor<2x8x64xf32>, %eh: tensor<64x64xf32>) {
  // expected-error @+1 {{eh_proj must have shape [64, 128], got [64, 64]}}
  %m = graph.mtp_project %e, %h, %eh {depth = 1 : i64} : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<64x64xf32>) -> tensor<2x8x64xf32>
  return
}

// -----

// G17: both inputs have one type.
func.func @g17_mtp_inputs(%e: tensor<2x8x64xf32>, %h: tensor<2x8x64xbf16>, %eh: tensor<64x128xf32>) {
  // expected-error @+1 {{embedded and hidden must have the same type}}
  %m = graph.mtp_project %e, %h, %eh {depth = 1 : i64} : (tensor<2x8x64xf32>, tensor<2x8x64xbf16>, tensor<64x128xf32>) -> tensor<2x8x64xf32>
  return
}

// -----

// Types: elementwise ops keep one type.
func.func @swiglu_types(%g: tensor<4x8xf32>, %u: tensor<4x4xf32>) {
  // expected-error @+1 {{requires the same type for all operands and results}}
  %y = "graph.swiglu"(%g, %u) : (tensor<4x8xf32>, tensor<4x4xf32>) -> tensor<4x8xf32>
  return
}

// -----

// Types: add keeps one type.
func.func @add_types(%a: tensor<4x8xf32>, %b: tensor<4x8xbf16>) {
  // expected-error @+1 {{requires the same type for all operands and results}}
  %y = "graph.add"(%a, %b) : (tensor<4x8xf32>, tensor<4x8xbf16>) -> tensor<4x8xf32>
  return
}

// -----

// Types: scale keeps its operand's type.
func.func @scale_types(%a: tensor<f32>) {
  // expected-error @+1 {{requires the same type for all operands and results}}
  %y = "graph.scale"(%a) {factor = 2.0 : f64} : (tensor<f32>) -> tensor<f64>
  return
}

// -----

// Types: losses are scalars.
func.func @cross_entropy_result(%l: tensor<2x8x256xf32>, %y: tensor<2x8xi32>) {
  // expected-error @+1 {{result #0 must be 0D tensor of 32-bit float or 64-bit float values}}
  %loss = "graph.cross_entropy"(%l, %y) : (tensor<2x8x256xf32>, tensor<2x8xi32>) -> tensor<2xf32>
  return
}

// -----

// G11: logits are [batch, seq, vocab].
func.func @g11_cross_entropy_rank(%l: tensor<16x256xf32>, %y: tensor<16xi32>) {
  // expected-error @+1 {{logits [batch, seq, vocab] must have rank 3, got [16, 256]}}
  %loss = graph.cross_entropy %l, %y : (tensor<16x256xf32>, tensor<16xi32>) -> tensor<f32>
  return
}

// -----

// G18: the balance loss splits the tokens into whole sequences.
func.func @g18_balance_sequences(%s: tensor<16x8xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{16 tokens do not split into 3 sequences}}
  %l = graph.balance_loss %s, %i {alpha = 1.0e-04 : f64, sequences = 3 : i64} : (tensor<16x8xf32>, tensor<16x2xi32>) -> tensor<f32>
  return
}

// -----

// G18: indices and scores cover the same tokens; alpha is positive.
func.func @g18_balance_tokens(%s: tensor<16x8xf32>, %i: tensor<8x2xi32>) {
  // expected-error @+1 {{indices cover 8 tokens, scores 16}}
  %l = graph.balance_loss %s, %i {alpha = 1.0e-04 : f64, sequences = 2 : i64} : (tensor<16x8xf32>, tensor<8x2xi32>) -> tensor<f32>
  return
}

// -----

func.func @g18_balance_alpha(%s: tensor<16x8xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{alpha must be positive}}
  %l = graph.balance_loss %s, %i {alpha = 0.0 : f64, sequences = 2 : i64} : (tensor<16x8xf32>, tensor<16x2xi32>) -> tensor<f32>
  return
}
