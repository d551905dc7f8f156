//===- Autodiff.cpp - Reverse-mode differentiation of the graph -----------===//
//
// Walks @forward backwards from the total loss and emits, for each op whose
// results have gradients, the ops computing its operands' gradients. Rules keep
// activation gradients (B) and weight gradients (W) in separate ops.
//
//===----------------------------------------------------------------------===//
#include "Graph/IR/GraphOps.h"
#include "Graph/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/SmallPtrSet.h"
#include "llvm/ADT/TypeSwitch.h"

#define DEBUG_TYPE "dsflow-autodiff"

namespace dsflow::graph {
#define GEN_PASS_DEF_AUTODIFF
#include "Graph/Transforms/Passes.h.inc"
} // namespace dsflow::graph

using namespace mlir;
using namespace dsflow::graph;

namespace {

/// The gradient of every value reached so far, summed over its uses.
class Gradients {
public:
  explicit Gradients(OpBuilder &b) : b(b) {}

  /// A parameter's contributions are each added into its gradient buffer
  /// (one accumulate_grad per use, so that a weight-gradient kernel adds in
  /// place); other values' contributions are summed.
  void add(Value value, Value grad) {
    if (!grad)
      return;
    if (auto param = value.getDefiningOp<ParamOp>()) {
      if (!param.getNoGrad())
        AccumulateGradOp::create(b, param.getLoc(), param, grad);
      return;
    }
    auto [it, inserted] = grads.try_emplace(value, grad);
    if (!inserted)
      it->second = AddOp::create(b, value.getLoc(), it->second, grad);
  }
  Value lookup(Value value) const { return grads.lookup(value); }
  /// The gradient, or zeros when the value did not influence the loss.
  Value orZeros(Value value) {
    if (Value g = lookup(value))
      return g;
    return FillOp::create(b, value.getLoc(), value.getType(),
                          b.getF64FloatAttr(0.0));
  }

private:
  OpBuilder &b;
  DenseMap<Value, Value> grads;
};

/// Emits the gradient ops of one forward op. `dy` is the gradient of its first
/// result (the others are looked up). Returns failure for an op without a rule.
LogicalResult differentiate(Operation *op, OpBuilder &b, Gradients &g) {
  Location loc = op->getLoc();
  Value dy = g.lookup(op->getResult(0));
  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](LinearOp o) {
        g.add(o.getInput(), LinearGradOp::create(b, loc, o.getInput().getType(),
                                                 dy, o.getWeight()));
        g.add(o.getWeight(),
              LinearWGradOp::create(b, loc, o.getWeight().getType(), dy,
                                    o.getInput()));
        return success();
      })
      .Case([&](RmsNormOp o) {
        g.add(o.getInput(),
              RmsNormGradOp::create(b, loc, o.getInput().getType(), dy,
                                    o.getInput(), o.getWeight(),
                                    o.getEpsilonAttr()));
        g.add(o.getWeight(),
              RmsNormWGradOp::create(b, loc, o.getWeight().getType(), dy,
                                     o.getInput(), o.getEpsilonAttr()));
        return success();
      })
      .Case([&](EmbeddingOp o) {
        g.add(o.getTable(),
              EmbeddingWGradOp::create(b, loc, o.getTable().getType(), dy,
                                       o.getIds()));
        return success();
      })
      .Case([&](ReshapeOp o) {
        g.add(o.getInput(),
              ReshapeOp::create(b, loc, o.getInput().getType(), dy));
        return success();
      })
      .Case([&](SplitOp o) {
        SmallVector<Value> pieces;
        for (Value piece : o.getResults())
          pieces.push_back(g.orZeros(piece));
        g.add(o.getInput(),
              ConcatOp::create(b, loc, o.getInput().getType(), pieces));
        return success();
      })
      .Case([&](ConcatOp o) {
        auto pieces = SplitOp::create(b, loc, o.getPieces().getTypes(), dy);
        for (auto [piece, d] : llvm::zip(o.getPieces(), pieces.getResults()))
          g.add(piece, d);
        return success();
      })
      .Case([&](RopeOp o) {
        g.add(o.getInput(),
              RopeGradOp::create(
                  b, loc, dy, o.getThetaAttr(), o.getYarnFactorAttr(),
                  o.getYarnOriginalMaxPositionAttr(), o.getYarnBetaFastAttr(),
                  o.getYarnBetaSlowAttr()));
        return success();
      })
      .Case([&](MlaAttentionOp o) {
        auto grad = MlaAttentionGradOp::create(
            b, loc, o->getOperandTypes(), dy, o.getQNope(), o.getQPe(),
            o.getKNope(), o.getKPe(), o.getValue(), o.getSoftmaxScaleAttr());
        for (auto [input, d] : llvm::zip(o->getOperands(), grad.getResults()))
          g.add(input, d);
        return success();
      })
      .Case([&](SwigluOp o) {
        auto grad = SwigluGradOp::create(b, loc, dy.getType(), dy.getType(), dy,
                                         o.getGate(), o.getUp());
        g.add(o.getGate(), grad.getGradGate());
        g.add(o.getUp(), grad.getGradUp());
        return success();
      })
      .Case([&](AddOp o) {
        g.add(o.getLhs(), dy);
        g.add(o.getRhs(), dy);
        return success();
      })
      .Case([&](ScaleOp o) {
        g.add(o.getInput(), ScaleOp::create(b, loc, dy, o.getFactorAttr()));
        return success();
      })
      .Case([&](CrossEntropyOp o) {
        g.add(o.getLogits(),
              CrossEntropyGradOp::create(b, loc, o.getLogits().getType(), dy,
                                         o.getLogits(), o.getLabels()));
        return success();
      })
      .Case([&](BalanceLossOp o) {
        g.add(o.getScores(),
              BalanceLossGradOp::create(
                  b, loc, o.getScores().getType(), dy, o.getScores(),
                  o.getIndices(), o.getAlphaAttr(), o.getSequencesAttr()));
        return success();
      })
      .Case([&](MoeGateOp o) -> LogicalResult {
        // The combine weights' and (from the balance loss) the scores'
        // gradients, back to the router logits; then through the gate weight
        // as a linear layer.
        Value dScores = g.lookup(o.getScores());
        Value dWeights = g.orZeros(o.getWeights());
        Value dLogits = MoeGateGradOp::create(
            b, loc, o.getScores().getType(), dWeights, o.getScores(),
            o.getIndices(), dScores, o.getRouteScaleAttr(),
            o.getScoreFunctionAttr(), o.getNormalizeTopkAttr());
        g.add(o.getInput(), LinearGradOp::create(b, loc, o.getInput().getType(),
                                                 dLogits, o.getWeight()));
        g.add(o.getWeight(),
              LinearWGradOp::create(b, loc, o.getWeight().getType(), dLogits,
                                    o.getInput()));
        return success();
      })
      .Case([&](DispatchOp o) {
        if (Value dRows = g.lookup(o.getRows()))
          g.add(o.getInput(),
                DispatchGradOp::create(b, loc, o.getInput().getType(), dRows,
                                       o.getIndices()));
        return success();
      })
      .Case([&](ExpertFfnOp o) -> LogicalResult {
        // The combine that reads the outputs gets its weights' gradient from
        // the row dots, so the outputs need not be kept (combine_grad).
        auto combine = o->hasOneUse()
                           ? dyn_cast<CombineOp>(*o->getUsers().begin())
                           : CombineOp();
        if (!combine)
          return o.emitOpError("dsflow-autodiff: needs one graph.combine "
                               "reading its result");
        auto rowsType = cast<RankedTensorType>(o.getRows().getType());
        auto dotsType = RankedTensorType::get({rowsType.getShape()[0]},
                                              rowsType.getElementType());
        auto grad = ExpertFfnGradOp::create(
            b, loc, rowsType, dotsType, dy, o.getRows(), o.getCounts(),
            o.getGateWeights(), o.getUpWeights(), o.getDownWeights());
        g.add(o.getRows(), grad.getGradRows());
        g.add(combine.getWeights(),
              CombineWeightsGradOp::create(
                  b, loc, combine.getWeights().getType(), grad.getRowDots(),
                  combine.getWeights(), combine.getIndices()));
        auto wgrad = ExpertFfnWGradOp::create(
            b, loc, o.getGateWeights().getTypes(), o.getUpWeights().getTypes(),
            o.getDownWeights().getTypes(), dy, o.getRows(), o.getCounts(),
            o.getGateWeights(), o.getUpWeights(), o.getDownWeights());
        for (auto [w, d] :
             llvm::zip(llvm::concat<Value>(o.getGateWeights(), o.getUpWeights(),
                                           o.getDownWeights()),
                       wgrad.getResults()))
          g.add(w, d);
        return success();
      })
      .Case([&](CombineOp o) -> LogicalResult {
        // The weights' gradient is added with the expert FFN's (above).
        if (!o.getRows().getDefiningOp<ExpertFfnOp>())
          return o.emitOpError(
              "dsflow-autodiff: rows must come from graph.expert_ffn");
        g.add(o.getRows(),
              CombineGradOp::create(b, loc, o.getRows().getType(), dy,
                                    o.getWeights(), o.getIndices()));
        return success();
      })
      .Case([&](SharedExpertsOp o) {
        g.add(o.getInput(),
              SharedExpertsGradOp::create(b, loc, o.getInput().getType(), dy,
                                          o.getInput(), o.getGateWeight(),
                                          o.getUpWeight(), o.getDownWeight()));
        auto wgrad = SharedExpertsWGradOp::create(
            b, loc, o.getGateWeight().getType(), o.getUpWeight().getType(),
            o.getDownWeight().getType(), dy, o.getInput(), o.getGateWeight(),
            o.getUpWeight(), o.getDownWeight());
        g.add(o.getGateWeight(), wgrad.getGradGateWeight());
        g.add(o.getUpWeight(), wgrad.getGradUpWeight());
        g.add(o.getDownWeight(), wgrad.getGradDownWeight());
        return success();
      })
      .Case([&](MtpProjectOp o) {
        auto grad = MtpProjectGradOp::create(b, loc, dy.getType(), dy.getType(),
                                             dy, o.getEhProj());
        g.add(o.getEmbedded(), grad.getGradEmbedded());
        g.add(o.getHidden(), grad.getGradHidden());
        g.add(o.getEhProj(),
              MtpProjectWGradOp::create(b, loc, o.getEhProj().getType(), dy,
                                        o.getEmbedded(), o.getHidden()));
        return success();
      })
      .Case<ParamOp, InputOp, TokenWindowOp, FillOp>(
          [](Operation *) { return success(); })
      .Default([](Operation *other) {
        return other->emitOpError("dsflow-autodiff: no gradient rule");
      });
}

