// Verifier errors of the gradient ops: a gradient has the type of what it is
// the gradient of.
// RUN: dsflow-opt %s -split-input-file -verify-diagnostics

func.func @accumulate_not_param(%w: tensor<4xf32>, %g: tensor<4xf32>) {
  // expected-error @+1 {{first operand must be a graph.param}}
  graph.accumulate_grad %w, %g : tensor<4xf32>
  return
}

// -----

func.func @accumulate_type() {
  %w = graph.param "w" : tensor<4xf32>
  %g = graph.fill 0.0 : tensor<8xf32>
  // expected-error @+1 {{failed to verify that all of {param, grad} have same type}}
  "graph.accumulate_grad"(%w, %g) : (tensor<4xf32>, tensor<8xf32>) -> ()
  return
}

// -----

func.func @concat_sum(%a: tensor<2x8xf32>, %b: tensor<2x4xf32>) {
  // expected-error @+1 {{pieces' last dimensions add up to 12, result has 16}}
  %c = graph.concat %a, %b : tensor<2x8xf32>, tensor<2x4xf32> -> tensor<2x16xf32>
  return
}

// -----

func.func @embedding_wgrad_shape(%dy: tensor<2x8x32xf32>, %ids: tensor<2x8xi32>) {
  // expected-error @+1 {{output gradient must have shape [2, 8, 64], got [2, 8, 32]}}
  %dt = graph.embedding_wgrad %dy, %ids : (tensor<2x8x32xf32>, tensor<2x8xi32>) -> tensor<256x64xf32>
  return
}

// -----

func.func @rms_norm_grad_type(%dy: tensor<2x8x64xbf16>, %x: tensor<2x8x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{output gradient type 'tensor<2x8x64xbf16>' must equal input type 'tensor<2x8x64xf32>'}}
  %dx = graph.rms_norm_grad %dy, %x, %w {epsilon = 1.0e-06 : f64} : (tensor<2x8x64xbf16>, tensor<2x8x64xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
  return
}

// -----

func.func @rms_norm_wgrad_shape(%dy: tensor<2x8x64xf32>, %x: tensor<2x8x64xf32>) {
  // expected-error @+1 {{weight gradient must have shape [64], got [32]}}
  %dw = graph.rms_norm_wgrad %dy, %x {epsilon = 1.0e-06 : f64} : (tensor<2x8x64xf32>, tensor<2x8x64xf32>) -> tensor<32xf32>
  return
}

// -----

func.func @linear_grad_shape(%dy: tensor<2x8x16xf32>, %w: tensor<16x64xf32>) {
  // expected-error @+1 {{input gradient must have shape [2, 8, 64], got [2, 8, 16]}}
  %dx = graph.linear_grad %dy, %w : (tensor<2x8x16xf32>, tensor<16x64xf32>) -> tensor<2x8x16xf32>
  return
}

// -----

func.func @linear_grad_weight(%dy: tensor<2x8x32xf32>, %w: tensor<16x64xf32>) {
  // expected-error @+1 {{output gradient [2, 8, 32] does not match weight [16, 64]}}
  %dx = graph.linear_grad %dy, %w : (tensor<2x8x32xf32>, tensor<16x64xf32>) -> tensor<2x8x64xf32>
  return
}

// -----

func.func @linear_wgrad_tokens(%dy: tensor<2x8x16xf32>, %x: tensor<2x4x64xf32>) {
  // expected-error @+1 {{output gradient [2, 8, 16] and input [2, 4, 64] must agree outside the last dimension}}
  %dw = graph.linear_wgrad %dy, %x : (tensor<2x8x16xf32>, tensor<2x4x64xf32>) -> tensor<16x64xf32>
  return
}

// -----

func.func @rope_grad_type(%dy: tensor<2x8x4x8xf32>) {
  // expected-error @+1 {{requires the same type for all operands and results}}
  %dx = "graph.rope_grad"(%dy) {theta = 1.0e+04 : f64} : (tensor<2x8x4x8xf32>) -> tensor<2x8x4x8xbf16>
  return
}

// -----

func.func @mla_grad_k_pe(%do: tensor<2x8x4x16xf32>, %qn: tensor<2x8x4x16xf32>,
    %qp: tensor<2x8x4x8xf32>, %kp: tensor<2x8x1x8xf32>) {
  // expected-error @+1 {{gradient of k_pe type 'tensor<2x8x4x8xf32>' must equal k_pe type 'tensor<2x8x1x8xf32>'}}
  %a:5 = graph.mla_attention_grad %do, %qn, %qp, %qn, %kp, %qn {softmax_scale = 0.2 : f64} : (tensor<2x8x4x16xf32>, tensor<2x8x4x16xf32>, tensor<2x8x4x8xf32>, tensor<2x8x4x16xf32>, tensor<2x8x1x8xf32>, tensor<2x8x4x16xf32>) -> (tensor<2x8x4x16xf32>, tensor<2x8x4x8xf32>, tensor<2x8x4x16xf32>, tensor<2x8x4x8xf32>, tensor<2x8x4x16xf32>)
  return
}

