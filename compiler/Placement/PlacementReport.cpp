//===- PlacementReport.cpp - Expected tokens per EP rank and node ---------===//
#include "Placement/PlacementReport.h"

#include <algorithm>
#include <cassert>

namespace dsflow::placement {

Balance balanceOf(const std::vector<double> &values) {
  Balance b;
  for (double v : values) {
    b.max = std::max(b.max, v);
    b.mean += v;
  }
  if (!values.empty())
    b.mean /= static_cast<double>(values.size());
  return b;
}

std::vector<double> rankLoads(const PlacementLayout &layout,
                              const LayerPlacement &placement,
                              const std::vector<int64_t> &loads) {
  std::vector<double> out(layout.epRanks, 0.0);
  for (int64_t slot = 0; slot < layout.slots(); ++slot)
    out[slot / layout.slotsPerRank] +=
        static_cast<double>(loads[placement.slotExpert[slot]]) *
        placement.share(slot);
  return out;
}

std::vector<double> naiveRankLoads(const PlacementLayout &layout,
                                   const std::vector<int64_t> &loads) {
  std::vector<double> out(layout.epRanks, 0.0);
  for (int64_t e = 0; e < layout.experts; ++e)
    out[e / layout.expertsPerRank()] += static_cast<double>(loads[e]);
  return out;
}

std::vector<double> nodeLoads(const PlacementLayout &layout,
                              const std::vector<double> &rankLoads) {
  std::vector<double> out(layout.nodes, 0.0);
  for (int64_t r = 0; r < layout.epRanks; ++r)
    out[r / layout.ranksPerNode()] += rankLoads[r];
  return out;
}

/// Adds one layer's before and after ratios.
static void add(OverLayers &over, const Balance &before, const Balance &after) {
  over.worstBefore = std::max(over.worstBefore, before.ratio());
  over.worstAfter = std::max(over.worstAfter, after.ratio());
  over.meanBefore += before.ratio();
  over.meanAfter += after.ratio();
}

static void average(OverLayers &over, size_t layers) {
  if (layers == 0)
    return;
  over.meanBefore /= static_cast<double>(layers);
  over.meanAfter /= static_cast<double>(layers);
}

PlacementReport reportPlacement(const Placement &placement,
                                const std::vector<io::LayerLoads> &loads) {
  assert(placement.layers.size() == loads.size() && "one report per layer");
  const PlacementLayout &layout = placement.layout;
  PlacementReport report;
  for (size_t i = 0; i < loads.size(); ++i) {
    const LayerPlacement &layer = placement.layers[i];
    LayerReport r;
    r.layer = layer.layer;
    std::vector<double> before = naiveRankLoads(layout, loads[i].loads);
    std::vector<double> after = rankLoads(layout, layer, loads[i].loads);
    r.rankBefore = balanceOf(before);
    r.rankAfter = balanceOf(after);
    r.nodeBefore = balanceOf(nodeLoads(layout, before));
    r.nodeAfter = balanceOf(nodeLoads(layout, after));
    for (const auto &slots : layer.replicas)
      r.maxReplicas = std::max<int64_t>(r.maxReplicas, slots.size());
    add(report.rank, r.rankBefore, r.rankAfter);
    add(report.node, r.nodeBefore, r.nodeAfter);
    report.layers.push_back(r);
  }
  average(report.rank, loads.size());
  average(report.node, loads.size());
  return report;
}

} // namespace dsflow::placement
