//===- ClusterPlacement.cpp - The placement a plan records ----------------===//
#include "Placement/ClusterPlacement.h"

#include "Placement/SyntheticLoads.h"

#include <set>

namespace dsflow::placement {

std::vector<int64_t> moeLayers(const ModelSpec &spec) {
  std::vector<int64_t> layers;
  for (int64_t l = spec.num_dense_layers();
       l < spec.num_layers() + spec.mtp().depth(); ++l)
    layers.push_back(l);
  return layers;
}

PlacementLayout epGroupLayout(const ModelSpec &spec,
                              const ClusterConfig &cluster,
                              int64_t slotsPerRank) {
  PlacementLayout layout;
  layout.experts = spec.moe().num_routed_experts();
  layout.groups = std::max<int64_t>(1, spec.moe().expert_groups());
  layout.epRanks = cluster.ep();
  // An EP group is ep consecutive ranks: whole nodes, or part of one.
  layout.nodes = std::max<int64_t>(1, cluster.ep() / cluster.ranks_per_node());
  layout.slotsPerRank =
      slotsPerRank > 0 ? slotsPerRank : layout.experts / layout.epRanks;
  return layout;
}

io::Expected<std::vector<io::LayerLoads>>
modelLoads(const ModelSpec &spec, int64_t experts,
           const io::ExpertLoads *file) {
  std::vector<int64_t> layers = moeLayers(spec);
  if (!file)
    return uniformLoads(layers, experts, 1 << 20);
  std::set<int64_t> wanted(layers.begin(), layers.end()), given;
  for (const io::LayerLoads &l : file->layers) {
    if (!wanted.count(l.layer) || !given.insert(l.layer).second)
      return io::makeError("expert loads", "layer " + std::to_string(l.layer) +
                                               " is not a MoE layer of " +
                                               spec.name() + " or repeats");
  }
  for (int64_t l : layers)
    if (!given.count(l))
      return io::makeError("expert loads",
                           "no loads for MoE layer " + std::to_string(l));
  return file->layers;
}

} // namespace dsflow::placement