// -----

func.func @swiglu_grad_types(%dy: tensor<4x8xf32>, %g: tensor<4x4xf32>) {
  // expected-error @+1 {{failed to verify that all of {grad_output, gate, up, grad_gate, grad_up} have same type}}
  %a, %b = "graph.swiglu_grad"(%dy, %g, %dy) : (tensor<4x8xf32>, tensor<4x4xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>)
  return
}

// -----

func.func @cross_entropy_grad_type(%dl: tensor<f32>, %logits: tensor<2x8x256xf32>, %labels: tensor<2x8xi32>) {
  // expected-error @+1 {{logits gradient type 'tensor<2x8x128xf32>' must equal logits type 'tensor<2x8x256xf32>'}}
  %d = graph.cross_entropy_grad %dl, %logits, %labels : (tensor<f32>, tensor<2x8x256xf32>, tensor<2x8xi32>) -> tensor<2x8x128xf32>
  return
}

// -----

func.func @moe_gate_grad_shape(%dw: tensor<16x2xf32>, %s: tensor<16x4xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{logits gradient must have shape [16, 4], got [16, 2]}}
  %d = graph.moe_gate_grad %dw, %s, %i {route_scale = 1.0 : f64, score_function = "sigmoid", normalize_topk = true} : (tensor<16x2xf32>, tensor<16x4xf32>, tensor<16x2xi32>) -> tensor<16x2xf32>
  return
}

// -----

func.func @moe_gate_grad_function(%dw: tensor<16x2xf32>, %s: tensor<16x4xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{score_function must be "sigmoid" or "softmax"}}
  %d = graph.moe_gate_grad %dw, %s, %i {route_scale = 1.0 : f64, score_function = "tanh", normalize_topk = true} : (tensor<16x2xf32>, tensor<16x4xf32>, tensor<16x2xi32>) -> tensor<16x4xf32>
  return
}

// -----

func.func @dispatch_grad_rows(%dr: tensor<30x64xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{rows gradient must have shape [32, 64], got [30, 64]}}
  %dx = graph.dispatch_grad %dr, %i : (tensor<30x64xf32>, tensor<16x2xi32>) -> tensor<16x64xf32>
  return
}

// -----

func.func @expert_ffn_grad_rows(%dy: tensor<32x32xf32>, %rows: tensor<32x64xf32>, %c: tensor<1xi32>,
    %g: tensor<32x64xf32>, %d: tensor<64x32xf32>) {
  // expected-error @+1 {{output gradient type 'tensor<32x32xf32>' must equal rows type 'tensor<32x64xf32>'}}
  %dr, %dots = graph.expert_ffn_grad %dy, %rows, %c gate(%g) up(%g) down(%d) : (tensor<32x32xf32>, tensor<32x64xf32>, tensor<1xi32>) weights tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x32xf32> -> tensor<32x64xf32>, tensor<32xf32>
  return
}

// -----

func.func @expert_ffn_grad_dots(%dy: tensor<32x64xf32>, %rows: tensor<32x64xf32>, %c: tensor<1xi32>,
    %g: tensor<32x64xf32>, %d: tensor<64x32xf32>) {
  // expected-error @+1 {{row dots must have shape [32], got [16]}}
  %dr, %dots = graph.expert_ffn_grad %dy, %rows, %c gate(%g) up(%g) down(%d) : (tensor<32x64xf32>, tensor<32x64xf32>, tensor<1xi32>) weights tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x32xf32> -> tensor<32x64xf32>, tensor<16xf32>
  return
}

// -----

func.func @expert_ffn_wgrad_results(%dy: tensor<32x64xf32>, %rows: tensor<32x64xf32>, %c: tensor<1xi32>,
    %g: tensor<32x64xf32>, %d: tensor<64x32xf32>) {
  // expected-error @+1 {{down gradient type 'tensor<32x64xf32>' must equal down weight type 'tensor<64x32xf32>'}}
  %a, %b, %e = "graph.expert_ffn_wgrad"(%dy, %rows, %c, %g, %g, %d) {operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1>, resultSegmentSizes = array<i32: 1, 1, 1>} : (tensor<32x64xf32>, tensor<32x64xf32>, tensor<1xi32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x32xf32>) -> (tensor<32x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>)
  return
}

// -----

func.func @combine_grad_rows(%dy: tensor<16x64xf32>, %w: tensor<16x2xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{rows gradient must have shape [32, 64], got [16, 64]}}
  %dr = graph.combine_grad %dy, %w, %i : (tensor<16x64xf32>, tensor<16x2xf32>, tensor<16x2xi32>) -> tensor<16x64xf32>
  return
}

