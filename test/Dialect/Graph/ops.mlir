// Round trip of every graph op through the printer, twice.
// RUN: dsflow-opt %s | dsflow-opt | FileCheck %s --enable-var-scope

// CHECK-LABEL: func.func @params_and_data
func.func @params_and_data() -> (tensor<2x8x64xf32>, tensor<2x8xi32>) {
  // CHECK: %[[TOK:.+]] = graph.input "tokens" : tensor<2x10xi32>
  %tokens = graph.input "tokens" : tensor<2x10xi32>
  // CHECK: %[[TABLE:.+]] = graph.param "model.embed_tokens.weight" : tensor<256x64xf32>
  %table = graph.param "model.embed_tokens.weight" : tensor<256x64xf32>
  // CHECK: graph.param "model.layers.2.mlp.gate.e_score_correction_bias" no_grad : tensor<8xf32>
  %bias = graph.param "model.layers.2.mlp.gate.e_score_correction_bias" no_grad : tensor<8xf32>
  // CHECK: %[[IDS:.+]] = graph.token_window %[[TOK]][0] : tensor<2x10xi32> -> tensor<2x8xi32>
  %ids = graph.token_window %tokens[0] : tensor<2x10xi32> -> tensor<2x8xi32>
  // CHECK: graph.token_window %[[TOK]][2] : tensor<2x10xi32> -> tensor<2x8xi32>
  %labels = graph.token_window %tokens[2] : tensor<2x10xi32> -> tensor<2x8xi32>
  // CHECK: graph.embedding %[[TABLE]], %[[IDS]] : (tensor<256x64xf32>, tensor<2x8xi32>) -> tensor<2x8x64xf32>
  %h = graph.embedding %table, %ids : (tensor<256x64xf32>, tensor<2x8xi32>) -> tensor<2x8x64xf32>
  return %h, %labels : tensor<2x8x64xf32>, tensor<2x8xi32>
}

// CHECK-LABEL: func.func @dense_blocks
func.func @dense_blocks(%x: tensor<2x8x64xbf16>, %norm: tensor<64xbf16>,
                        %w: tensor<128x64xbf16>) -> tensor<2x8x128xbf16> {
  // CHECK: %[[N:.+]] = graph.rms_norm %{{.+}}, %{{.+}} {epsilon = 9.9999999999999995E-7 : f64} : (tensor<2x8x64xbf16>, tensor<64xbf16>) -> tensor<2x8x64xbf16>
  %n = graph.rms_norm %x, %norm {epsilon = 1.0e-06 : f64} : (tensor<2x8x64xbf16>, tensor<64xbf16>) -> tensor<2x8x64xbf16>
  // CHECK: %[[G:.+]] = graph.linear %[[N]], %{{.+}} : (tensor<2x8x64xbf16>, tensor<128x64xbf16>) -> tensor<2x8x128xbf16>
  %g = graph.linear %n, %w : (tensor<2x8x64xbf16>, tensor<128x64xbf16>) -> tensor<2x8x128xbf16>
  %u = graph.linear %n, %w : (tensor<2x8x64xbf16>, tensor<128x64xbf16>) -> tensor<2x8x128xbf16>
  // CHECK: %[[S:.+]] = graph.swiglu %[[G]], %{{.+}} : tensor<2x8x128xbf16>
  %s = graph.swiglu %g, %u : tensor<2x8x128xbf16>
  // CHECK: graph.add %[[S]], %[[S]] : tensor<2x8x128xbf16>
  %r = graph.add %s, %s : tensor<2x8x128xbf16>
  return %r : tensor<2x8x128xbf16>
}

