// RUN: dsflow-opt %s -dsflow-autodiff -split-input-file -verify-diagnostics | FileCheck %s --enable-var-scope

// A linear layer and the loss: B and W gradients are separate ops, the weight's
// gradient is accumulated, the function becomes @train_step.
// CHECK-LABEL: func.func @train_step
func.func @forward() -> tensor<f32> {
  // Forward ops are numbered (graph.fwd_id); backward ops say what they are
  // the gradient of (graph.grad_of).
  // CHECK: %[[TOK:.+]] = graph.input "tokens" {graph.fwd_id = 0 : i64}
  // CHECK: %[[EMB:.+]] = graph.param "embed"
  // CHECK: %[[W:.+]] = graph.param "w"
  // CHECK: %[[IDS:.+]] = graph.token_window %[[TOK]][0]
  // CHECK: %[[X:.+]] = graph.embedding %[[EMB]], %[[IDS]]
  // CHECK: %[[LOGITS:.+]] = graph.linear %[[X]], %[[W]]
  // CHECK: %[[LOSS:.+]] = graph.cross_entropy %[[LOGITS]], %[[LABELS:[^ ]+]] {graph.fwd_id = 7 : i64} :
  %tokens = graph.input "tokens" : tensor<1x5xi32>
  %embed = graph.param "embed" : tensor<16x8xf32>
  %w = graph.param "w" : tensor<16x8xf32>
  %ids = graph.token_window %tokens[0] : tensor<1x5xi32> -> tensor<1x4xi32>
  %labels = graph.token_window %tokens[1] : tensor<1x5xi32> -> tensor<1x4xi32>
  %x = graph.embedding %embed, %ids : (tensor<16x8xf32>, tensor<1x4xi32>) -> tensor<1x4x8xf32>
  %logits = graph.linear %x, %w : (tensor<1x4x8xf32>, tensor<16x8xf32>) -> tensor<1x4x16xf32>
  %loss = graph.cross_entropy %logits, %labels : (tensor<1x4x16xf32>, tensor<1x4xi32>) -> tensor<f32>
  // CHECK: %[[ONE:.+]] = graph.fill 1.000000e+00 {graph.backward} : tensor<f32>
  // CHECK: %[[DLOGITS:.+]] = graph.cross_entropy_grad %[[ONE]], %[[LOGITS]], %[[LABELS]] {graph.backward, graph.grad_of = 7 : i64}
  // CHECK: %[[DX:.+]] = graph.linear_grad %[[DLOGITS]], %[[W]]
  // CHECK: %[[DW:.+]] = graph.linear_wgrad %[[DLOGITS]], %[[X]]
  // A parameter's gradient is accumulated as soon as it is complete.
  // CHECK-NEXT: graph.accumulate_grad %[[W]], %[[DW]] {graph.backward, graph.grad_of = {{[0-9]+}} : i64} : tensor<16x8xf32>
  // CHECK: %[[DEMB:.+]] = graph.embedding_wgrad %[[DX]], %[[IDS]]
  // CHECK-NEXT: graph.accumulate_grad %[[EMB]], %[[DEMB]] {graph.backward, graph.grad_of = {{[0-9]+}} : i64} : tensor<16x8xf32>
  // CHECK: return %[[LOSS]]
  return %loss : tensor<f32>
}

// -----

