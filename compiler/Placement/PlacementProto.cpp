//===- PlacementProto.cpp - Placements in the plan ------------------------===//
#include "Placement/PlacementProto.h"

#include <set>

namespace dsflow::placement {

dsflow::ExpertPlacement toProto(const Placement &placement) {
  dsflow::ExpertPlacement proto;
  proto.set_ep_ranks(static_cast<int32_t>(placement.layout.epRanks));
  proto.set_slots_per_rank(static_cast<int32_t>(placement.layout.slotsPerRank));
  proto.set_nodes(static_cast<int32_t>(placement.layout.nodes));
  for (const LayerPlacement &layer : placement.layers) {
    dsflow::LayerPlacement *out = proto.add_layers();
    out->set_layer(static_cast<int32_t>(layer.layer));
    out->mutable_slot_expert()->Add(layer.slotExpert.begin(),
                                    layer.slotExpert.end());
  }
  return proto;
}

static io::IoError fail(const std::string &what) {
  return io::IoError{"expert_placement: " + what};
}

io::Expected<Placement> fromProto(const dsflow::ExpertPlacement &proto,
                                  int64_t experts, int64_t groups) {
  Placement out;
  out.layout = {experts, groups, proto.nodes(), proto.ep_ranks(),
                proto.slots_per_rank()};
  if (io::Status error = validateLayout(out.layout))
    return fail(error->message);
  std::set<int64_t> seen;
  for (const dsflow::LayerPlacement &layer : proto.layers()) {
    std::string name = "layer " + std::to_string(layer.layer());
    if (layer.layer() < 0 || !seen.insert(layer.layer()).second)
      return fail(name + " is negative or appears twice");
    if (layer.slot_expert_size() != out.layout.slots())
      return fail(name + " has " + std::to_string(layer.slot_expert_size()) +
                  " slots, expected " + std::to_string(out.layout.slots()));
    LayerPlacement placement;
    placement.layer = layer.layer();
    placement.slotExpert.assign(layer.slot_expert().begin(),
                                layer.slot_expert().end());
    if (!indexReplicas(placement, experts))
      return fail(name + ": a slot holds an expert outside [0, " +
                  std::to_string(experts) + ") or an expert has no slot");
    out.layers.push_back(std::move(placement));
  }
  return out;
}

} // namespace dsflow::placement
