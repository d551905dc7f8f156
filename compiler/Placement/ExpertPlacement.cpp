//===- ExpertPlacement.cpp - EPLB-style replication and packing -----------===//
#include "Placement/ExpertPlacement.h"

#include <algorithm>
#include <cassert>
#include <numeric>
#include <queue>

namespace dsflow::placement {

// Keeps slot ids in int32 (the plan's type) and the work per layer small.
static constexpr int64_t kMaxSlots = int64_t(1) << 22;

static io::IoError fail(std::string message) {
  return io::IoError{std::move(message)};
}

static std::string str(int64_t value) { return std::to_string(value); }

const char *algorithmName(Algorithm algorithm) {
  switch (algorithm) {
  case Algorithm::Auto:
    return "auto";
  case Algorithm::Hierarchical:
    return "hierarchical";
  case Algorithm::Global:
    return "global";
  }
  return "?";
}

io::Status validateLayout(const PlacementLayout &l) {
  const std::pair<const char *, int64_t> sizes[] = {
      {"experts", l.experts},
      {"groups", l.groups},
      {"nodes", l.nodes},
      {"EP ranks", l.epRanks},
      {"slots per rank", l.slotsPerRank}};
  for (const auto &[name, value] : sizes) {
    if (value <= 0)
      return fail(std::string(name) + " must be positive, got " + str(value));
    if (value > kMaxSlots)
      return fail(std::string(name) + " (" + str(value) + ") exceeds " +
                  str(kMaxSlots));
  }
  if (l.experts % l.groups)
    return fail("experts (" + str(l.experts) + ") not divisible by groups (" +
                str(l.groups) + ")");
  if (l.epRanks % l.nodes)
    return fail("EP ranks (" + str(l.epRanks) + ") not divisible by nodes (" +
                str(l.nodes) + ")");
  if (l.experts % l.epRanks)
    return fail("experts (" + str(l.experts) + ") not divisible by EP ranks (" +
                str(l.epRanks) + ")");
  if (l.slotsPerRank < l.expertsPerRank())
    return fail("slots per rank " + str(l.slotsPerRank) +
                " < experts per rank " + str(l.expertsPerRank()));
  if (l.epRanks * l.slotsPerRank > kMaxSlots)
    return fail("EP ranks x slots per rank (" + str(l.slots()) + ") exceeds " +
                str(kMaxSlots));
  return std::nullopt;
}

io::Expected<Algorithm> resolveAlgorithm(const PlacementLayout &layout,
                                         Algorithm requested) {
  bool groupsDivide = layout.groups % layout.nodes == 0;
  if (requested == Algorithm::Hierarchical && !groupsDivide)
    return fail("hierarchical placement needs groups (" + str(layout.groups) +
                ") divisible by nodes (" + str(layout.nodes) + ")");
  if (requested != Algorithm::Auto)
    return requested;
  return groupsDivide ? Algorithm::Hierarchical : Algorithm::Global;
}

/// Puts weights.size() items into `packs` packs of weights.size() / packs
/// items: heaviest first, each into the lightest pack with room (ties: lower
/// index). Returns each item's pack.
static std::vector<int64_t> packBalanced(const std::vector<double> &weights,
                                         int64_t packs) {
  int64_t items = static_cast<int64_t>(weights.size());
  int64_t perPack = items / packs;
  std::vector<int64_t> order(items);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return weights[a] > weights[b];
  });
  std::vector<double> packLoad(packs, 0.0);
  std::vector<int64_t> packCount(packs, 0), packOf(items, -1);
  for (int64_t item : order) {
    int64_t best = -1;
    for (int64_t p = 0; p < packs; ++p)
      if (packCount[p] < perPack && (best < 0 || packLoad[p] < packLoad[best]))
        best = p;
    packOf[item] = best;
    packLoad[best] += weights[item];
    ++packCount[best];
  }
  return packOf;
}

/// Replica counts over `slots` >= loads.size() slots: one per expert, then
/// each extra slot to the expert with the highest load per replica (ties:
/// lower index).
static std::vector<int64_t> replicaCounts(const std::vector<int64_t> &loads,
                                          int64_t slots) {
  std::vector<int64_t> counts(loads.size(), 1);
  // Exact comparison of load / count by cross-multiplying.
  auto hotter = [&](int64_t a, int64_t b) {
    __int128 lhs = static_cast<__int128>(loads[a]) * counts[b];
    __int128 rhs = static_cast<__int128>(loads[b]) * counts[a];
    return lhs != rhs ? lhs > rhs : a < b;
  };
  auto cooler = [&](int64_t a, int64_t b) { return hotter(b, a); };
  std::priority_queue<int64_t, std::vector<int64_t>, decltype(cooler)> queue(
      cooler);
  for (size_t e = 0; e < loads.size(); ++e)
    queue.push(static_cast<int64_t>(e));
  for (int64_t extra = slots - static_cast<int64_t>(loads.size()); extra > 0;
       --extra) {
    int64_t expert = queue.top();
    queue.pop();
    ++counts[expert];
    queue.push(expert);
  }
  return counts;
}