// CHECK-LABEL: func.func @attention
func.func @attention(%q: tensor<2x8x96xf32>, %kv: tensor<2x8x40xf32>,
                     %kvb: tensor<2x8x128xf32>) -> tensor<2x8x4x16xf32> {
  // CHECK: %[[QH:.+]] = graph.reshape %{{.+}} : tensor<2x8x96xf32> -> tensor<2x8x4x24xf32>
  %qh = graph.reshape %q : tensor<2x8x96xf32> -> tensor<2x8x4x24xf32>
  // CHECK: %[[QS:.+]]:2 = graph.split %[[QH]] : tensor<2x8x4x24xf32> -> tensor<2x8x4x16xf32>, tensor<2x8x4x8xf32>
  %qn, %qp = graph.split %qh : tensor<2x8x4x24xf32> -> tensor<2x8x4x16xf32>, tensor<2x8x4x8xf32>
  %c, %kp0 = graph.split %kv : tensor<2x8x40xf32> -> tensor<2x8x32xf32>, tensor<2x8x8xf32>
  %kp1 = graph.reshape %kp0 : tensor<2x8x8xf32> -> tensor<2x8x1x8xf32>
  // CHECK: graph.rope %{{.+}} {theta = 1.000000e+04 : f64} : tensor<2x8x1x8xf32>
  %kp = graph.rope %kp1 {theta = 1.0e+04 : f64} : tensor<2x8x1x8xf32>
  // CHECK: graph.rope %[[QS]]#1 {theta = 1.000000e+04 : f64, yarn_beta_fast = 3.200000e+01 : f64, yarn_beta_slow = 1.000000e+00 : f64, yarn_factor = 4.000000e+01 : f64, yarn_original_max_position = 4096 : i64} : tensor<2x8x4x8xf32>
  %qr = graph.rope %qp {theta = 1.0e+04 : f64, yarn_factor = 40.0 : f64, yarn_original_max_position = 4096 : i64, yarn_beta_fast = 32.0 : f64, yarn_beta_slow = 1.0 : f64} : tensor<2x8x4x8xf32>
  %kvh = graph.reshape %kvb : tensor<2x8x128xf32> -> tensor<2x8x4x32xf32>
  %kn, %v = graph.split %kvh : tensor<2x8x4x32xf32> -> tensor<2x8x4x16xf32>, tensor<2x8x4x16xf32>
  // CHECK: graph.mla_attention %[[QS]]#0, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}} {softmax_scale = 2.000000e-01 : f64} : (tensor<2x8x4x16xf32>, tensor<2x8x4x8xf32>, tensor<2x8x4x16xf32>, tensor<2x8x1x8xf32>, tensor<2x8x4x16xf32>) -> tensor<2x8x4x16xf32>
  %o = graph.mla_attention %qn, %qr, %kn, %kp, %v {softmax_scale = 0.2 : f64} : (tensor<2x8x4x16xf32>, tensor<2x8x4x8xf32>, tensor<2x8x4x16xf32>, tensor<2x8x1x8xf32>, tensor<2x8x4x16xf32>) -> tensor<2x8x4x16xf32>
  return %o : tensor<2x8x4x16xf32>
}

// CHECK-LABEL: func.func @moe
func.func @moe(%x: tensor<16x64xf32>, %gw: tensor<4x64xf32>, %bias: tensor<4xf32>,
               %g: tensor<32x64xf32>, %u: tensor<32x64xf32>, %d: tensor<64x32xf32>)
    -> tensor<16x64xf32> {
  // CHECK: %[[W:.+]], %[[I:.+]], %{{.+}} = graph.moe_gate %{{.+}}, %{{.+}}, %{{.+}} {expert_groups = 2 : i64, groups_per_token = 1 : i64, normalize_topk = true, route_scale = 2.500000e+00 : f64, score_function = "sigmoid"} : (tensor<16x64xf32>, tensor<4x64xf32>, tensor<4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x4xf32>)
  %w, %i, %s = graph.moe_gate %x, %gw, %bias {expert_groups = 2 : i64, groups_per_token = 1 : i64, route_scale = 2.5 : f64, score_function = "sigmoid", normalize_topk = true} : (tensor<16x64xf32>, tensor<4x64xf32>, tensor<4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x4xf32>)
  // CHECK: %[[R:.+]], %[[C:.+]] = graph.dispatch %{{.+}}, %[[I]] : (tensor<16x64xf32>, tensor<16x2xi32>) -> (tensor<32x64xf32>, tensor<4xi32>)
  %rows, %counts = graph.dispatch %x, %i : (tensor<16x64xf32>, tensor<16x2xi32>) -> (tensor<32x64xf32>, tensor<4xi32>)
  // CHECK: %[[E:.+]] = graph.expert_ffn %[[R]], %[[C]] gate(%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}) up(%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}) down(%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}) : (tensor<32x64xf32>, tensor<4xi32>) weights tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x32xf32> -> tensor<32x64xf32>
  %e = graph.expert_ffn %rows, %counts gate(%g, %g, %g, %g) up(%u, %u, %u, %u) down(%d, %d, %d, %d) : (tensor<32x64xf32>, tensor<4xi32>) weights tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x32xf32> -> tensor<32x64xf32>
  // CHECK: %[[Y:.+]] = graph.combine %[[E]], %[[W]], %[[I]] : (tensor<32x64xf32>, tensor<16x2xf32>, tensor<16x2xi32>) -> tensor<16x64xf32>
  %y = graph.combine %e, %w, %i : (tensor<32x64xf32>, tensor<16x2xf32>, tensor<16x2xi32>) -> tensor<16x64xf32>
  // CHECK: graph.shared_experts %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}} {num_shared = 2 : i64} : (tensor<16x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x32xf32>) -> tensor<16x64xf32>
  %sh = graph.shared_experts %x, %g, %u, %d {num_shared = 2 : i64} : (tensor<16x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x32xf32>) -> tensor<16x64xf32>
  %out = graph.add %y, %sh : tensor<16x64xf32>
  return %out : tensor<16x64xf32>
}

