//===- ExpertSlots.cpp - Where a MoE layer's routed experts live ----------===//
#include "exec/ExpertSlots.h"

#include <cstdlib>
#include <map>

namespace dsflow::exec {

bool ExpertSlots::holds(int rank, int32_t expert) const {
  for (int64_t s = 0; s < slotsPerRank; ++s)
    if (expertOf(rank, s) == expert)
      return true;
  return false;
}

/// Fills `replicas` from `slotExpert`; the first problem, or "".
static std::string indexReplicas(ExpertSlots &slots, int64_t experts) {
  slots.replicas.assign(experts, {});
  for (size_t slot = 0; slot < slots.slotExpert.size(); ++slot) {
    int32_t e = slots.slotExpert[slot];
    if (e < 0 || e >= experts)
      return "slot " + std::to_string(slot) + " holds expert " +
             std::to_string(e) + ", outside [0, " + std::to_string(experts) +
             ")";
    slots.replicas[e].push_back(static_cast<int32_t>(slot));
  }
  for (int64_t e = 0; e < experts; ++e)
    if (slots.replicas[e].empty())
      return "expert " + std::to_string(e) + " has no slot";
  return "";
}

io::Expected<ExpertSlots> expertSlots(const Plan &plan, int64_t layer,
                                      int64_t experts, int ranks) {
  const std::string where = "plan expert placement";
  ExpertSlots slots;
  slots.ranks = ranks;
  if (!plan.has_expert_placement()) {
    if (ranks < 1 || experts % ranks != 0)
      return io::makeError(where, std::to_string(experts) +
                                      " experts do not divide over " +
                                      std::to_string(ranks) + " EP ranks");
    slots.slotsPerRank = experts / ranks;
    for (int64_t e = 0; e < experts; ++e)
      slots.slotExpert.push_back(static_cast<int32_t>(e));
  } else {
    const ExpertPlacement &p = plan.expert_placement();
    if (p.ep_ranks() != ranks || p.slots_per_rank() < 1)
      return io::makeError(where, "is for " + std::to_string(p.ep_ranks()) +
                                      " EP ranks x " +
                                      std::to_string(p.slots_per_rank()) +
                                      " slots; the job has " +
                                      std::to_string(ranks) + " EP ranks");
    slots.slotsPerRank = p.slots_per_rank();
    for (const LayerPlacement &l : p.layers())
      if (l.layer() == layer)
        slots.slotExpert.assign(l.slot_expert().begin(), l.slot_expert().end());
    if (slots.slotExpert.size() != size_t(ranks * slots.slotsPerRank))
      return io::makeError(where, "has no slots for layer " +
                                      std::to_string(layer) +
                                      " (or the wrong "
                                      "number)");
  }
  if (std::string problem = indexReplicas(slots, experts); !problem.empty())
    return io::makeError(where,
                         "layer " + std::to_string(layer) + ": " + problem);
  return slots;
}

std::vector<RoutedExpertTensor> routedExpertTensors(const Plan &plan) {
  std::vector<RoutedExpertTensor> tensors;
  for (const Kernel &k : plan.kernels()) {
    // Outputs: E gate, E up, E down gradients.
    if (k.op() != "expert_ffn_wgrad" || k.outputs_size() % 3 != 0)
      continue;
    int experts = k.outputs_size() / 3;
    for (int i = 0; i < k.outputs_size(); ++i) {
      int32_t grad = k.outputs(i);
      const Buffer &g = plan.buffers(grad);
      std::optional<int64_t> layer = modelLayerOf(g.name());
      if (layer)
        tensors.push_back({grad, *layer, static_cast<int32_t>(i % experts)});
    }
  }
  return tensors;
}

io::Expected<std::vector<ExpertTensorHolders>>
expertTensorHolders(const Plan &plan, int epRanks) {
  int64_t experts = plan.model().moe().num_routed_experts();
  std::map<int64_t, ExpertSlots> layers;
  std::vector<ExpertTensorHolders> out;
  for (const RoutedExpertTensor &t : routedExpertTensors(plan)) {
    auto it = layers.find(t.layer);
    if (it == layers.end()) {
      io::Expected<ExpertSlots> slots =
          expertSlots(plan, t.layer, experts, epRanks);
      if (!slots)
        return slots.error();
      it = layers.emplace(t.layer, std::move(*slots)).first;
    }
    const ExpertSlots &slots = it->second;
    if (t.expert >= int32_t(slots.replicas.size()))
      return io::makeError("plan", "layer " + std::to_string(t.layer) +
                                       " has more experts than the model");
    ExpertTensorHolders h{plan.buffers(t.grad).gradient_of(), t.grad, {}};
    for (int32_t slot : slots.replicas[t.expert]) {
      int rank = int(slot / slots.slotsPerRank);
      if (h.ranks.empty() || h.ranks.back() != rank)
        h.ranks.push_back(rank);
    }
    out.push_back(std::move(h));
  }
  return out;
}

} // namespace dsflow::exec
