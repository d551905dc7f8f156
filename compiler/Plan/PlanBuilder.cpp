//===- PlanBuilder.cpp - Lower @train_step to a plan ----------------------===//
//
// Every op of @train_step becomes one kernel named after it
// ("graph.linear_wgrad"
// -> "linear_wgrad") in program order; its attributes are copied. graph.param
// and graph.input become buffers of their regions, not kernels. Each
// graph.accumulate_grad adds its value into the parameter's GRADIENT buffer.
// Activations are placed in one arena by liveness (MemoryPlanner).
//
//===----------------------------------------------------------------------===//
#include "Plan/PlanBuilder.h"
#include "Plan/MemoryPlanner.h"
#include "Plan/SavedBuffers.h"
#include "plan/KernelStages.h"
#include "plan/PlanFile.h"

#include "Graph/IR/GraphOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

using namespace mlir;

namespace dsflow {
namespace {

constexpr int64_t kAlignment = 64;

int64_t alignUp(int64_t n) {
  return (n + kAlignment - 1) / kAlignment * kAlignment;
}

std::optional<DType> dtypeOf(Type element) {
  if (element.isF32())
    return DTYPE_F32;
  if (element.isF64())
    return DTYPE_F64;
  if (element.isBF16())
    return DTYPE_BF16;
  if (element.isInteger(32))
    return DTYPE_I32;
  if (isa<Float8E4M3FNType>(element))
    return DTYPE_FP8_E4M3;
  return std::nullopt;
}

class Lowering {
public:
  Lowering(Plan &plan, bool deferWeightGradients)
      : plan(plan), deferWeightGradients(deferWeightGradients) {}

  LogicalResult run(func::FuncOp step);

private:
  /// A new buffer for a value of `type`; regions are laid out later.
  FailureOr<int32_t> addBuffer(Location loc, const std::string &name,
                               RankedTensorType type, BufferKind kind);
  LogicalResult lowerOp(Operation *op);
  /// The GRADIENT buffer of the parameter `acc` accumulates into.
  FailureOr<int32_t> gradientBuffer(graph::AccumulateGradOp acc);
  void copyAttributes(Operation *op, Kernel &kernel);
  void layOutRegions();

