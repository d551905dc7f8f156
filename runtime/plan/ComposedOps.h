//===- ComposedOps.h - Ops a GPU runtime composes itself --------*- C++ -*-===//
//
// The plan ops the compiler generates no code for and the CUDA runtime runs
// on the GPU itself, from cuBLASLt GEMMs and the module's support functions
// (runtime/backends/cuda/DeviceGemms, DeviceFfn): the linear layers and the
// SwiGLU FFNs, forward and both gradients. dsflow-plan reports them apart
// from what stays on the CPU.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_PLAN_COMPOSEDOPS_H
#define DSFLOW_RUNTIME_PLAN_COMPOSEDOPS_H

#include "schemas/plan.pb.h"

#include <optional>
#include <set>
#include <string>

namespace dsflow {

inline bool isLinearGemmOp(const std::string &op) {
  return op == "linear" || op == "linear_grad" || op == "linear_wgrad" ||
         op == "mtp_project" || op == "mtp_project_grad" ||
         op == "mtp_project_wgrad";
}

inline bool isFfnOp(const std::string &op) {
  return op == "expert_ffn" || op == "expert_ffn_grad" ||
         op == "expert_ffn_wgrad" || op == "shared_experts" ||
         op == "shared_experts_grad" || op == "shared_experts_wgrad";
}

/// The routed experts' row counts a routed FFN kernel reads (expert_ffn and
/// its gradients: the input after the rows), or -1 for any other kernel. A
/// GPU reads them back before its GEMMs (exec::Device::waitsBeforeLaunch).
inline int32_t routedRowCounts(const Kernel &k) {
  const std::string &op = k.op();
  if (!isFfnOp(op) || op.rfind("shared_experts", 0) == 0)
    return -1;
  return k.inputs(op == "expert_ffn" ? 1 : 2);
}

/// The float type of kernel `k` when the CUDA runtime composes it: FP32
/// operands (the linear layers also all-BF16); none otherwise. Integer
/// operands (the experts' row counts) do not count.
inline std::optional<DType> composedPrecision(const Plan &plan,
                                              const Kernel &k) {
  std::set<int> types;
  for (auto operands : {&k.inputs(), &k.outputs()})
    for (int32_t b : *operands)
      if (plan.buffers(b).dtype() != DTYPE_I32)
        types.insert(plan.buffers(b).dtype());
  if ((isLinearGemmOp(k.op()) || isFfnOp(k.op())) &&
      types == std::set<int>{DTYPE_F32})
    return DTYPE_F32;
  if (isLinearGemmOp(k.op()) && types == std::set<int>{DTYPE_BF16})
    return DTYPE_BF16;
  return std::nullopt;
}

} // namespace dsflow

#endif // DSFLOW_RUNTIME_PLAN_COMPOSEDOPS_H