// A value used twice (a residual) gets the sum of both gradients; a scaled loss
// scales its seed.
// CHECK-LABEL: func.func @train_step
func.func @forward(%x: tensor<2x8xf32>) -> tensor<f32> {
  %w = graph.param "w" : tensor<8x8xf32>
  %n = graph.param "norm" : tensor<8xf32>
  // CHECK: %[[H:.+]] = graph.rms_norm
  %h = graph.rms_norm %x, %n {epsilon = 1.0e-06 : f64} : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<2x8xf32>
  // CHECK: %[[Y:.+]] = graph.linear %[[H]]
  %y = graph.linear %h, %w : (tensor<2x8xf32>, tensor<8x8xf32>) -> tensor<2x8xf32>
  // CHECK: %[[R:.+]] = graph.add %[[H]], %[[Y]]
  %r = graph.add %h, %y : tensor<2x8xf32>
  %r3 = graph.reshape %r : tensor<2x8xf32> -> tensor<1x2x8xf32>
  %labels = graph.input "labels" : tensor<1x2xi32>
  %loss = graph.cross_entropy %r3, %labels : (tensor<1x2x8xf32>, tensor<1x2xi32>) -> tensor<f32>
  %half = graph.scale %loss {factor = 5.0e-01 : f64} : tensor<f32>
  // CHECK: %[[ONE:.+]] = graph.fill 1.0
  // CHECK: %[[DLOSS:.+]] = graph.scale %[[ONE]] {factor = 5.000000e-01 : f64, graph.backward, graph.grad_of = {{[0-9]+}} : i64}
  // CHECK: graph.cross_entropy_grad %[[DLOSS]]
  // CHECK: %[[DR:.+]] = graph.reshape %{{.+}} : tensor<1x2x8xf32> -> tensor<2x8xf32>
  // CHECK: %[[DH1:.+]] = graph.linear_grad %[[DR]], %{{.+}}
  // CHECK: %[[DH:.+]] = graph.add %[[DR]], %[[DH1]]
  // CHECK: graph.rms_norm_grad %[[DH]], %{{.+}}, %{{.+}} {epsilon = 9.9999999999999995E-7 : f64, graph.backward, graph.grad_of = {{[0-9]+}} : i64}
  // CHECK: graph.rms_norm_wgrad %[[DH]]
  return %half : tensor<f32>
}

// -----

// no_grad parameters get no gradient; an unused split piece contributes zeros.
// CHECK-LABEL: func.func @train_step
func.func @forward(%labels: tensor<1x2xi32>) -> tensor<f32> {
  // CHECK: %[[B:.+]] = graph.param "bias" no_grad
  %b = graph.param "bias" no_grad : tensor<1x2x8xf32>
  %w = graph.param "w" : tensor<1x2x12xf32>
  %p:2 = graph.split %w : tensor<1x2x12xf32> -> tensor<1x2x8xf32>, tensor<1x2x4xf32>
  %s = graph.add %p#0, %b : tensor<1x2x8xf32>
  %loss = graph.cross_entropy %s, %labels : (tensor<1x2x8xf32>, tensor<1x2xi32>) -> tensor<f32>
  // CHECK: %[[D:.+]] = graph.cross_entropy_grad
  // CHECK: %[[Z:.+]] = graph.fill 0.000000e+00 {graph.backward, graph.grad_of = {{[0-9]+}} : i64} : tensor<1x2x4xf32>
  // CHECK: %[[DW:.+]] = graph.concat %[[D]], %[[Z]]
  // CHECK: graph.accumulate_grad %{{.+}}, %[[DW]]
  // CHECK-NOT: graph.accumulate_grad %[[B]]
  return %loss : tensor<f32>
}

// -----

