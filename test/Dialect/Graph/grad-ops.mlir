// Round trip of every gradient op through the printer, twice.
// RUN: dsflow-opt %s | dsflow-opt | FileCheck %s --enable-var-scope

// CHECK-LABEL: func.func @dense_grads
func.func @dense_grads(%dy: tensor<2x8x16xf32>, %x: tensor<2x8x64xf32>, %w: tensor<16x64xf32>,
                       %dn: tensor<2x8x64xf32>, %nw: tensor<64xf32>, %ids: tensor<2x8xi32>,
                       %p: tensor<2x8x4x8xf32>) {
  // CHECK: graph.fill 0.000000e+00 : tensor<2x8x16xf32>
  %z = graph.fill 0.0 : tensor<2x8x16xf32>
  // CHECK: graph.linear_grad %{{.+}}, %{{.+}} : (tensor<2x8x16xf32>, tensor<16x64xf32>) -> tensor<2x8x64xf32>
  %dx = graph.linear_grad %dy, %w : (tensor<2x8x16xf32>, tensor<16x64xf32>) -> tensor<2x8x64xf32>
  // CHECK: graph.linear_wgrad %{{.+}}, %{{.+}} : (tensor<2x8x16xf32>, tensor<2x8x64xf32>) -> tensor<16x64xf32>
  %dw = graph.linear_wgrad %dy, %x : (tensor<2x8x16xf32>, tensor<2x8x64xf32>) -> tensor<16x64xf32>
  // CHECK: graph.rms_norm_grad {{.+}} {epsilon = 9.9999999999999995E-7 : f64} : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
  %dxn = graph.rms_norm_grad %dn, %x, %nw {epsilon = 1.0e-06 : f64} : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
  // CHECK: graph.rms_norm_wgrad {{.+}} : (tensor<2x8x64xf32>, tensor<2x8x64xf32>) -> tensor<64xf32>
  %dnw = graph.rms_norm_wgrad %dn, %x {epsilon = 1.0e-06 : f64} : (tensor<2x8x64xf32>, tensor<2x8x64xf32>) -> tensor<64xf32>
  // CHECK: graph.embedding_wgrad {{.+}} : (tensor<2x8x64xf32>, tensor<2x8xi32>) -> tensor<256x64xf32>
  %dt = graph.embedding_wgrad %dn, %ids : (tensor<2x8x64xf32>, tensor<2x8xi32>) -> tensor<256x64xf32>
  // CHECK: graph.rope_grad %{{.+}} {theta = 1.000000e+04 : f64} : tensor<2x8x4x8xf32>
  %dp = graph.rope_grad %p {theta = 1.0e+04 : f64} : tensor<2x8x4x8xf32>
  // CHECK: graph.swiglu_grad {{.+}} : tensor<2x8x64xf32>
  %dg, %du = graph.swiglu_grad %dn, %x, %x : tensor<2x8x64xf32>
  // CHECK: graph.concat {{.+}} : tensor<2x8x16xf32>, tensor<2x8x64xf32> -> tensor<2x8x80xf32>
  %c = graph.concat %dy, %x : tensor<2x8x16xf32>, tensor<2x8x64xf32> -> tensor<2x8x80xf32>
  return
}

// CHECK-LABEL: func.func @attention_and_loss_grads
func.func @attention_and_loss_grads(%do: tensor<2x8x4x16xf32>, %qn: tensor<2x8x4x16xf32>,
    %qp: tensor<2x8x4x8xf32>, %kp: tensor<2x8x1x8xf32>, %dl: tensor<f32>,
    %logits: tensor<2x8x256xf32>, %labels: tensor<2x8xi32>) {
  // CHECK: graph.mla_attention_grad {{.+}} {softmax_scale = 2.000000e-01 : f64}
  %a:5 = graph.mla_attention_grad %do, %qn, %qp, %qn, %kp, %qn {softmax_scale = 0.2 : f64} : (tensor<2x8x4x16xf32>, tensor<2x8x4x16xf32>, tensor<2x8x4x8xf32>, tensor<2x8x4x16xf32>, tensor<2x8x1x8xf32>, tensor<2x8x4x16xf32>) -> (tensor<2x8x4x16xf32>, tensor<2x8x4x8xf32>, tensor<2x8x4x16xf32>, tensor<2x8x1x8xf32>, tensor<2x8x4x16xf32>)
  // CHECK: graph.cross_entropy_grad {{.+}} -> tensor<2x8x256xf32>
  %d = graph.cross_entropy_grad %dl, %logits, %labels : (tensor<f32>, tensor<2x8x256xf32>, tensor<2x8xi32>) -> tensor<2x8x256xf32>
  return
}

