//===- SavedBuffers.h - What forward kernels keep for backward --*- C++ -*-===//
//
// Some CPU kernels (runtime/backends/cpu/Kernels.h) save values in their forward
// that their backward reads: RMSNorm's inverse RMS, the log-sum-exp of attention
// and cross-entropy, dispatch's row sources, the FFNs' pre-activations. They are
// not values of the graph, so the plan adds them: as extra outputs of the forward
// kernel and extra inputs (after the op's own operands) of the kernels that read
// them. This file is the one place that knows which.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_COMPILER_PLAN_SAVEDBUFFERS_H
#define DSFLOW_COMPILER_PLAN_SAVEDBUFFERS_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Operation.h"

#include <string>

namespace dsflow {

struct SavedBuffer {
  std::string name;
  mlir::RankedTensorType type;
};

/// The buffers `op` saves as extra outputs, in order (empty for most ops).
llvm::SmallVector<SavedBuffer> savedBuffersOf(mlir::Operation *op);

/// The forward op whose saved buffers `op` reads as extra inputs, or null.
mlir::Operation *savedBuffersSource(mlir::Operation *op);

} // namespace dsflow

#endif // DSFLOW_COMPILER_PLAN_SAVEDBUFFERS_H