// -----

func.func @combine_grad_tokens(%dy: tensor<8x64xf32>, %w: tensor<16x2xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{output gradient must have shape [16, 64], got [8, 64]}}
  %dr = graph.combine_grad %dy, %w, %i : (tensor<8x64xf32>, tensor<16x2xf32>, tensor<16x2xi32>) -> tensor<32x64xf32>
  return
}

// -----

func.func @combine_weights_grad_dots(%dots: tensor<16xf32>, %w: tensor<16x2xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{row dots must have shape [32], got [16]}}
  %dw = graph.combine_weights_grad %dots, %w, %i : (tensor<16xf32>, tensor<16x2xf32>, tensor<16x2xi32>) -> tensor<16x2xf32>
  return
}

// -----

func.func @combine_weights_grad_result(%dots: tensor<32xf32>, %w: tensor<16x2xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{weights gradient type 'tensor<16x4xf32>' must equal weights type 'tensor<16x2xf32>'}}
  %dw = graph.combine_weights_grad %dots, %w, %i : (tensor<32xf32>, tensor<16x2xf32>, tensor<16x2xi32>) -> tensor<16x4xf32>
  return
}

// -----

func.func @combine_weights_grad_indices(%dots: tensor<32xf32>, %w: tensor<16x2xf32>, %i: tensor<16x3xi32>) {
  // expected-error @+1 {{indices must have shape [16, 2], got [16, 3]}}
  %dw = graph.combine_weights_grad %dots, %w, %i : (tensor<32xf32>, tensor<16x2xf32>, tensor<16x3xi32>) -> tensor<16x2xf32>
  return
}

// -----

func.func @shared_grad_down(%dy: tensor<16x64xf32>, %x: tensor<16x64xf32>, %g: tensor<32x64xf32>) {
  // expected-error @+1 {{down weight must have shape [64, 32], got [32, 64]}}
  %dx = graph.shared_experts_grad %dy, %x, %g, %g, %g : (tensor<16x64xf32>, tensor<16x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>) -> tensor<16x64xf32>
  return
}

// -----

func.func @shared_wgrad_type(%dy: tensor<16x64xf32>, %x: tensor<16x64xf32>, %g: tensor<32x64xf32>, %d: tensor<64x32xf32>) {
  // expected-error @+1 {{down gradient type 'tensor<32x64xf32>' must equal down weight type 'tensor<64x32xf32>'}}
  %a:3 = graph.shared_experts_wgrad %dy, %x, %g, %g, %d : (tensor<16x64xf32>, tensor<16x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x32xf32>) -> (tensor<32x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>)
  return
}

// -----

func.func @mtp_grad_eh(%dy: tensor<2x8x64xf32>, %eh: tensor<64x64xf32>) {
  // expected-error @+1 {{eh_proj must have shape [64, 128], got [64, 64]}}
  %de, %dh = graph.mtp_project_grad %dy, %eh : (tensor<2x8x64xf32>, tensor<64x64xf32>) -> (tensor<2x8x64xf32>, tensor<2x8x64xf32>)
  return
}

// -----

func.func @mtp_wgrad_shape(%dy: tensor<2x8x64xf32>, %e: tensor<2x8x64xf32>) {
  // expected-error @+1 {{eh_proj gradient must have shape [64, 128], got [64, 64]}}
  %d = graph.mtp_project_wgrad %dy, %e, %e : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>) -> tensor<64x64xf32>
  return
}

// -----

func.func @moe_gate_grad_scores(%dw: tensor<16x2xf32>, %s: tensor<16x4xf32>, %i: tensor<16x2xi32>, %ds: tensor<16x2xf32>) {
  // expected-error @+1 {{scores gradient type 'tensor<16x2xf32>' must equal scores type 'tensor<16x4xf32>'}}
  %d = graph.moe_gate_grad %dw, %s, %i scores_grad %ds {route_scale = 1.0 : f64, score_function = "sigmoid", normalize_topk = true} : (tensor<16x2xf32>, tensor<16x4xf32>, tensor<16x2xi32>, tensor<16x2xf32>) -> tensor<16x4xf32>
  return
}

// -----

func.func @balance_grad_type(%dl: tensor<f32>, %s: tensor<16x4xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{scores gradient type 'tensor<16x8xf32>' must equal scores type 'tensor<16x4xf32>'}}
  %d = graph.balance_loss_grad %dl, %s, %i {alpha = 1.0e-04 : f64, sequences = 2 : i64} : (tensor<f32>, tensor<16x4xf32>, tensor<16x2xi32>) -> tensor<16x8xf32>
  return
}
