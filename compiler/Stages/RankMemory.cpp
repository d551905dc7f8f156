//===- RankMemory.cpp - Memory of each pipeline rank of a plan ------------===//
#include "Stages/RankMemory.h"

#include "plan/KernelStages.h"

#include <cstdlib>
#include <set>
#include <string>

namespace dsflow::stages {
namespace {

double bytesPerElement(DType dtype) {
  switch (dtype) {
  case DTYPE_F64:
    return 8;
  case DTYPE_BF16:
    return 2;
  default:
    return 4;
  }
}

} // namespace

std::vector<RankMemory>
estimateRankMemory(const Plan &plan,
                   const std::vector<std::vector<int>> &stagesOfRank,
                   const std::vector<int> &peakChunks) {
  const ClusterConfig &c = plan.cluster();
  const int64_t experts = plan.model().moe().num_routed_experts();
  double expertShare = 1.0, slots = experts / double(std::max(1, c.ep()));
  if (plan.has_expert_placement())
    slots = plan.expert_placement().slots_per_rank();
  if (experts > 0)
    expertShare = slots / double(experts);
  // Per stage: parameter, gradient and optimizer bytes on one rank.
  const int stages = plan.pipeline().stages_size();
  std::vector<RankMemory> perStage(stages);
  bool bf16Moments = plan.training().bf16_moments();
  for (const Buffer &b : plan.buffers()) {
    if (b.kind() != PARAMETER && b.kind() != GRADIENT)
      continue;
    const Buffer &param =
        b.kind() == GRADIENT ? plan.buffers(b.gradient_of()) : b;
    bool routed = param.name().find(".mlp.experts.") != std::string::npos;
    double share = routed ? expertShare : 1.0;
    RankMemory &m = perStage[stageOfTensor(plan.pipeline(), param.name())];
    double elements = double(b.bytes()) / bytesPerElement(b.dtype()) * share;
    if (b.kind() == GRADIENT) {
      m.gradients += double(b.bytes()) * share;
      continue;
    }
    m.parameters += double(b.bytes()) * share;
    if (b.no_grad())
      continue;
    double state = elements * (bf16Moments ? 4 : 8) +
                   (b.dtype() == DTYPE_F32 ? 0 : elements * 4);
    // ZeRO-1 shards it over the ranks holding the same tensor.
    int holders = routed ? c.dp() : c.ep() * c.dp();
    if (!c.has_zero1() || c.zero1())
      state /= double(std::max(1, holders));
    m.optimizer += state;
  }
  double totalCost = 0;
  for (const PipelineStage &s : plan.pipeline().stages())
    totalCost += s.cost();
  std::vector<RankMemory> ranks(stagesOfRank.size());
  for (size_t r = 0; r < stagesOfRank.size(); ++r) {
    double activationPerChunk = 0;
    std::set<int> held(stagesOfRank[r].begin(), stagesOfRank[r].end());
    for (int s : held) {
      ranks[r].parameters += perStage[s].parameters;
      ranks[r].gradients += perStage[s].gradients;
      ranks[r].optimizer += perStage[s].optimizer;
      activationPerChunk += double(plan.memory().boundary_activation_bytes()) *
                            plan.pipeline().stages(s).cost() /
                            std::max(totalCost, 1e-30);
    }
    activationPerChunk /= double(std::max<size_t>(1, held.size()));
    ranks[r].activations = activationPerChunk * peakChunks[r];
  }
  return ranks;
}

} // namespace dsflow::stages
