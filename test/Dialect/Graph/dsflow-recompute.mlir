// RUN: dsflow-opt %s -dsflow-autodiff -dsflow-recompute=ops=rmsnorm,swiglu -split-input-file -verify-diagnostics \
// RUN:   | FileCheck %s --enable-var-scope
// RUN: dsflow-opt %s -dsflow-autodiff -dsflow-recompute=ops=none -split-input-file -verify-diagnostics \
// RUN:   | FileCheck %s --check-prefix=NONE
// RUN: not dsflow-opt %s -dsflow-autodiff -dsflow-recompute=ops=attention 2>&1 \
// RUN:   | FileCheck %s --check-prefix=BAD
// BAD: dsflow-recompute: unknown selection 'attention' (expected rmsnorm, mla_up_proj, swiglu, moe_dispatch, all, none)

// The backward reads the norm's and the SwiGLU's outputs (for the weight
// gradients of the linears after them): both are recomputed right before their
// first backward use, and the backward reads the copies.
// CHECK-LABEL: func.func @train_step
// NONE-LABEL: func.func @train_step
// NONE-NOT: graph.recomputed
func.func @forward(%x: tensor<4x8xf32>, %labels: tensor<1x4xi32>) -> tensor<f32> {
  %n = graph.param "norm" : tensor<8xf32>
  %g = graph.param "gate" : tensor<16x8xf32>
  %u = graph.param "up" : tensor<16x8xf32>
  %d = graph.param "down" : tensor<8x16xf32>
  // CHECK: %[[Y:.+]] = graph.rms_norm %{{.+}}, %{{.+}} {epsilon = 9.9999999999999995E-7 : f64, graph.fwd_id = [[NORM:[0-9]+]] : i64}
  %y = graph.rms_norm %x, %n {epsilon = 1.0e-06 : f64} : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  %a = graph.linear %y, %g : (tensor<4x8xf32>, tensor<16x8xf32>) -> tensor<4x16xf32>
  %b = graph.linear %y, %u : (tensor<4x8xf32>, tensor<16x8xf32>) -> tensor<4x16xf32>
  // CHECK: %[[S:.+]] = graph.swiglu
  %s = graph.swiglu %a, %b : tensor<4x16xf32>
  %o = graph.linear %s, %d : (tensor<4x16xf32>, tensor<8x16xf32>) -> tensor<4x8xf32>
  %o3 = graph.reshape %o : tensor<4x8xf32> -> tensor<1x4x8xf32>
  %loss = graph.cross_entropy %o3, %labels : (tensor<1x4x8xf32>, tensor<1x4xi32>) -> tensor<f32>
  // CHECK: graph.cross_entropy_grad
  // CHECK: %[[S2:.+]] = graph.swiglu %{{.+}}, %{{.+}} {graph.backward, {{.*}}graph.recomputed}
  // CHECK: graph.linear_wgrad %{{.+}}, %[[S2]]
  // CHECK: graph.swiglu_grad
  // CHECK: %[[Y2:.+]] = graph.rms_norm %{{.+}}, %{{.+}} {epsilon = 9.9999999999999995E-7 : f64, graph.backward, graph.fwd_id = [[NORM]] : i64, graph.recomputed}
  // CHECK: graph.linear_wgrad %{{.+}}, %[[Y2]]
  // CHECK: graph.linear_wgrad %{{.+}}, %[[Y2]]
  // CHECK-NOT: graph.linear_wgrad %{{.+}}, %[[Y]]
  // CHECK: graph.rms_norm_grad
  return %loss : tensor<f32>
}

