//===- KeptActivations.cpp - What the forward keeps for the backward ------===//
#include "plan/KeptActivations.h"

namespace dsflow {

std::vector<bool> keptForBackward(const Plan &plan) {
  std::vector<bool> writtenInForward(plan.buffers_size(), false);
  std::vector<bool> kept(plan.buffers_size(), false);
  bool inBackward = false;
  for (const Kernel &kernel : plan.kernels()) {
    inBackward = inBackward || kernel.backward();
    if (!inBackward) {
      for (int32_t b : kernel.outputs())
        writtenInForward[b] = plan.buffers(b).kind() == ACTIVATION;
      continue;
    }
    for (int32_t b : kernel.inputs())
      kept[b] = kept[b] || writtenInForward[b];
  }
  return kept;
}

} // namespace dsflow
