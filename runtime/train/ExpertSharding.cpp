//===- ExpertSharding.cpp - Which ranks own each routed expert ------------===//
#include "train/ExpertSharding.h"

#include "exec/ExpertSlots.h"

namespace dsflow::train {

io::Expected<ExpertSharding> ExpertSharding::create(const Plan &plan,
                                                    int worldRank) {
  ExpertSharding s;
  s.rank = worldRank;
  s.ep = plan.has_cluster() ? std::max(1, plan.cluster().ep()) : 1;
  if (s.ep == 1)
    return s;
  int64_t experts = plan.model().moe().num_routed_experts();
  std::map<int64_t, exec::ExpertSlots> layers;
  for (const exec::RoutedExpertTensor &t : exec::routedExpertTensors(plan)) {
    if (!layers.count(t.layer)) {
      io::Expected<exec::ExpertSlots> slots =
          exec::expertSlots(plan, t.layer, experts, s.ep);
      if (!slots)
        return slots.error();
      layers.emplace(t.layer, std::move(*slots));
    }
    const exec::ExpertSlots &slots = layers.at(t.layer);
    if (t.expert >= int32_t(slots.replicas.size()))
      return io::makeError("plan", "layer " + std::to_string(t.layer) +
                                       " has more experts than the model");
    const std::vector<int32_t> &replicas = slots.replicas[t.expert];
    if (replicas.size() == 1)
      s.holder[t.grad] = int(replicas[0] / slots.slotsPerRank);
  }
  return s;
}

bool ExpertSharding::local(int32_t grad) const {
  auto it = holder.find(grad);
  return it != holder.end() && it->second == epRank();
}

io::Status ExpertSharding::gatherToRankZero(exec::Memory &memory,
                                            dist::Communicator &world) const {
  const Plan &plan = memory.plan();
  for (const auto &[grad, epHolder] : holder) {
    if (epHolder == 0)
      continue; // World rank 0 holds it.
    const Buffer &param = plan.buffers(plan.buffers(grad).gradient_of());
    // EP group 0's holder is world rank epHolder.
    if (io::Status e =
            world.broadcast(memory.data(plan.buffers(grad).gradient_of()),
                            param.bytes(), epHolder))
      return e;
  }
  return std::nullopt;
}

} // namespace dsflow::train
