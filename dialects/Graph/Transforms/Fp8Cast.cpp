//===- Fp8Cast.cpp - Mark the FP8 GEMMs (DeepSeek-V3's recipe) ------------===//
//
// Marks, rather than rewrites: the graph keeps its FP32/BF16 types and each
// FP8 GEMM carries graph.fp8 = {format, activations, weights, scales}, verified
// by the dialect. Backends quantize the marked operands (the CPU reference
// emulates it exactly with runtime/backends/cpu/Fp8.h).
//
//===----------------------------------------------------------------------===//
#include "Graph/IR/GraphOps.h"
#include "Graph/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/TypeSwitch.h"

#define DEBUG_TYPE "dsflow-fp8-cast"

namespace dsflow::graph {
#define GEN_PASS_DEF_FP8CAST
#include "Graph/Transforms/Passes.h.inc"
} // namespace dsflow::graph

using namespace mlir;
using namespace dsflow::graph;

namespace {

/// Linear layers kept in higher precision, by their weight's checkpoint name.
bool keptHighPrecision(Value weight) {
  auto param = weight.getDefiningOp<ParamOp>();
  if (!param)
    return false;
  StringRef name = param.getName();
  return name == "lm_head.weight" || name == "model.embed_tokens.weight" ||
         name.ends_with("mlp.gate.weight");
}

struct Fp8CastPass : public dsflow::graph::impl::Fp8CastBase<Fp8CastPass> {
  using Fp8CastBase::Fp8CastBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    func::FuncOp function = module.lookupSymbol<func::FuncOp>("train_step");
    if (!function)
      function = module.lookupSymbol<func::FuncOp>("forward");
    if (!function) {
      module.emitError("dsflow-fp8-cast: no @train_step or @forward");
      return signalPassFailure();
    }
    Builder b(module.getContext());
    // Forward ops by number, to find the layer a weight gradient belongs to.
    DenseMap<int64_t, Operation *> forwardOps;
    function.walk([&](Operation *op) {
      if (auto id = op->getAttrOfType<IntegerAttr>(kForwardIdAttr))
        forwardOps.try_emplace(id.getInt(), op);
    });
    auto mark = [&](Operation *op, bool weightGradient, bool hasWeights) {
      SmallVector<NamedAttribute> fields = {
          b.getNamedAttr("format", b.getStringAttr("e4m3")),
          b.getNamedAttr("activations",
                         b.getStringAttr(weightGradient ? "128x1" : "1x128")),
          b.getNamedAttr("scales", b.getStringAttr(ue8m0 ? "ue8m0" : "fp32"))};
      if (hasWeights)
        fields.push_back(b.getNamedAttr("weights", b.getStringAttr("128x128")));
      op->setAttr("graph.fp8", b.getDictionaryAttr(fields));
    };
    function.walk([&](Operation *op) {
      llvm::TypeSwitch<Operation *>(op)
          .Case([&](LinearOp o) {
            if (!keptHighPrecision(o.getWeight()))
              mark(o, false, true);
          })
          .Case([&](LinearGradOp o) {
            if (!keptHighPrecision(o.getWeight()))
              mark(o, false, true);
          })
          .Case([&](LinearWGradOp o) {
            // The layer is the forward linear this weight gradient is for; the
            // gate's weight gradient belongs to a moe_gate, kept in FP32.
            auto of = o->getAttrOfType<IntegerAttr>(kGradOfAttr);
            auto linear = of ? dyn_cast_or_null<LinearOp>(
                                   forwardOps.lookup(of.getInt()))
                             : LinearOp();
            if (linear && !keptHighPrecision(linear.getWeight()))
              mark(o, true, true);
          })
          .Case<MtpProjectOp, MtpProjectGradOp, SharedExpertsOp,
                SharedExpertsGradOp, ExpertFfnOp, ExpertFfnGradOp>(
              [&](Operation *o) { mark(o, false, true); })
          .Case<MtpProjectWGradOp, SharedExpertsWGradOp, ExpertFfnWGradOp>(
              [&](Operation *o) { mark(o, true, true); })
          .Case([&](DispatchOp o) { mark(o, false, false); })
          .Case([&](CombineOp o) {
            o->setAttr("graph.precision", b.getStringAttr("bf16"));
          });
    });
  }
};

} // namespace
