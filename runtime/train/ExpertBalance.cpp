//===- ExpertBalance.cpp - Auxiliary-loss-free load balancing -------------===//
#include "train/ExpertBalance.h"
#include "plan/PlanFile.h"

#include <algorithm>

namespace dsflow::train {

ExpertBalance::ExpertBalance(const Plan &plan) {
  for (const Kernel &dispatch : plan.kernels()) {
    // A recomputed dispatch (dsflow-recompute) repeats its layer's counts.
    if (dispatch.op() != "dispatch" || dispatch.recomputed() ||
        dispatch.inputs_size() < 2 || dispatch.outputs_size() < 2)
      continue;
    int32_t indices = dispatch.inputs(1);
    for (const Kernel &gate : plan.kernels())
      if (gate.op() == "moe_gate" && gate.outputs_size() >= 2 &&
          gate.outputs(1) == indices && gate.inputs_size() >= 3) {
        int32_t counts = dispatch.outputs(1);
        layers.push_back(
            {counts, gate.inputs(2),
             std::vector<int64_t>(numElements(plan.buffers(counts)), 0),
             numElements(plan.buffers(indices))});
        break;
      }
  }
}

io::Status ExpertBalance::accumulate(exec::Memory &memory) {
  for (Layer &layer : layers) {
    const auto *counts =
        reinterpret_cast<const int32_t *>(memory.data(layer.counts));
    int64_t sum = 0;
    for (size_t e = 0; e < layer.load.size(); ++e) {
      layer.load[e] += counts[e];
      sum += counts[e];
    }
    // All zero: the layer runs on another pipeline stage's rank.
    if (sum == 0)
      continue;
    if (sum != layer.rows)
      return io::makeError(
          memory.plan().buffers(layer.bias).name(),
          "expert counts add up to " + std::to_string(sum) +
              ", not tokens * k = " + std::to_string(layer.rows) +
              " (internal error)");
  }
  return std::nullopt;
}

io::Status ExpertBalance::sumOver(dist::Communicator &ranks) {
  if (ranks.size() == 1)
    return std::nullopt;
  std::vector<int64_t> all;
  for (const Layer &layer : layers)
    all.insert(all.end(), layer.load.begin(), layer.load.end());
  if (io::Status e = ranks.allReduceSum(all.data(), int64_t(all.size())))
    return e;
  auto next = all.begin();
  for (Layer &layer : layers) {
    std::copy(next, next + layer.load.size(), layer.load.begin());
    next += layer.load.size();
  }
  return std::nullopt;
}

void ExpertBalance::updateBiases(exec::Memory &memory, double gamma) {
  last.clear();
  lastImbalance = 1.0;
  for (Layer &layer : layers) {
    int64_t total = 0, most = 0;
    for (int64_t l : layer.load) {
      total += l;
      most = std::max(most, l);
    }
    double mean = double(total) / double(layer.load.size());
    if (mean > 0)
      lastImbalance = std::max(lastImbalance, double(most) / mean);
    // Null: another pipeline stage's layer, which its ranks update.
    if (auto *bias = reinterpret_cast<float *>(memory.data(layer.bias)))
      for (size_t e = 0; e < layer.load.size(); ++e) {
        double diff = mean - double(layer.load[e]);
        bias[e] += static_cast<float>(gamma * ((diff > 0) - (diff < 0)));
      }
    last.push_back(layer.load);
    std::fill(layer.load.begin(), layer.load.end(), 0);
  }
}

} // namespace dsflow::train
