// RUN: dsflow-opt %s -dsflow-autodiff -dsflow-fp8-cast | FileCheck %s --enable-var-scope
// RUN: dsflow-opt %s -dsflow-autodiff -dsflow-fp8-cast=ue8m0=true | FileCheck %s --check-prefix=UE8M0

// A linear layer's GEMMs become FP8: forward and activation gradient with
// activations tiled 1x128 along K, the weight gradient with them tiled 128x1
// along the tokens; weights in 128x128 blocks. The output head and the MoE
// gate stay in higher precision; dispatch is FP8, combine BF16.
// CHECK-LABEL: func.func @train_step
func.func @forward(%x: tensor<4x8xf32>, %labels: tensor<1x4xi32>) -> tensor<f32> {
  %w = graph.param "model.layers.0.mlp.up_proj.weight" : tensor<8x8xf32>
  %gw = graph.param "model.layers.1.mlp.gate.weight" : tensor<2x8xf32>
  %bias = graph.param "model.layers.1.mlp.gate.e_score_correction_bias" no_grad : tensor<2xf32>
  %g = graph.param "model.layers.1.mlp.experts.0.gate_proj.weight" : tensor<6x8xf32>
  %d = graph.param "model.layers.1.mlp.experts.0.down_proj.weight" : tensor<8x6xf32>
  %head = graph.param "lm_head.weight" : tensor<8x8xf32>
  // CHECK: graph.linear %{{.+}}, %{{.+}} {graph.fp8 = {activations = "1x128", format = "e4m3", scales = "fp32", weights = "128x128"}, graph.fwd_id = {{[0-9]+}} : i64} : (tensor<4x8xf32>, tensor<8x8xf32>)
  // UE8M0: graph.linear %{{.+}}, %{{.+}} {graph.fp8 = {activations = "1x128", format = "e4m3", scales = "ue8m0", weights = "128x128"}
  %h = graph.linear %x, %w : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  // CHECK: graph.moe_gate
  // CHECK-NOT: graph.fp8
  // CHECK-SAME: -> (tensor<4x1xf32>
  %wt, %i, %s = graph.moe_gate %h, %gw, %bias {expert_groups = 1 : i64, groups_per_token = 1 : i64, route_scale = 1.0 : f64, score_function = "sigmoid", normalize_topk = true} : (tensor<4x8xf32>, tensor<2x8xf32>, tensor<2xf32>) -> (tensor<4x1xf32>, tensor<4x1xi32>, tensor<4x2xf32>)
  // CHECK: graph.dispatch {{.+}} {graph.fp8 = {activations = "1x128", format = "e4m3", scales = "fp32"}
  %rows, %counts = graph.dispatch %h, %i : (tensor<4x8xf32>, tensor<4x1xi32>) -> (tensor<4x8xf32>, tensor<2xi32>)
  // CHECK: graph.expert_ffn {{.+}} {graph.fp8 = {activations = "1x128", format = "e4m3", scales = "fp32", weights = "128x128"}
  %e = graph.expert_ffn %rows, %counts gate(%g, %g) up(%g, %g) down(%d, %d) : (tensor<4x8xf32>, tensor<2xi32>) weights tensor<6x8xf32>, tensor<6x8xf32>, tensor<8x6xf32> -> tensor<4x8xf32>
  // CHECK: graph.combine {{.+}} {graph.fwd_id = {{[0-9]+}} : i64, graph.precision = "bf16"}
  %y = graph.combine %e, %wt, %i : (tensor<4x8xf32>, tensor<4x1xf32>, tensor<4x1xi32>) -> tensor<4x8xf32>
  // The output head: no FP8.
  // CHECK: graph.linear %{{.+}}, %{{.+}} {graph.fwd_id = {{[0-9]+}} : i64} : (tensor<4x8xf32>, tensor<8x8xf32>)
  %logits = graph.linear %y, %head : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  %l3 = graph.reshape %logits : tensor<4x8xf32> -> tensor<1x4x8xf32>
  %loss = graph.cross_entropy %l3, %labels : (tensor<1x4x8xf32>, tensor<1x4xi32>) -> tensor<f32>
  // The head's gradients: no FP8.
  // CHECK: graph.linear_grad {{.+}} {graph.backward, graph.grad_of = {{[0-9]+}} : i64}
  // CHECK: graph.linear_wgrad {{.+}} {graph.backward, graph.grad_of = {{[0-9]+}} : i64}
  // CHECK: graph.expert_ffn_grad {{.+}} {graph.backward, graph.fp8 = {activations = "1x128", format = "e4m3", scales = "fp32", weights = "128x128"}
  // CHECK: graph.expert_ffn_wgrad {{.+}} {graph.backward, graph.fp8 = {activations = "128x1", format = "e4m3", scales = "fp32", weights = "128x128"}
  // The gate's gradients: no FP8.
  // CHECK: graph.moe_gate_grad
  // CHECK-NEXT: graph.linear_grad {{.+}} {graph.backward, graph.grad_of = {{[0-9]+}} : i64}
  // CHECK: graph.linear_wgrad {{.+}} {graph.backward, graph.grad_of = {{[0-9]+}} : i64}
  // The up-projection's gradients: FP8, weight gradient tiled along the tokens.
  // CHECK: graph.linear_grad {{.+}} {graph.backward, graph.fp8 = {activations = "1x128", format = "e4m3", scales = "fp32", weights = "128x128"}
  // CHECK: graph.linear_wgrad {{.+}} {graph.backward, graph.fp8 = {activations = "128x1", format = "e4m3", scales = "fp32", weights = "128x128"}
  return %loss : tensor<f32>
}
