// The FP8 marks are verified by the dialect.
// RUN: dsflow-opt %s -split-input-file -verify-diagnostics

func.func @format(%x: tensor<4x8xf32>, %w: tensor<8x8xf32>) {
  // expected-error @+1 {{graph.fp8: format must be "e4m3"}}
  %y = graph.linear %x, %w {graph.fp8 = {format = "e5m2", activations = "1x128", weights = "128x128", scales = "fp32"}} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  return
}

// -----

func.func @tiles(%x: tensor<4x8xf32>, %w: tensor<8x8xf32>) {
  // expected-error @+1 {{graph.fp8: activations must be tiled "1x128" or "128x1"}}
  %y = graph.linear %x, %w {graph.fp8 = {format = "e4m3", activations = "1x64", weights = "128x128", scales = "fp32"}} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  return
}

// -----

func.func @weights(%x: tensor<4x8xf32>, %w: tensor<8x8xf32>) {
  // expected-error @+1 {{graph.fp8: weights must be blocked "128x128"}}
  %y = graph.linear %x, %w {graph.fp8 = {format = "e4m3", activations = "1x128", scales = "fp32"}} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  return
}

// -----

func.func @scales(%x: tensor<4x8xf32>, %w: tensor<8x8xf32>) {
  // expected-error @+1 {{graph.fp8: scales must be "fp32" or "ue8m0"}}
  %y = graph.linear %x, %w {graph.fp8 = {format = "e4m3", activations = "1x128", weights = "128x128", scales = "bf16"}} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  return
}

// -----

func.func @not_a_gemm(%x: tensor<4x8xf32>, %n: tensor<8xf32>) {
  // expected-error @+1 {{graph.fp8 applies to GEMM ops and dispatch only}}
  %y = graph.rms_norm %x, %n {epsilon = 1.0e-06 : f64, graph.fp8 = {format = "e4m3", activations = "1x128", scales = "fp32"}} : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  return
}

// -----

func.func @precision(%x: tensor<4x8xf32>, %w: tensor<8x8xf32>) {
  // expected-error @+1 {{graph.precision must be "bf16"}}
  %y = graph.linear %x, %w {graph.precision = "fp16"} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  return
}
