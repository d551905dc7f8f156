//===- SavedBuffers.cpp - What forward kernels keep for backward ----------===//
#include "Plan/SavedBuffers.h"

#include "Graph/IR/GraphOps.h"

#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace dsflow::graph;

namespace dsflow {
namespace {

RankedTensorType tensorOf(Value like, ArrayRef<int64_t> shape) {
  return RankedTensorType::get(
      shape, cast<RankedTensorType>(like.getType()).getElementType());
}

int64_t numElements(Value v) {
  return cast<RankedTensorType>(v.getType()).getNumElements();
}

ArrayRef<int64_t> shapeOf(Value v) {
  return cast<RankedTensorType>(v.getType()).getShape();
}

} // namespace

SmallVector<SavedBuffer> savedBuffersOf(Operation *op) {
  return llvm::TypeSwitch<Operation *, SmallVector<SavedBuffer>>(op)
      .Case([](RmsNormOp o) -> SmallVector<SavedBuffer> {
        int64_t dim = shapeOf(o.getInput()).back();
        return {{"inv_rms",
                 tensorOf(o.getInput(), {numElements(o.getInput()) / dim})}};
      })
      .Case([](MlaAttentionOp o) -> SmallVector<SavedBuffer> {
        return {
            {"lse", tensorOf(o.getValue(), shapeOf(o.getValue()).drop_back())}};
      })
      .Case([](CrossEntropyOp o) -> SmallVector<SavedBuffer> {
        ArrayRef<int64_t> labels = shapeOf(o.getLabels());
        return {{"lse", tensorOf(o.getLogits(), {labels[0] * labels[1]})}};
      })
      .Case([](DispatchOp o) -> SmallVector<SavedBuffer> {
        return {{"row_source",
                 RankedTensorType::get({shapeOf(o.getRows())[0]},
                                       IntegerType::get(o.getContext(), 32))}};
      })
      .Case([](ExpertFfnOp o) -> SmallVector<SavedBuffer> {
        int64_t ffn = shapeOf(o.getGateWeights().front())[0];
        auto type = tensorOf(o.getRows(), {shapeOf(o.getRows())[0], ffn});
        return {{"gate_preact", type}, {"up_preact", type}};
      })
      .Case([](SharedExpertsOp o) -> SmallVector<SavedBuffer> {
        int64_t ffn = shapeOf(o.getGateWeight())[0];
        auto type = tensorOf(
            o.getInput(),
            {numElements(o.getInput()) / shapeOf(o.getInput()).back(), ffn});
        return {{"gate_preact", type}, {"up_preact", type}};
      })
      .Default([](Operation *) { return SmallVector<SavedBuffer>(); });
}

RankedTensorType storageType(Operation *op, const std::string &output,
                             RankedTensorType type) {
  bool cachedInFp8 = (isa<DispatchOp>(op) && output == "0") ||
                     (isa<ExpertFfnOp>(op) &&
                      (output == "gate_preact" || output == "up_preact"));
  if (!cachedInFp8 || !op->hasAttr("graph.fp8") ||
      !type.getElementType().isBF16())
    return type;
  return RankedTensorType::get(type.getShape(),
                               Float8E4M3FNType::get(op->getContext()));
}

std::optional<int64_t> savedBuffersKey(Operation *op) {
  auto idOf = [](Operation *o, const char *name) -> std::optional<int64_t> {
    if (auto id = o ? o->getAttrOfType<IntegerAttr>(name) : nullptr)
      return id.getInt();
    return std::nullopt;
  };
  // Combine and its gradients read their dispatch's row sources, found through
  // the shared indices (dispatch is never recomputed).
  auto dispatchOf = [&](Value indices) -> std::optional<int64_t> {
    for (Operation *user : indices.getUsers())
      if (isa<DispatchOp>(user))
        return idOf(user, "graph.fwd_id");
    return std::nullopt;
  };
  if (auto combine = dyn_cast<CombineOp>(op))
    return dispatchOf(combine.getIndices());
  if (auto grad = dyn_cast<CombineGradOp>(op))
    return dispatchOf(grad.getIndices());
  if (auto grad = dyn_cast<CombineWeightsGradOp>(op))
    return dispatchOf(grad.getIndices());
  // Every other reader is a gradient op of the forward op that saved them.
  if (isa<RmsNormGradOp, RmsNormWGradOp, MlaAttentionGradOp, CrossEntropyGradOp,
          DispatchGradOp, ExpertFfnGradOp, ExpertFfnWGradOp,
          SharedExpertsGradOp, SharedExpertsWGradOp>(op))
    return idOf(op, "graph.grad_of");
  return std::nullopt;
}

std::optional<int64_t> forwardKey(Operation *op) {
  if (auto id = op->getAttrOfType<IntegerAttr>("graph.fwd_id"))
    return id.getInt();
  return std::nullopt;
}

} // namespace dsflow