  Plan &plan;
  bool deferWeightGradients;
  DenseMap<Value, int32_t> bufferOf;
  /// The saved buffers of the latest op with each forward key (SavedBuffers.h).
  DenseMap<int64_t, SmallVector<int32_t>> savedByKey;
  /// The gradient buffer of each parameter buffer.
  DenseMap<int32_t, int32_t> gradientOf;
  /// Per buffer: first and last kernel touching it.
  std::vector<std::pair<int64_t, int64_t>> lifetimes;
};

FailureOr<int32_t> Lowering::addBuffer(Location loc, const std::string &name,
                                       RankedTensorType type, BufferKind kind) {
  std::optional<DType> dtype = dtypeOf(type.getElementType());
  if (!dtype)
    return emitError(loc) << "plan: unsupported element type "
                          << type.getElementType();
  Buffer &buffer = *plan.add_buffers();
  buffer.set_name(name);
  buffer.set_dtype(*dtype);
  buffer.set_kind(kind);
  for (int64_t d : type.getShape())
    buffer.add_shape(d);
  buffer.set_bytes(
      storageBytes(*dtype, std::vector<int64_t>(type.getShape().begin(),
                                                type.getShape().end())));
  lifetimes.emplace_back(-1, -1);
  return plan.buffers_size() - 1;
}

/// A weight-gradient op each of whose results only feeds an accumulate_grad:
/// its CPU kernel adds into its outputs, so it can add into the gradients.
bool accumulatesInPlace(Operation *op) {
  if (!op || !op->hasTrait<graph::OpTrait::WeightGradient>())
    return false;
  return llvm::all_of(op->getResults(), [](Value result) {
    return result.hasOneUse() &&
           isa<graph::AccumulateGradOp>(*result.getUsers().begin());
  });
}

FailureOr<int32_t> Lowering::gradientBuffer(graph::AccumulateGradOp acc) {
  int32_t param = bufferOf.lookup(acc.getParam());
  auto [it, inserted] = gradientOf.try_emplace(param, -1);
  if (inserted) {
    FailureOr<int32_t> g =
        addBuffer(acc.getLoc(), plan.buffers(param).name(),
                  cast<RankedTensorType>(acc.getGrad().getType()), GRADIENT);
    if (failed(g))
      return failure();
    plan.mutable_buffers(*g)->set_gradient_of(param);
    it->second = *g;
  }
  return it->second;
}

void Lowering::copyAttributes(Operation *op, Kernel &kernel) {
  // Dictionaries (graph.fp8) are flattened: "graph.fp8.activations", ...
  SmallVector<std::pair<std::string, mlir::Attribute>> attributes;
  for (NamedAttribute named : op->getAttrs()) {
    if (auto dict = dyn_cast<DictionaryAttr>(named.getValue()))
      for (NamedAttribute field : dict)
        attributes.push_back(
            {named.getName().str() + "." + field.getName().str(),
             field.getValue()});
    else
      attributes.push_back({named.getName().str(), named.getValue()});
  }
  for (auto &[name, value] : attributes) {
    dsflow::Attribute out;
    out.set_name(name);
    if (auto f = dyn_cast<FloatAttr>(value))
      out.set_f64(f.getValueAsDouble());
    else if (auto b = dyn_cast<BoolAttr>(value))
      out.set_boolean(b.getValue());
    else if (auto i = dyn_cast<IntegerAttr>(value))
      out.set_i64(i.getInt());
    else if (auto s = dyn_cast<StringAttr>(value))
      out.set_str(s.str());
    else
      continue; // Segment sizes and the like: derivable from the operands.
    *kernel.add_attributes() = out;
  }
}

LogicalResult Lowering::lowerOp(Operation *op) {
  Location loc = op->getLoc();
  if (auto param = dyn_cast<graph::ParamOp>(op)) {
    FailureOr<int32_t> b =
        addBuffer(loc, param.getName().str(), param.getType(), PARAMETER);
    if (failed(b))
      return failure();
    plan.mutable_buffers(*b)->set_no_grad(param.getNoGrad());
    bufferOf[param] = *b;
    return success();
  }
  if (auto input = dyn_cast<graph::InputOp>(op)) {
    FailureOr<int32_t> b =
        addBuffer(loc, input.getName().str(), input.getType(), INPUT);
    if (failed(b))
      return failure();
    bufferOf[input] = *b;
    return success();
  }

  int32_t index = plan.kernels_size();
  Kernel kernel;
  kernel.set_op(op->getName().stripDialect().str());
  kernel.set_fusion_group(index);
  kernel.set_weight_gradient(op->hasTrait<graph::OpTrait::WeightGradient>());
  kernel.set_backward(op->hasAttr("graph.backward"));
  kernel.set_recomputed(op->hasAttr("graph.recomputed"));
  auto use = [&](int32_t buffer) {
    auto &[first, last] = lifetimes[buffer];
    if (first < 0)
      first = index;
    last = index;
  };

  if (auto acc = dyn_cast<graph::AccumulateGradOp>(op)) {
    // Already written in place by its weight-gradient kernel.
    if (accumulatesInPlace(acc.getGrad().getDefiningOp()))
      return success();
    FailureOr<int32_t> gradient = gradientBuffer(acc);
    if (failed(gradient))
      return failure();
    kernel.add_inputs(bufferOf.lookup(acc.getGrad()));
    kernel.add_outputs(*gradient);
    kernel.set_accumulates(true);
  } else {
    for (Value operand : op->getOperands())
      kernel.add_inputs(bufferOf.lookup(operand));
    if (std::optional<int64_t> key = savedBuffersKey(op)) {
      auto saved = savedByKey.find(*key);
      if (saved == savedByKey.end())
        return op->emitOpError("plan: no forward op before it saved the "
                               "buffers it reads");
      for (int32_t b : saved->second)
        kernel.add_inputs(b);
    }
  }
  if (accumulatesInPlace(op)) {
    // A weight-gradient kernel adds (+=) into its outputs: let it add straight
    // into the parameters' gradient buffers instead of materializing dW.
    for (Value result : op->getResults()) {
      FailureOr<int32_t> gradient = gradientBuffer(
          cast<graph::AccumulateGradOp>(*result.getUsers().begin()));
      if (failed(gradient))
        return failure();
      kernel.add_outputs(*gradient);
    }
    kernel.set_accumulates(true);
  } else if (!isa<graph::AccumulateGradOp>(op)) {
    for (auto [i, result] : llvm::enumerate(op->getResults())) {
      std::string output = std::to_string(i);
      FailureOr<int32_t> b = addBuffer(
          loc, kernel.op() + "." + std::to_string(index) + "." + output,
          storageType(op, output, cast<RankedTensorType>(result.getType())),
          ACTIVATION);
      if (failed(b))
        return failure();
      bufferOf[result] = *b;
      kernel.add_outputs(*b);
    }
    SmallVector<int32_t> saved;
    for (const SavedBuffer &s : savedBuffersOf(op)) {
      FailureOr<int32_t> b = addBuffer(
          loc, kernel.op() + "." + std::to_string(index) + "." + s.name,
          storageType(op, s.name, s.type), ACTIVATION);
      if (failed(b))
        return failure();
      saved.push_back(*b);
      kernel.add_outputs(*b);
    }
    // The latest producer wins: a recomputed copy replaces its original.
    if (!saved.empty())
      if (std::optional<int64_t> key = forwardKey(op))
        savedByKey[*key] = saved;
  }
  copyAttributes(op, kernel);
  for (int32_t b : kernel.inputs())
    use(b);
  for (int32_t b : kernel.outputs())
    use(b);
  *plan.add_kernels() = std::move(kernel);
  return success();
}

/// Parameters, gradients and inputs are packed one after the other in their
/// regions; activations share the arena by liveness.
void Lowering::layOutRegions() {
  std::vector<Lifetime> arena;
  std::vector<int32_t> arenaBuffers;
  int64_t regionEnd[5] = {0, 0, 0, 0, 0};
  for (int32_t i = 0; i < plan.buffers_size(); ++i) {
    Buffer &b = *plan.mutable_buffers(i);
    if (b.kind() == ACTIVATION) {
      auto [first, last] = lifetimes[i];
      arena.push_back({b.bytes(), first, last});
      arenaBuffers.push_back(i);
      continue;
    }
    b.set_offset(regionEnd[b.kind()]);
    regionEnd[b.kind()] = alignUp(b.offset() + b.bytes());
  }
  int64_t arenaBytes = planArena(arena, kAlignment);
  int64_t boundary = 0;
  for (int32_t k = 0; k < plan.kernels_size(); ++k)
    if (plan.kernels(k).backward()) {
      for (const Lifetime &l : arena)
        if (l.first < k && k <= l.last)
          boundary += l.bytes;
      break;
    }
  for (auto [lifetime, buffer] : llvm::zip(arena, arenaBuffers))
    plan.mutable_buffers(buffer)->set_offset(lifetime.offset);
  MemoryPlan &memory = *plan.mutable_memory();
  memory.set_parameter_bytes(regionEnd[PARAMETER]);
  memory.set_gradient_bytes(regionEnd[GRADIENT]);
  memory.set_input_bytes(regionEnd[INPUT]);
  memory.set_activation_bytes(arenaBytes);
  memory.set_boundary_activation_bytes(boundary);
}

/// Memory-bound kernels: worth fusing with the kernel that produces their
/// input.
bool isMemoryBound(const std::string &op) {
  static const char *const ops[] = {
      "add",           "scale",           "fill",
      "reshape",       "swiglu",          "swiglu_grad",
      "rope",          "rope_grad",       "rms_norm",
      "rms_norm_grad", "accumulate_grad", "token_window",
      "split",         "concat"};
  return llvm::is_contained(ops, op);
}

/// A memory-bound kernel that reads an output of the kernel just before it
/// joins that kernel's fusion group (e.g. residual add + RMSNorm, or
/// swiglu after its up-projection). Groups are advice to backends that fuse
/// (CUDA codegen); the CPU backend runs kernels one by one.
void assignFusionGroups(Plan &plan) {
  for (int32_t k = 1; k < plan.kernels_size(); ++k) {
    Kernel &kernel = *plan.mutable_kernels(k);
    const Kernel &previous = plan.kernels(k - 1);
    bool consumesPrevious = llvm::any_of(kernel.inputs(), [&](int32_t b) {
      return llvm::is_contained(previous.outputs(), b);
    });
    if (isMemoryBound(kernel.op()) && consumesPrevious)
      kernel.set_fusion_group(previous.fusion_group());
  }
}

LogicalResult Lowering::run(func::FuncOp step) {
  Block &body = step.getBody().front();
  for (Operation &op : body.without_terminator())
    if (failed(lowerOp(&op)))
      return failure();
  // The losses stay live to the end of the step.
  int64_t end = plan.kernels_size() - 1;
  for (Value loss : body.getTerminator()->getOperands()) {
    int32_t b = bufferOf.lookup(loss);
    plan.add_losses(b);
    lifetimes[b].second = end;
  }
  // So do the buffers the runtime reads after the step: each dispatch's
  // per-expert counts (the router-bias update, train/ExpertBalance) and each
  // cross-entropy's logits (--dump-step). Without this the arena reuses them
  // during the backward and the runtime reads other tensors' bytes.
  for (const Kernel &kernel : plan.kernels()) {
    if (kernel.op() == "dispatch" && !kernel.recomputed() &&
        kernel.outputs_size() >= 2)
      lifetimes[kernel.outputs(1)].second = end;
    if (kernel.op() == "cross_entropy" && kernel.inputs_size() >= 1)
      lifetimes[kernel.inputs(0)].second = end;
  }
  Program &program = *plan.add_programs();
  program.set_role("train");
  program.add_ranks(0);
  for (int32_t k = 0; k < plan.kernels_size(); ++k)
    program.add_kernels(k);
  // Evaluation runs the forward part only: every kernel up to the last one
  // that writes a loss (autodiff appends the backward after all of them).
  int32_t lastForward = 0;
  for (int32_t k = 0; k < plan.kernels_size(); ++k)
    for (int32_t out : plan.kernels(k).outputs())
      if (llvm::is_contained(plan.losses(), out))
        lastForward = std::max(lastForward, k);
  Program &eval = *plan.add_programs();
  eval.set_role("eval");
  eval.add_ranks(0);
  for (int32_t k = 0; k <= lastForward; ++k)
    eval.add_kernels(k);
  if (deferWeightGradients) {
    // The weight-gradient part may run after the rest of the backward: what
    // it reads must outlive every other kernel.
    std::vector<char> part = stages::weightGradientPart(plan);
    for (int32_t k = 0; k < plan.kernels_size(); ++k)
      if (part[k])
        for (int32_t b : plan.kernels(k).inputs())
          if (plan.buffers(b).kind() == ACTIVATION)
            lifetimes[b].second = end;
    plan.mutable_memory()->set_weight_gradients_deferred(true);
  }
  assignFusionGroups(plan);
  layOutRegions();
  return success();
}

} // namespace

std::optional<Plan> buildPlan(ModuleOp module, const ModelSpec &spec,
                              const TrainingConfig &training,
                              bool deferWeightGradients) {
  auto step = module.lookupSymbol<func::FuncOp>("train_step");
  if (!step) {
    module.emitError("plan: no @train_step (run dsflow-autodiff first)");
    return std::nullopt;
  }
  Plan plan;
  plan.set_format(kPlanFormatId);
  *plan.mutable_model() = spec;
  *plan.mutable_training() = training;
  if (failed(Lowering(plan, deferWeightGradients).run(step)))
    return std::nullopt;
  return plan;
}

} // namespace dsflow
