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

/// The first user of `anchor` of type OpTy satisfying `match`, or null.
template <typename OpTy, typename Pred>
Operation *findUser(Value anchor, Pred match) {
  for (Operation *user : anchor.getUsers())
    if (auto op = dyn_cast<OpTy>(user))
      if (match(op))
        return op;
  return nullptr;
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
        return {{"lse", tensorOf(o.getValue(), shapeOf(o.getValue()).drop_back())}};
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
        auto type = tensorOf(o.getInput(), {numElements(o.getInput()) /
                                                shapeOf(o.getInput()).back(),
                                            ffn});
        return {{"gate_preact", type}, {"up_preact", type}};
      })
      .Default([](Operation *) { return SmallVector<SavedBuffer>(); });
}

Operation *savedBuffersSource(Operation *op) {
  auto sameNorm = [](Value x, double eps) {
    return findUser<RmsNormOp>(x, [&](RmsNormOp n) {
      return n.getInput() == x && n.getEpsilon().convertToDouble() == eps;
    });
  };
  auto dispatchOf = [](Value indices) {
    return findUser<DispatchOp>(indices, [](DispatchOp) { return true; });
  };
  return llvm::TypeSwitch<Operation *, Operation *>(op)
      .Case([&](RmsNormGradOp o) {
        return sameNorm(o.getInput(), o.getEpsilon().convertToDouble());
      })
      .Case([&](RmsNormWGradOp o) {
        return sameNorm(o.getInput(), o.getEpsilon().convertToDouble());
      })
      .Case([](MlaAttentionGradOp o) {
        return findUser<MlaAttentionOp>(o.getQNope(), [&](MlaAttentionOp a) {
          return a.getQPe() == o.getQPe() && a.getKNope() == o.getKNope() &&
                 a.getKPe() == o.getKPe() && a.getValue() == o.getValue();
        });
      })
      .Case([](CrossEntropyGradOp o) {
        return findUser<CrossEntropyOp>(o.getLogits(), [&](CrossEntropyOp c) {
          return c.getLabels() == o.getLabels();
        });
      })
      .Case([&](CombineOp o) { return dispatchOf(o.getIndices()); })
      .Case([&](CombineGradOp o) { return dispatchOf(o.getIndices()); })
      .Case([&](DispatchGradOp o) { return dispatchOf(o.getIndices()); })
      .Case<ExpertFfnGradOp, ExpertFfnWGradOp>([](auto o) {
        return findUser<ExpertFfnOp>(o.getRows(), [](ExpertFfnOp) { return true; });
      })
      .Case<SharedExpertsGradOp, SharedExpertsWGradOp>([](auto o) {
        return findUser<SharedExpertsOp>(o.getInput(), [&](SharedExpertsOp s) {
          return s.getGateWeight() == o.getGateWeight();
        });
      })
      .Default([](Operation *) -> Operation * { return nullptr; });
}

} // namespace dsflow