// The MoE layer: combine -> expert FFN (B and W) -> dispatch, and the router's
// weights back through the gate as a linear layer. The bias gets no gradient.
// CHECK-LABEL: func.func @train_step
func.func @forward(%x: tensor<4x8xf32>, %labels: tensor<1x4xi32>) -> tensor<f32> {
  // CHECK: %[[GW:.+]] = graph.param "gate"
  %gw = graph.param "gate" : tensor<4x8xf32>
  %bias = graph.param "bias" no_grad : tensor<4xf32>
  %g = graph.param "g" : tensor<6x8xf32>
  %d = graph.param "d" : tensor<8x6xf32>
  // CHECK: %[[WTS:.+]], %[[IDX:.+]], %[[SC:.+]] = graph.moe_gate
  %w, %i, %s = graph.moe_gate %x, %gw, %bias {expert_groups = 2 : i64, groups_per_token = 1 : i64, route_scale = 2.5 : f64, score_function = "sigmoid", normalize_topk = true} : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4xf32>) -> (tensor<4x2xf32>, tensor<4x2xi32>, tensor<4x4xf32>)
  // CHECK: %[[ROWS:.+]], %[[CNT:.+]] = graph.dispatch
  %rows, %counts = graph.dispatch %x, %i : (tensor<4x8xf32>, tensor<4x2xi32>) -> (tensor<8x8xf32>, tensor<4xi32>)
  // CHECK: %[[E:.+]] = graph.expert_ffn
  %e = graph.expert_ffn %rows, %counts gate(%g, %g, %g, %g) up(%g, %g, %g, %g) down(%d, %d, %d, %d) : (tensor<8x8xf32>, tensor<4xi32>) weights tensor<6x8xf32>, tensor<6x8xf32>, tensor<8x6xf32> -> tensor<8x8xf32>
  %y = graph.combine %e, %w, %i : (tensor<8x8xf32>, tensor<4x2xf32>, tensor<4x2xi32>) -> tensor<4x8xf32>
  %y3 = graph.reshape %y : tensor<4x8xf32> -> tensor<1x4x8xf32>
  %ce = graph.cross_entropy %y3, %labels : (tensor<1x4x8xf32>, tensor<1x4xi32>) -> tensor<f32>
  %bal = graph.balance_loss %s, %i {alpha = 1.0e-04 : f64, sequences = 1 : i64} : (tensor<4x4xf32>, tensor<4x2xi32>) -> tensor<f32>
  %loss = graph.add %ce, %bal : tensor<f32>
  // The balance loss's gradient reaches the router through the scores.
  // CHECK: %[[DSC:.+]] = graph.balance_loss_grad %{{.+}}, %[[SC]], %[[IDX]] {alpha = 1.000000e-04 : f64, graph.backward, graph.grad_of = {{[0-9]+}} : i64, sequences = 1 : i64}
  // The expert outputs are not read again: the combine weights' gradient
  // comes from the experts' row dots.
  // CHECK: %[[DROWS:.+]] = graph.combine_grad %{{.+}}, %[[WTS]], %[[IDX]]
  // CHECK: %[[DEROWS:.+]], %[[DOTS:.+]] = graph.expert_ffn_grad %[[DROWS]], %[[ROWS]], %[[CNT]] gate(
  // CHECK: %[[DWTS:.+]] = graph.combine_weights_grad %[[DOTS]], %[[WTS]], %[[IDX]]
  // CHECK: %{{.+}}:4, %{{.+}}:4, %{{.+}}:4 = graph.expert_ffn_wgrad %[[DROWS]], %[[ROWS]], %[[CNT]] gate(
  // CHECK: %[[DX1:.+]] = graph.dispatch_grad %[[DEROWS]], %[[IDX]]
  // CHECK: %[[DLOG:.+]] = graph.moe_gate_grad %[[DWTS]], %[[SC]], %[[IDX]] scores_grad %[[DSC]] {graph.backward, graph.grad_of = {{[0-9]+}} : i64, normalize_topk = true, route_scale = 2.500000e+00 : f64, score_function = "sigmoid"}
  // CHECK: graph.linear_grad %[[DLOG]], %[[GW]]
  // CHECK: %[[DGW:.+]] = graph.linear_wgrad %[[DLOG]], %{{.+}}
  // CHECK: graph.accumulate_grad %[[GW]], %[[DGW]]
  // CHECK-NOT: graph.accumulate_grad {{.*}}: tensor<4xf32>
  return %loss : tensor<f32>
}

// -----

