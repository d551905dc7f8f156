//===- PlacementJson.cpp - A placement as JSON ----------------------------===//
#include "Placement/PlacementJson.h"

#include <nlohmann/json.hpp>

using nlohmann::json;

namespace dsflow::placement {

std::string encodePlacementJson(const Placement &placement,
                                const std::vector<io::LayerLoads> &loads,
                                const PlacementReport &report,
                                const std::string &model) {
  const PlacementLayout &l = placement.layout;
  auto number = [](int64_t v) { return std::to_string(v); };
  std::string text =
      "{\"format\": " + json(kPlacementFormat).dump() + ", \"model\": " +
      json(model).dump(-1, ' ', false, json::error_handler_t::replace) +
      ",\n \"experts\": " + number(l.experts) +
      ", \"groups\": " + number(l.groups) + ", \"nodes\": " + number(l.nodes) +
      ", \"ep_ranks\": " + number(l.epRanks) +
      ", \"slots_per_rank\": " + number(l.slotsPerRank) +
      ", \"algorithm\": " + json(algorithmName(placement.algorithm)).dump() +
      ",\n \"layers\": [";
  for (size_t i = 0; i < placement.layers.size(); ++i) {
    const LayerPlacement &layer = placement.layers[i];
    std::vector<double> share(layer.slotExpert.size());
    for (size_t s = 0; s < share.size(); ++s)
      share[s] = layer.share(static_cast<int64_t>(s));
    json ratios = {{"before", report.layers[i].rankBefore.ratio()},
                   {"after", report.layers[i].rankAfter.ratio()}};
    text += i ? ",\n  " : "\n  ";
    text += "{\"layer\": " + number(layer.layer) +
            ", \"loads\": " + json(loads[i].loads).dump() +
            ", \"slot_expert\": " + json(layer.slotExpert).dump() +
            ", \"replicas\": " + json(layer.replicas).dump() +
            ", \"slot_share\": " + json(share).dump() +
            ", \"rank_max_over_mean\": " + ratios.dump() + "}";
  }
  text += "\n ]}\n";
  return text;
}

} // namespace dsflow::placement
