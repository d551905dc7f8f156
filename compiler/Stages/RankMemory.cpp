//===- RankMemory.cpp - Memory of each pipeline rank of a plan ------------===//
#include "Stages/RankMemory.h"

#include "plan/KeptActivations.h"
#include "plan/PlanFile.h"

#include <algorithm>
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

/// A kernel the FP8 pass marked: it reads its activation operands quantized
/// to E4M3 (a W GEMM in 128x1 tiles), so a copy held for it can be that.
bool readsFp8(const Kernel &kernel) {
  return std::any_of(
      kernel.attributes().begin(), kernel.attributes().end(),
      [](const Attribute &a) { return a.name() == "graph.fp8.format"; });
}

/// The activations the weight-gradient part reads that the rest of the
/// backward wrote (what the forward kept is counted as kept).
std::vector<bool> pendingForWeights(const Plan &plan) {
  std::vector<char> part = weightGradientPart(plan);
  std::vector<bool> kept = keptForBackward(plan);
  std::vector<char> writtenOutsideW(plan.buffers_size(), 0);
  std::vector<bool> pending(plan.buffers_size(), false);
  bool inBackward = false;
  for (int k = 0; k < plan.kernels_size(); ++k) {
    const Kernel &kernel = plan.kernels(k);
    inBackward = inBackward || kernel.backward();
    if (part[k]) {
      for (int32_t b : kernel.inputs())
        pending[b] = pending[b] || (writtenOutsideW[b] && !kept[b]);
      continue;
    }
    if (inBackward)
      for (int32_t b : kernel.outputs())
        writtenOutsideW[b] = plan.buffers(b).kind() == ACTIVATION;
  }
  return pending;
}

} // namespace

std::vector<double> keptBytesByStage(const Plan &plan,
                                     const KernelStages &split) {
  std::vector<double> bytes(plan.pipeline().stages_size(), 0.0);
  std::vector<bool> kept = keptForBackward(plan);
  // The stages whose backward (from the first backward kernel on, recomputed
  // forward kernels included) reads each kept buffer, each counted once.
  std::vector<std::set<int>> readers(plan.buffers_size());
  bool inBackward = false;
  for (int k = 0; k < plan.kernels_size(); ++k) {
    int stage = split.stageOfKernel[k];
    inBackward = inBackward || plan.kernels(k).backward();
    if (!inBackward || stage < 0)
      continue;
    for (int32_t b : plan.kernels(k).inputs())
      if (kept[b])
        readers[b].insert(stage);
  }
  for (int32_t b = 0; b < plan.buffers_size(); ++b)
    for (int stage : readers[b])
      bytes[stage] += double(plan.buffers(b).bytes());
  return bytes;
}

std::vector<schedule::ChunkActivations>
chunkActivationsByStage(const Plan &plan, const KernelStages &split) {
  std::vector<double> kept = keptBytesByStage(plan, split);
  std::vector<schedule::ChunkActivations> chunks(kept.size());
  for (size_t s = 0; s < kept.size(); ++s)
    chunks[s].kept = kept[s];
  if (!plan.memory().weight_gradients_deferred())
    return chunks;
  std::vector<char> part = weightGradientPart(plan);
  std::vector<bool> keptBuffers = keptForBackward(plan);
  std::vector<bool> pending = pendingForWeights(plan);
  // Each buffer once per stage whose W part reads it.
  std::set<std::pair<int32_t, int>> counted;
  for (int k = 0; k < plan.kernels_size(); ++k) {
    int stage = split.stageOfKernel[k];
    if (!part[k] || stage < 0)
      continue;
    for (int32_t b : plan.kernels(k).inputs()) {
      if (!counted.insert({b, stage}).second)
        continue;
      const Buffer &buffer = plan.buffers(b);
      double bytes = double(buffer.bytes());
      if (keptBuffers[b])
        chunks[stage].keptForWeights += bytes;
      else if (pending[b])
        chunks[stage].waitingForWeights +=
            readsFp8(plan.kernels(k)) && buffer.dtype() == DTYPE_BF16
                ? double(storageBytes(DTYPE_FP8_E4M3, {buffer.shape().begin(),
                                                       buffer.shape().end()}))
                : bytes;
    }
  }
  return chunks;
}

std::vector<double> workspaceBytesByStage(const Plan &plan,
                                          const KernelStages &split) {
  std::vector<bool> kept = keptForBackward(plan);
  // Per transient activation: its stage and the kernels from its first to its
  // last use.
  struct Span {
    int stage = -1, first = -1, last = -1;
  };
  std::vector<Span> spans(plan.buffers_size());
  for (int k = 0; k < plan.kernels_size(); ++k) {
    const Kernel &kernel = plan.kernels(k);
    auto use = [&](int32_t b) {
      Span &span = spans[b];
      if (span.first < 0) {
        span.first = k;
        span.stage = split.stageOfKernel[k];
      }
      span.last = k;
    };
    std::for_each(kernel.inputs().begin(), kernel.inputs().end(), use);
    std::for_each(kernel.outputs().begin(), kernel.outputs().end(), use);
  }
  // What deferred weight gradients read waits for them (pendingWeightBytes):
  // not part of a running chunk's workspace.
  if (plan.memory().weight_gradients_deferred()) {
    std::vector<bool> pending = pendingForWeights(plan);
    for (int32_t b = 0; b < plan.buffers_size(); ++b)
      if (pending[b])
        spans[b].stage = -1;
  }
  // Sweep the kernels with the bytes each span adds at its first kernel and
  // removes after its last.
  std::vector<std::vector<double>> delta(
      plan.pipeline().stages_size(),
      std::vector<double>(plan.kernels_size() + 1, 0.0));
  for (int32_t b = 0; b < plan.buffers_size(); ++b) {
    const Span &span = spans[b];
    if (kept[b] || plan.buffers(b).kind() != ACTIVATION || span.stage < 0)
      continue;
    delta[span.stage][span.first] += double(plan.buffers(b).bytes());
    delta[span.stage][span.last + 1] -= double(plan.buffers(b).bytes());
  }
  std::vector<double> peak(delta.size(), 0.0);
  for (size_t s = 0; s < delta.size(); ++s) {
    double live = 0;
    for (double d : delta[s])
      peak[s] = std::max(peak[s], live += d);
  }
  return peak;
}

std::vector<RankMemory>
estimateRankMemory(const Plan &plan,
                   const std::vector<std::vector<int>> &stagesOfRank,
                   const std::vector<double> &activationBytes) {
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
  std::vector<RankMemory> ranks(stagesOfRank.size());
  for (size_t r = 0; r < stagesOfRank.size(); ++r) {
    std::set<int> held(stagesOfRank[r].begin(), stagesOfRank[r].end());
    for (int s : held) {
      ranks[r].parameters += perStage[s].parameters;
      ranks[r].gradients += perStage[s].gradients;
      ranks[r].optimizer += perStage[s].optimizer;
    }
    ranks[r].activations = activationBytes[r];
  }
  return ranks;
}

} // namespace dsflow::stages