// CHECK-LABEL: func.func @mtp_and_loss
func.func @mtp_and_loss(%e: tensor<2x8x64xf32>, %h: tensor<2x8x64xf32>,
                        %eh: tensor<64x128xf32>, %logits: tensor<2x8x256xf32>,
                        %labels: tensor<2x8xi32>) -> (tensor<2x8x64xf32>, tensor<f32>) {
  // CHECK: graph.mtp_project %{{.+}}, %{{.+}}, %{{.+}} {depth = 1 : i64} : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<64x128xf32>) -> tensor<2x8x64xf32>
  %m = graph.mtp_project %e, %h, %eh {depth = 1 : i64} : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<64x128xf32>) -> tensor<2x8x64xf32>
  // CHECK: %[[L:.+]] = graph.cross_entropy %{{.+}}, %{{.+}} : (tensor<2x8x256xf32>, tensor<2x8xi32>) -> tensor<f32>
  %l = graph.cross_entropy %logits, %labels : (tensor<2x8x256xf32>, tensor<2x8xi32>) -> tensor<f32>
  // CHECK: %[[S:.+]] = graph.scale %[[L]] {factor = 3.000000e-01 : f64} : tensor<f32>
  %s = graph.scale %l {factor = 0.3 : f64} : tensor<f32>
  // CHECK: graph.add %[[L]], %[[S]] : tensor<f32>
  %t = graph.add %l, %s : tensor<f32>
  return %m, %t : tensor<2x8x64xf32>, tensor<f32>
}

// CHECK-LABEL: func.func @balance
func.func @balance(%s: tensor<16x8xf32>, %i: tensor<16x2xi32>, %dw: tensor<16x2xf32>, %dl: tensor<f32>) -> tensor<16x8xf32> {
  // CHECK: graph.balance_loss %{{.+}}, %{{.+}} {alpha = 1.000000e-04 : f64, sequences = 2 : i64} : (tensor<16x8xf32>, tensor<16x2xi32>) -> tensor<f32>
  %l = graph.balance_loss %s, %i {alpha = 1.0e-04 : f64, sequences = 2 : i64} : (tensor<16x8xf32>, tensor<16x2xi32>) -> tensor<f32>
  // CHECK: %[[DS:.+]] = graph.balance_loss_grad {{.+}} -> tensor<16x8xf32>
  %ds = graph.balance_loss_grad %dl, %s, %i {alpha = 1.0e-04 : f64, sequences = 2 : i64} : (tensor<f32>, tensor<16x8xf32>, tensor<16x2xi32>) -> tensor<16x8xf32>
  // CHECK: graph.moe_gate_grad %{{.+}}, %{{.+}}, %{{.+}} scores_grad %[[DS]] {normalize_topk = true, route_scale = 1.000000e+00 : f64, score_function = "sigmoid"} : (tensor<16x2xf32>, tensor<16x8xf32>, tensor<16x2xi32>, tensor<16x8xf32>) -> tensor<16x8xf32>
  %dlog = graph.moe_gate_grad %dw, %s, %i scores_grad %ds {route_scale = 1.0 : f64, score_function = "sigmoid", normalize_topk = true} : (tensor<16x2xf32>, tensor<16x8xf32>, tensor<16x2xi32>, tensor<16x8xf32>) -> tensor<16x8xf32>
  return %dlog : tensor<16x8xf32>
}
