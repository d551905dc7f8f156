//===- CudaKernels.cpp - Which generator makes each op's CUDA -------------===//
#include "Codegen/CudaKernels.h"
#include "Codegen/CudaGenerator.h"

#include <functional>
#include <map>

namespace dsflow::codegen {
namespace {

using Generator = std::function<std::optional<CudaFunction>(const Operands &)>;
using Launches = std::function<std::vector<CudaFunction>(const Operands &)>;

/// The ops whose kernels take several launches, in order.
const std::map<std::string, Launches> &chains() {
  static const std::map<std::string, Launches> table = {
      {"mla_attention_grad", mlaAttentionGrad},
      {"dispatch", dispatch},
  };
  return table;
}

const std::map<std::string, Generator> &generators() {
  static const std::map<std::string, Generator> table = {
      {"add", add},
      {"scale", scale},
      {"fill", fill},
      {"swiglu", swiglu},
      {"swiglu_grad", swigluGrad},
      {"accumulate_grad", accumulateGrad},
      {"reshape", reshape},
      {"token_window", tokenWindow},
      {"split", [](const Operands &o) { return pieces(o, true); }},
      {"concat", [](const Operands &o) { return pieces(o, false); }},
      {"mla_attention", mlaAttention},
      {"moe_gate", moeGate},
      {"moe_gate_grad", moeGateGrad},
      {"balance_loss", balanceLoss},
      {"balance_loss_grad", balanceLossGrad},
      {"rms_norm", rmsNorm},
      {"rms_norm_grad", rmsNormGrad},
      {"rms_norm_wgrad", rmsNormWGrad},
      {"rope", [](const Operands &o) { return rope(o, false); }},
      {"rope_grad", [](const Operands &o) { return rope(o, true); }},
      {"embedding", embedding},
      {"embedding_wgrad", embeddingWGrad},
      {"cross_entropy", crossEntropy},
      {"cross_entropy_grad", crossEntropyGrad},
      {"dispatch_grad", dispatchGrad},
      {"combine", combine},
      {"combine_grad", combineGrad},
      {"combine_weights_grad", combineWeightsGrad},
  };
  return table;
}

} // namespace

std::vector<CudaFunction> generateCudaFunctions(const Plan &plan,
                                                const Kernel &kernel) {
  auto chain = chains().find(kernel.op());
  if (chain != chains().end())
    return chain->second(Operands(plan, kernel));
  std::optional<CudaFunction> f = generateCudaFunction(plan, kernel);
  return f ? std::vector<CudaFunction>{*f} : std::vector<CudaFunction>{};
}

std::optional<CudaFunction> generateCudaFunction(const Plan &plan,
                                                 const Kernel &kernel) {
  auto it = generators().find(kernel.op());
  if (it == generators().end())
    return std::nullopt;
  return it->second(Operands(plan, kernel));
}

} // namespace dsflow::codegen
