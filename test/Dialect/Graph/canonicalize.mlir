// Folds of the graph dialect.
// RUN: dsflow-opt %s -canonicalize -split-input-file | FileCheck %s --enable-var-scope

// CHECK-LABEL: func.func @reshape_identity
// CHECK-SAME: (%[[X:.+]]: tensor<2x8x64xf32>)
// CHECK-NEXT: return %[[X]]
func.func @reshape_identity(%x: tensor<2x8x64xf32>) -> tensor<2x8x64xf32> {
  %y = graph.reshape %x : tensor<2x8x64xf32> -> tensor<2x8x64xf32>
  return %y : tensor<2x8x64xf32>
}

// -----

// CHECK-LABEL: func.func @reshape_chain
// CHECK-SAME: (%[[X:.+]]: tensor<2x8x64xf32>)
// CHECK-NEXT: %[[Y:.+]] = graph.reshape %[[X]] : tensor<2x8x64xf32> -> tensor<16x64xf32>
// CHECK-NEXT: return %[[Y]]
func.func @reshape_chain(%x: tensor<2x8x64xf32>) -> tensor<16x64xf32> {
  %a = graph.reshape %x : tensor<2x8x64xf32> -> tensor<2x8x4x16xf32>
  %b = graph.reshape %a : tensor<2x8x4x16xf32> -> tensor<16x64xf32>
  return %b : tensor<16x64xf32>
}

// -----

// A reshape back to the original shape disappears.
// CHECK-LABEL: func.func @reshape_round_trip
// CHECK-SAME: (%[[X:.+]]: tensor<16x64xf32>)
// CHECK-NEXT: return %[[X]]
func.func @reshape_round_trip(%x: tensor<16x64xf32>) -> tensor<16x64xf32> {
  %a = graph.reshape %x : tensor<16x64xf32> -> tensor<2x8x64xf32>
  %b = graph.reshape %a : tensor<2x8x64xf32> -> tensor<16x64xf32>
  return %b : tensor<16x64xf32>
}

// -----

// CHECK-LABEL: func.func @scale_one
// CHECK-SAME: (%[[X:.+]]: tensor<f32>)
// CHECK-NEXT: return %[[X]]
func.func @scale_one(%x: tensor<f32>) -> tensor<f32> {
  %y = graph.scale %x {factor = 1.0 : f64} : tensor<f32>
  return %y : tensor<f32>
}

// -----

// CHECK-LABEL: func.func @scale_chain
// CHECK-SAME: (%[[X:.+]]: tensor<f32>)
// CHECK-NEXT: %[[Y:.+]] = graph.scale %[[X]] {factor = 1.500000e-01 : f64} : tensor<f32>
// CHECK-NEXT: return %[[Y]]
func.func @scale_chain(%x: tensor<f32>) -> tensor<f32> {
  %a = graph.scale %x {factor = 0.5 : f64} : tensor<f32>
  %b = graph.scale %a {factor = 0.3 : f64} : tensor<f32>
  return %b : tensor<f32>
}

// -----

// Unused parameters are pure and go away.
// CHECK-LABEL: func.func @dead_param
// CHECK-NOT: graph.param
func.func @dead_param() {
  %w = graph.param "unused" : tensor<4xf32>
  return
}
