//===- ParamSummary.cpp - Parameter counts read off the graph -------------===//
#include "ParamSummary.h"

#include "Graph/IR/GraphOps.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/Support/Format.h"

#include <map>

using namespace mlir;

namespace dsflow {
namespace {

const char *const kComponentOrder[] = {
    "embedding",      "attention (MLA)", "norms",          "dense FFN",
    "MoE gate",       "shared experts",  "routed experts", "output head",
};

/// The component a checkpoint tensor name belongs to.
std::string componentOf(StringRef name) {
  if (name == "model.embed_tokens.weight")
    return "embedding";
  if (name == "lm_head.weight")
    return "output head";
  if (name.contains(".self_attn."))
    return "attention (MLA)";
  if (name.contains(".mlp.experts."))
    return "routed experts";
  if (name.contains(".mlp.shared_experts."))
    return "shared experts";
  if (name.contains(".mlp.gate."))
    return "MoE gate";
  if (name.contains(".mlp."))
    return "dense FFN";
  return "norms";
}

/// The layer index in "model.layers.N.…", or -1.
int64_t layerOf(StringRef name) {
  if (!name.consume_front("model.layers."))
    return -1;
  int64_t layer;
  if (name.consumeInteger(10, layer))
    return -1;
  return layer;
}

int64_t numElements(Value v) {
  return cast<RankedTensorType>(v.getType()).getNumElements();
}

/// Fraction of a routed expert's parameters each token uses: k / E of its layer.
DenseMap<Operation *, double> routedActivation(ModuleOp module) {
  DenseMap<Operation *, double> fraction;
  module.walk([&](graph::ExpertFfnOp ffn) {
    auto dispatch = ffn.getRows().getDefiningOp<graph::DispatchOp>();
    int64_t k = cast<RankedTensorType>(dispatch.getIndices().getType())
                    .getShape()[1];
    double f = double(k) / double(ffn.getNumExperts());
    for (Value w : llvm::concat<Value>(ffn.getGateWeights(), ffn.getUpWeights(),
                                       ffn.getDownWeights()))
      fraction[w.getDefiningOp()] = f;
  });
  return fraction;
}

std::string withCommas(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0)
      out += ',';
    out += digits[i];
  }
  return out;
}

/// 671.03B, 9.18M, 257.87K: the scale DeepSeek's report uses, to two decimals.
std::string humanCount(double n) {
  const char *unit = "";
  double scaled = n;
  for (auto [divisor, suffix] : {std::pair{1e9, "B"}, {1e6, "M"}, {1e3, "K"}})
    if (n >= divisor) {
      scaled = n / divisor;
      unit = suffix;
      break;
    }
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.2f%s", scaled, unit);
  return buffer;
}

} // namespace

ParamSummary summarizeParameters(ModuleOp module) {
  int64_t numLayers = 0;
  if (auto attr = module->getAttrOfType<IntegerAttr>("graph.num_layers"))
    numLayers = attr.getInt();
  DenseMap<Operation *, double> activation = routedActivation(module);

  ParamSummary summary;
  summary.mtp.component = "MTP modules";
  std::map<std::string, ComponentCount> byComponent;
  int64_t embedding = 0, head = 0;
  module.walk([&](graph::ParamOp param) {
    StringRef name = param.getName();
    int64_t n = numElements(param);
    double active = n * activation.lookup_or(param, 1.0);
    if (name == "model.embed_tokens.weight")
      embedding = n;
    if (name == "lm_head.weight")
      head = n;
    bool isMtp = layerOf(name) >= numLayers;
    ComponentCount &row = isMtp ? summary.mtp : byComponent[componentOf(name)];
    ComponentCount &total = isMtp ? summary.mtp : summary.main;
    row.tensors += 1;
    row.parameters += n;
    row.activated += active;
    if (!isMtp) {
      total.tensors += 1;
      total.parameters += n;
      total.activated += active;
    }
  });
  for (const char *component : kComponentOrder) {
    auto it = byComponent.find(component);
    if (it == byComponent.end())
      continue;
    it->second.component = component;
    summary.components.push_back(it->second);
  }
  summary.main.component = "main model";
  int64_t depth = 0;
  if (auto attr = module->getAttrOfType<IntegerAttr>("graph.mtp_depth"))
    depth = attr.getInt();
  // A tied model stores one matrix for both; each MTP module still stores its
  // own embedding and head.
  summary.mtpSharedCopies = depth * (embedding + (head ? head : embedding));
  return summary;
}

void printParamSummary(const ParamSummary &summary, ModuleOp module,
                       llvm::raw_ostream &os) {
  auto row = [&](StringRef label, int64_t tensors, int64_t params,
                 double activated, bool showBillions) {
    os << llvm::left_justify(label, 44) << llvm::right_justify(
                                               tensors ? std::to_string(tensors)
                                                       : std::string(),
                                               8)
       << llvm::right_justify(withCommas(params), 20)
       << llvm::right_justify(activated >= 0
                                  ? withCommas(int64_t(std::llround(activated)))
                                  : std::string(),
                              20);
    if (showBillions)
      os << "  " << humanCount(params)
         << (activated >= 0 ? " / " + humanCount(activated) + " activated" : "");
    os << "\n";
  };
  std::string rule(92, '-');
  os << "parameters of " << (module.getName() ? *module.getName() : "model")
     << "\n";
  os << llvm::left_justify("component", 44) << llvm::right_justify("tensors", 8)
     << llvm::right_justify("parameters", 20)
     << llvm::right_justify("activated/token", 20) << "\n"
     << rule << "\n";
  for (const ComponentCount &c : summary.components)
    row(c.component, c.tensors, c.parameters, c.activated, false);
  os << rule << "\n";
  row("main model", summary.main.tensors, summary.main.parameters,
      summary.main.activated, true);
  if (summary.mtp.tensors == 0)
    return;
  row("MTP modules (sharing embedding and head)", summary.mtp.tensors,
      summary.mtp.parameters, -1, false);
  row("MTP copies of embedding and head (checkpoint)", 0,
      summary.mtpSharedCopies, -1, false);
  row("with MTP modules, as stored in the checkpoint", 0, summary.withMtp(), -1,
      true);
}

} // namespace dsflow
