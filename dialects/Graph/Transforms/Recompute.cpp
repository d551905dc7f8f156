//===- Recompute.cpp - Recompute activations in the backward --------------===//
//
// Selective recomputation (DeepSeek-V3: all RMSNorms and the MLA
// up-projections; also the SwiGLU outputs and, beyond DeepSeek, the MoE
// dispatch's rows): instead of keeping a forward value alive until the backward
// reads it, the op that produced it runs again just before its first backward
// use.
//
//===----------------------------------------------------------------------===//
#include "Graph/IR/GraphOps.h"
#include "Graph/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/IRMapping.h"

#define DEBUG_TYPE "dsflow-recompute"

namespace dsflow::graph {
#define GEN_PASS_DEF_RECOMPUTE
#include "Graph/Transforms/Passes.h.inc"
} // namespace dsflow::graph

using namespace mlir;
using namespace dsflow::graph;

namespace {

struct Selection {
  bool rmsNorm = false, mlaUpProj = false, swiglu = false, moeDispatch = false;
};

bool isBackward(Operation *op) { return op->hasAttr(kBackwardAttr); }

/// The linear ops of the MLA up-projections, by their weight's checkpoint name.
bool isMlaUpProjection(Operation *op) {
  auto linear = dyn_cast<LinearOp>(op);
  if (!linear)
    return false;
  auto param = linear.getWeight().getDefiningOp<ParamOp>();
  return param && (param.getName().ends_with("self_attn.q_b_proj.weight") ||
                   param.getName().ends_with("self_attn.kv_b_proj.weight"));
}

class Recomputer {
public:
  Recomputer(Selection selection) : selection(selection) {}

  /// Whether the forward op `op` is to be recomputed.
  bool recomputable(Operation *op) {
    if (!op || isBackward(op))
      return false;
    if (auto it = memo.find(op); it != memo.end())
      return it->second;
    bool result = false;
    if (isa<RmsNormOp>(op))
      result = selection.rmsNorm;
    else if (isa<SwigluOp>(op))
      result = selection.swiglu;
    else if (isa<DispatchOp>(op))
      // The routed experts' rows (k copies of every token) are gathered again
      // from the MoE input, which the backward keeps anyway.
      result = selection.moeDispatch;
    else if (isMlaUpProjection(op))
      result = selection.mlaUpProj;
    else if (isa<ReshapeOp, SplitOp>(op))
      // Views follow their producer: a reshaped copy of a dropped value would
      // otherwise keep its bytes alive.
      result = recomputable(op->getOperand(0).getDefiningOp());
    else if (isa<RopeOp>(op))
      // The rotary embedding between an up-projection and the attention core.
      result = selection.mlaUpProj &&
               recomputable(op->getOperand(0).getDefiningOp());
    memo[op] = result;
    return result;
  }

  /// The value to read in place of `value` at `user` (a backward op): a
  /// recomputed copy when `value`'s producer is recomputable.
  Value replacementFor(Value value, Operation *user) {
    Operation *producer = value.getDefiningOp();
    if (!recomputable(producer))
      return value;
    if (Value copy = clones.lookupOrNull(value))
      return copy;
    // Recompute the operands first, then the op, right before `user`.
    IRMapping operands;
    for (Value operand : producer->getOperands())
      operands.map(operand, replacementFor(operand, user));
    OpBuilder b(user);
    Operation *copy = b.clone(*producer, operands);
    copy->setAttr(kBackwardAttr, b.getUnitAttr());
    copy->setAttr("graph.recomputed", b.getUnitAttr());
    for (auto [original, recomputed] :
         llvm::zip(producer->getResults(), copy->getResults()))
      clones.map(original, recomputed);
    return clones.lookup(value);
  }

private:
  Selection selection;
  DenseMap<Operation *, bool> memo;
  IRMapping clones;
};

struct RecomputePass
    : public dsflow::graph::impl::RecomputeBase<RecomputePass> {
  using RecomputeBase::RecomputeBase;

  void runOnOperation() override {
    Selection selection;
    for (const std::string &name : ops) {
      if (name == "all")
        selection = {true, true, true, selection.moeDispatch};
      else if (name == "rmsnorm")
        selection.rmsNorm = true;
      else if (name == "mla_up_proj")
        selection.mlaUpProj = true;
      else if (name == "swiglu")
        selection.swiglu = true;
      else if (name == "moe_dispatch")
        selection.moeDispatch = true;
      else if (name != "none") {
        getOperation().emitError("dsflow-recompute: unknown selection '")
            << name
            << "' (expected rmsnorm, mla_up_proj, swiglu, moe_dispatch, all, "
               "none)";
        return signalPassFailure();
      }
    }
    auto step = getOperation().lookupSymbol<func::FuncOp>("train_step");
    if (!step) {
      getOperation().emitError("dsflow-recompute: no @train_step (run "
                               "dsflow-autodiff first)");
      return signalPassFailure();
    }
    Recomputer recomputer(selection);
    SmallVector<Operation *> backward;
    step.walk([&](Operation *op) {
      if (isBackward(op))
        backward.push_back(op);
    });
    // In program order, so each copy lands before the first backward use.
    for (Operation *user : backward)
      for (OpOperand &use : user->getOpOperands())
        use.set(recomputer.replacementFor(use.get(), user));
  }
};

} // namespace