/// Replicates `experts` (logical ids) over the slots of ranks [firstRank,
/// firstRank + ranks) and packs the replicas onto those ranks.
static void placeOnRanks(const PlacementLayout &layout,
                         const std::vector<int64_t> &loads,
                         const std::vector<int32_t> &experts, int64_t firstRank,
                         int64_t ranks, std::vector<int32_t> &slotExpert) {
  std::vector<int64_t> local;
  for (int32_t e : experts)
    local.push_back(loads[e]);
  std::vector<int64_t> counts =
      replicaCounts(local, ranks * layout.slotsPerRank);
  std::vector<int32_t> replicaExpert;
  std::vector<double> weight;
  for (size_t i = 0; i < experts.size(); ++i)
    for (int64_t c = 0; c < counts[i]; ++c) {
      replicaExpert.push_back(experts[i]);
      weight.push_back(static_cast<double>(local[i]) /
                       static_cast<double>(counts[i]));
    }
  std::vector<int64_t> rankOf = packBalanced(weight, ranks);
  std::vector<int64_t> used(ranks, 0);
  for (size_t r = 0; r < replicaExpert.size(); ++r) {
    int64_t rank = firstRank + rankOf[r];
    slotExpert[rank * layout.slotsPerRank + used[rankOf[r]]++] =
        replicaExpert[r];
  }
}

LayerPlacement placeLayer(const PlacementLayout &layout, Algorithm algorithm,
                          int64_t layer, const std::vector<int64_t> &loads) {
  LayerPlacement out;
  out.layer = layer;
  out.slotExpert.assign(layout.slots(), -1);
  if (algorithm == Algorithm::Global) {
    std::vector<int32_t> all(layout.experts);
    std::iota(all.begin(), all.end(), 0);
    placeOnRanks(layout, loads, all, 0, layout.epRanks, out.slotExpert);
  } else {
    // Groups onto nodes, then each node on its own.
    int64_t groupSize = layout.experts / layout.groups;
    std::vector<double> groupLoad(layout.groups, 0.0);
    for (int64_t e = 0; e < layout.experts; ++e)
      groupLoad[e / groupSize] += static_cast<double>(loads[e]);
    std::vector<int64_t> nodeOf = packBalanced(groupLoad, layout.nodes);
    for (int64_t node = 0; node < layout.nodes; ++node) {
      std::vector<int32_t> experts;
      for (int64_t g = 0; g < layout.groups; ++g)
        if (nodeOf[g] == node)
          for (int64_t e = g * groupSize; e < (g + 1) * groupSize; ++e)
            experts.push_back(static_cast<int32_t>(e));
      placeOnRanks(layout, loads, experts, node * layout.ranksPerNode(),
                   layout.ranksPerNode(), out.slotExpert);
    }
  }
  bool complete = indexReplicas(out, layout.experts);
  (void)complete;
  assert(complete && "every slot filled, every expert placed");
  return out;
}

bool indexReplicas(LayerPlacement &placement, int64_t experts) {
  placement.replicas.assign(experts, {});
  for (size_t slot = 0; slot < placement.slotExpert.size(); ++slot) {
    int32_t e = placement.slotExpert[slot];
    if (e < 0 || e >= experts)
      return false;
    placement.replicas[e].push_back(static_cast<int32_t>(slot));
  }
  return std::none_of(placement.replicas.begin(), placement.replicas.end(),
                      [](const auto &slots) { return slots.empty(); });
}

io::Status checkLoads(const PlacementLayout &layout,
                      const std::vector<io::LayerLoads> &loads) {
  for (const io::LayerLoads &layer : loads) {
    std::string name = "layer " + str(layer.layer);
    if (static_cast<int64_t>(layer.loads.size()) != layout.experts)
      return fail(name + " has " + str(layer.loads.size()) +
                  " experts, the model has " + str(layout.experts));
    for (size_t e = 0; e < layer.loads.size(); ++e)
      if (layer.loads[e] < 0)
        return fail(name + ": expert " + str(e) + " has a negative load (" +
                    str(layer.loads[e]) + ")");
  }
  return std::nullopt;
}

io::Expected<Placement> placeExperts(const PlacementLayout &layout,
                                     Algorithm requested,
                                     const std::vector<io::LayerLoads> &loads) {
  if (io::Status error = validateLayout(layout))
    return *error;
  io::Expected<Algorithm> algorithm = resolveAlgorithm(layout, requested);
  if (!algorithm)
    return algorithm.error();
  if (io::Status error = checkLoads(layout, loads))
    return *error;
  Placement out;
  out.layout = layout;
  out.algorithm = *algorithm;
  for (const io::LayerLoads &layer : loads)
    out.layers.push_back(
        placeLayer(layout, *algorithm, layer.layer, layer.loads));
  return out;
}

} // namespace dsflow::placement