// CHECK-LABEL: func.func @moe_grads
func.func @moe_grads(%dwts: tensor<16x2xf32>, %scores: tensor<16x4xf32>, %idx: tensor<16x2xi32>,
    %drows: tensor<32x64xf32>, %rows: tensor<32x64xf32>, %counts: tensor<2xi32>,
    %g: tensor<32x64xf32>, %d: tensor<64x32xf32>, %dy: tensor<16x64xf32>, %wts: tensor<16x2xf32>,
    %x: tensor<16x64xf32>) {
  // CHECK: graph.moe_gate_grad {{.+}} {normalize_topk = true, route_scale = 2.500000e+00 : f64, score_function = "sigmoid"}
  %dlog = graph.moe_gate_grad %dwts, %scores, %idx {route_scale = 2.5 : f64, score_function = "sigmoid", normalize_topk = true} : (tensor<16x2xf32>, tensor<16x4xf32>, tensor<16x2xi32>) -> tensor<16x4xf32>
  // CHECK: graph.dispatch_grad {{.+}} -> tensor<16x64xf32>
  %dx = graph.dispatch_grad %drows, %idx : (tensor<32x64xf32>, tensor<16x2xi32>) -> tensor<16x64xf32>
  // CHECK: graph.expert_ffn_grad {{.+}} gate(%{{.+}}, %{{.+}}) up(%{{.+}}, %{{.+}}) down(%{{.+}}, %{{.+}}) : (tensor<32x64xf32>, tensor<32x64xf32>, tensor<2xi32>) weights tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x32xf32> -> tensor<32x64xf32>, tensor<32xf32>
  %de, %dots = graph.expert_ffn_grad %drows, %rows, %counts gate(%g, %g) up(%g, %g) down(%d, %d) : (tensor<32x64xf32>, tensor<32x64xf32>, tensor<2xi32>) weights tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x32xf32> -> tensor<32x64xf32>, tensor<32xf32>
  // CHECK: %{{.+}}:2, %{{.+}}:2, %{{.+}}:2 = graph.expert_ffn_wgrad {{.+}} -> tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x32xf32>
  %dg:2, %du:2, %dd:2 = graph.expert_ffn_wgrad %drows, %rows, %counts gate(%g, %g) up(%g, %g) down(%d, %d) : (tensor<32x64xf32>, tensor<32x64xf32>, tensor<2xi32>) weights tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x32xf32> -> tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x32xf32>
  // CHECK: graph.combine_grad {{.+}} -> tensor<32x64xf32>
  %cr = graph.combine_grad %dy, %wts, %idx : (tensor<16x64xf32>, tensor<16x2xf32>, tensor<16x2xi32>) -> tensor<32x64xf32>
  // CHECK: graph.combine_weights_grad {{.+}} -> tensor<16x2xf32>
  %cw = graph.combine_weights_grad %dots, %wts, %idx : (tensor<32xf32>, tensor<16x2xf32>, tensor<16x2xi32>) -> tensor<16x2xf32>
  // CHECK: graph.shared_experts_grad {{.+}} -> tensor<16x64xf32>
  %sx = graph.shared_experts_grad %dy, %x, %g, %g, %d : (tensor<16x64xf32>, tensor<16x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x32xf32>) -> tensor<16x64xf32>
  // CHECK: graph.shared_experts_wgrad {{.+}} -> (tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x32xf32>)
  %sg:3 = graph.shared_experts_wgrad %dy, %x, %g, %g, %d : (tensor<16x64xf32>, tensor<16x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x32xf32>) -> (tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x32xf32>)
  return
}

// CHECK-LABEL: func.func @mtp_grads_and_sink
func.func @mtp_grads_and_sink(%dy: tensor<2x8x64xf32>, %e: tensor<2x8x64xf32>, %eh: tensor<64x128xf32>) {
  // CHECK: graph.mtp_project_grad {{.+}} -> (tensor<2x8x64xf32>, tensor<2x8x64xf32>)
  %de, %dh = graph.mtp_project_grad %dy, %eh : (tensor<2x8x64xf32>, tensor<64x128xf32>) -> (tensor<2x8x64xf32>, tensor<2x8x64xf32>)
  // CHECK: %[[DEH:.+]] = graph.mtp_project_wgrad {{.+}} -> tensor<64x128xf32>
  %deh = graph.mtp_project_wgrad %dy, %e, %e : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>) -> tensor<64x128xf32>
  // CHECK: %[[P:.+]] = graph.param "model.layers.4.eh_proj.weight"
  %p = graph.param "model.layers.4.eh_proj.weight" : tensor<64x128xf32>
  // CHECK: graph.accumulate_grad %[[P]], %[[DEH]] : tensor<64x128xf32>
  graph.accumulate_grad %p, %deh : tensor<64x128xf32>
  return
}