// A parameter used twice gets two accumulate_grads, one per use, not a sum:
// each weight-gradient kernel then adds into the gradient buffer in place.
// CHECK-LABEL: func.func @train_step
func.func @forward(%x: tensor<1x4x8xf32>, %labels: tensor<1x4xi32>) -> tensor<f32> {
  // CHECK: %[[W:.+]] = graph.param "w"
  %w = graph.param "w" : tensor<8x8xf32>
  %h = graph.linear %x, %w : (tensor<1x4x8xf32>, tensor<8x8xf32>) -> tensor<1x4x8xf32>
  %y = graph.linear %h, %w : (tensor<1x4x8xf32>, tensor<8x8xf32>) -> tensor<1x4x8xf32>
  %loss = graph.cross_entropy %y, %labels : (tensor<1x4x8xf32>, tensor<1x4xi32>) -> tensor<f32>
  // CHECK: %[[DW2:.+]] = graph.linear_wgrad
  // CHECK-NEXT: graph.accumulate_grad %[[W]], %[[DW2]]
  // CHECK-NOT: graph.add
  // CHECK: %[[DW1:.+]] = graph.linear_wgrad
  // CHECK-NEXT: graph.accumulate_grad %[[W]], %[[DW1]]
  return %loss : tensor<f32>
}

// -----

// Ops without a gradient rule are reported.
func.func @forward(%dy: tensor<2x8xf32>, %w: tensor<8x4xf32>, %labels: tensor<1x2xi32>) -> tensor<f32> {
  // expected-error @+1 {{'graph.linear_grad' op dsflow-autodiff: no gradient rule}}
  %x = graph.linear_grad %dy, %w : (tensor<2x8xf32>, tensor<8x4xf32>) -> tensor<2x4xf32>
  %x3 = graph.reshape %x : tensor<2x4xf32> -> tensor<1x2x4xf32>
  %loss = graph.cross_entropy %x3, %labels : (tensor<1x2x4xf32>, tensor<1x2xi32>) -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// The combine weights' gradient comes from the expert FFN's backward: other
// rows are reported.
func.func @forward(%x: tensor<4x8xf32>, %rows: tensor<8x8xf32>, %w: tensor<4x2xf32>, %i: tensor<4x2xi32>, %labels: tensor<1x4xi32>) -> tensor<f32> {
  // expected-error @+1 {{'graph.combine' op dsflow-autodiff: rows must come from graph.expert_ffn}}
  %y = graph.combine %rows, %w, %i : (tensor<8x8xf32>, tensor<4x2xf32>, tensor<4x2xi32>) -> tensor<4x8xf32>
  %y3 = graph.reshape %y : tensor<4x8xf32> -> tensor<1x4x8xf32>
  %loss = graph.cross_entropy %y3, %labels : (tensor<1x4x8xf32>, tensor<1x4xi32>) -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// ... and so is an expert FFN whose result is not (only) combined.
func.func @forward(%rows: tensor<8x8xf32>, %counts: tensor<4xi32>, %labels: tensor<1x8xi32>) -> tensor<f32> {
  %g = graph.param "g" : tensor<6x8xf32>
  %d = graph.param "d" : tensor<8x6xf32>
  // expected-error @+1 {{'graph.expert_ffn' op dsflow-autodiff: needs one graph.combine reading its result}}
  %e = graph.expert_ffn %rows, %counts gate(%g, %g, %g, %g) up(%g, %g, %g, %g) down(%d, %d, %d, %d) : (tensor<8x8xf32>, tensor<4xi32>) weights tensor<6x8xf32>, tensor<6x8xf32>, tensor<8x6xf32> -> tensor<8x8xf32>
  %e3 = graph.reshape %e : tensor<8x8xf32> -> tensor<1x8x8xf32>
  %loss = graph.cross_entropy %e3, %labels : (tensor<1x8x8xf32>, tensor<1x8xi32>) -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// expected-error @+1 {{dsflow-autodiff: no @forward function}}
module {
  func.func @other() {
    return
  }
}
