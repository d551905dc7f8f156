//===- SavedBuffers.h - What forward kernels keep for backward --*- C++ -*-===//
//
// Some CPU kernels (runtime/backends/cpu/Kernels.h) save values in their
// forward that their backward reads: RMSNorm's inverse RMS, the log-sum-exp of
// attention and cross-entropy, dispatch's row sources, the FFNs'
// pre-activations. They are not values of the graph, so the plan adds them: as
// extra outputs of the forward kernel and extra inputs (after the op's own
// operands) of the kernels that read them. This file is the one place that
// knows which, and how readers find them.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_COMPILER_PLAN_SAVEDBUFFERS_H
#define DSFLOW_COMPILER_PLAN_SAVEDBUFFERS_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Operation.h"

#include <optional>
#include <string>

namespace dsflow {

struct SavedBuffer {
  std::string name;
  mlir::RankedTensorType type;
};

/// The buffers `op` saves as extra outputs, in order (empty for most ops).
llvm::SmallVector<SavedBuffer> savedBuffersOf(mlir::Operation *op);

/// Saved buffers are keyed by the forward op's number (graph.fwd_id, given by
/// dsflow-autodiff and kept by recomputed copies); a reader takes those of the
/// latest op with that key before it in program order.

/// The type `op`'s output `output` (a result number, or a saved buffer's
/// name) is stored in: FP8 E4M3 with 1x128-tile scales for what DeepSeek-V3
/// caches in FP8 for the backward, when the FP8 pass marked `op` and the model
/// is BF16 (an FP32 plan, the CPU's emulation, stores FP32): dispatch's rows,
/// which the routed experts' up-projections read, and the routed experts'
/// saved SwiGLU inputs. Otherwise `type`.
mlir::RankedTensorType storageType(mlir::Operation *op,
                                   const std::string &output,
                                   mlir::RankedTensorType type);

/// The key of the saved buffers `op` reads as extra inputs, if it reads any.
std::optional<int64_t> savedBuffersKey(mlir::Operation *op);
/// The key under which `op` saves its buffers (its graph.fwd_id), if any.
std::optional<int64_t> forwardKey(mlir::Operation *op);

} // namespace dsflow

#endif // DSFLOW_COMPILER_PLAN_SAVEDBUFFERS_H