/// True when some result of `op` has a gradient.
bool hasResultGradient(Operation *op, const Gradients &g) {
  return llvm::any_of(op->getResults(),
                      [&](Value r) { return bool(g.lookup(r)); });
}

struct AutodiffPass : public dsflow::graph::impl::AutodiffBase<AutodiffPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto forward = module.lookupSymbol<func::FuncOp>("forward");
    if (!forward) {
      module.emitError("dsflow-autodiff: no @forward function");
      return signalPassFailure();
    }
    Block &body = forward.getBody().front();
    auto ret = cast<func::ReturnOp>(body.getTerminator());
    if (ret.getNumOperands() == 0) {
      forward.emitError("dsflow-autodiff: @forward returns no loss");
      return signalPassFailure();
    }
    Value loss = ret.getOperand(0);

    // Forward ops only: collect them before the backward ops are appended.
    SmallVector<Operation *> forwardOps;
    for (Operation &op : body.without_terminator())
      forwardOps.push_back(&op);
    OpBuilder b(ret);
    Gradients grads(b);
    grads.add(loss, FillOp::create(b, loss.getLoc(), loss.getType(),
                                   b.getF64FloatAttr(1.0)));
    for (auto [id, op] : llvm::enumerate(forwardOps))
      op->setAttr(kForwardIdAttr, b.getI64IntegerAttr(id));
    // Each contribution to a parameter's gradient is accumulated as soon as
    // it is made (Gradients::add), so weight gradients do not stay live
    // through the rest of the backward.
    for (Operation *op : llvm::reverse(forwardOps)) {
      if (hasResultGradient(op, grads)) {
        Operation *last = ret->getPrevNode();
        if (failed(differentiate(op, b, grads)))
          return signalPassFailure();
        for (Operation *emitted = last->getNextNode(); emitted != ret;
             emitted = emitted->getNextNode())
          emitted->setAttr(kGradOfAttr, op->getAttr(kForwardIdAttr));
      }
    }
    // Mark the backward part: later passes (recompute, schedules) tell the
    // forward and backward ops apart by it.
    Block::iterator backwardStart =
        forwardOps.empty() ? body.begin()
                           : std::next(forwardOps.back()->getIterator());
    for (Operation &op :
         llvm::make_range(backwardStart, body.getTerminator()->getIterator()))
      op.setAttr(kBackwardAttr, b.getUnitAttr());
    forward.setSymName("train_step");
  }
};

} // namespace
