//===- ExpertPlacementTest.cpp - EPLB-style expert placement --------------===//
#include "Placement/PlacementProto.h"
#include "Placement/PlacementReport.h"
#include "Placement/SyntheticLoads.h"

#include <gtest/gtest.h>

#include <set>

namespace dsflow::placement {
namespace {

/// DeepSeek-V3's layout with 64 redundant slots.
const PlacementLayout kV3 = {256, 8, 8, 64, 5};

/// Every slot holds an expert, every expert has a slot, and `replicas` is the
/// inverse of `slotExpert`.
void expectComplete(const PlacementLayout &layout, const LayerPlacement &p) {
  ASSERT_EQ(static_cast<int64_t>(p.slotExpert.size()), layout.slots());
  ASSERT_EQ(static_cast<int64_t>(p.replicas.size()), layout.experts);
  int64_t slots = 0;
  for (int64_t e = 0; e < layout.experts; ++e) {
    EXPECT_FALSE(p.replicas[e].empty()) << "expert " << e;
    for (int32_t slot : p.replicas[e])
      EXPECT_EQ(p.slotExpert[slot], e);
    slots += p.replicas[e].size();
  }
  EXPECT_EQ(slots, layout.slots());
}

LayerPlacement place(const PlacementLayout &layout,
                     const std::vector<int64_t> &loads,
                     Algorithm requested = Algorithm::Auto) {
  io::Expected<Placement> p = placeExperts(layout, requested, {{0, loads}});
  EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
  return p.ok() ? p->layers[0] : LayerPlacement{};
}

int64_t nodeOfSlot(const PlacementLayout &layout, int64_t slot) {
  return slot / layout.slotsPerRank / layout.ranksPerNode();
}

TEST(ExpertPlacement, UniformLoadsWithoutRedundancyAreBalanced) {
  PlacementLayout layout = {256, 8, 8, 64, 4};
  std::vector<int64_t> loads(256, 1000);
  LayerPlacement p = place(layout, loads);
  expectComplete(layout, p);
  for (const auto &slots : p.replicas)
    EXPECT_EQ(slots.size(), 1u);
  EXPECT_DOUBLE_EQ(balanceOf(rankLoads(layout, p, loads)).ratio(), 1.0);
  EXPECT_DOUBLE_EQ(balanceOf(naiveRankLoads(layout, loads)).ratio(), 1.0);
}

TEST(ExpertPlacement, UniformLoadsWithRedundancyStayBalanced) {
  std::vector<int64_t> loads(256, 1000);
  LayerPlacement p = place(kV3, loads);
  expectComplete(kV3, p);
  EXPECT_NEAR(balanceOf(rankLoads(kV3, p, loads)).ratio(), 1.0, 1e-12);
}

TEST(ExpertPlacement, ReplicasGoToTheHottestExperts) {
  // One node, four ranks, four extra slots. Per replica: expert 3 1000 -> 500
  // (tie with expert 7 at 500, lower index wins) -> 333, expert 7 -> 250,
  // expert 3 -> 250.
  PlacementLayout layout = {16, 1, 1, 4, 5};
  std::vector<int64_t> loads(16, 10);
  loads[3] = 1000;
  loads[7] = 500;
  LayerPlacement p = place(layout, loads);
  expectComplete(layout, p);
  for (int64_t e = 0; e < 16; ++e)
    EXPECT_EQ(p.replicas[e].size(), e == 3 ? 4u : e == 7 ? 2u : 1u) << e;
  EXPECT_DOUBLE_EQ(p.share(p.replicas[3][0]), 0.25);
  // Four replicas of 250 tokens land on four different ranks.
  std::set<int64_t> ranks;
  for (int32_t slot : p.replicas[3])
    ranks.insert(slot / layout.slotsPerRank);
  EXPECT_EQ(ranks.size(), 4u);
}

TEST(ExpertPlacement, SkewedLoadsGetMoreBalanced) {
  std::vector<io::LayerLoads> loads =
      zipfLoads({0, 1, 2}, 256, 1.0, 1 << 20, 7);
  io::Expected<Placement> p =
      placeExperts({256, 1, 1, 64, 5}, Algorithm::Auto, loads);
  ASSERT_TRUE(p.ok());
  PlacementReport report = reportPlacement(*p, loads);
  for (const LayerReport &r : report.layers) {
    EXPECT_GT(r.rankBefore.ratio(), 2.0);
    EXPECT_LT(r.rankAfter.ratio(), r.rankBefore.ratio() / 2);
    EXPECT_GT(r.maxReplicas, 1);
  }
}

TEST(ExpertPlacement, HierarchicalKeepsAGroupOnOneNode) {
  std::vector<io::LayerLoads> loads = zipfLoads({0, 1}, 256, 1.2, 1 << 20, 3);
  io::Expected<Placement> p = placeExperts(kV3, Algorithm::Auto, loads);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->algorithm, Algorithm::Hierarchical);
  int64_t groupSize = 256 / 8;
  for (const LayerPlacement &layer : p->layers) {
    expectComplete(kV3, layer);
    for (int64_t g = 0; g < 8; ++g) {
      std::set<int64_t> nodes;
      for (int64_t e = g * groupSize; e < (g + 1) * groupSize; ++e)
        for (int32_t slot : layer.replicas[e])
          nodes.insert(nodeOfSlot(kV3, slot));
      EXPECT_EQ(nodes.size(), 1u) << "group " << g;
    }
    // One group per node: all eight nodes are used.
    std::set<int64_t> used;
    for (int64_t g = 0; g < 8; ++g)
      used.insert(nodeOfSlot(kV3, layer.replicas[g * groupSize][0]));
    EXPECT_EQ(used.size(), 8u);
  }
}

TEST(ExpertPlacement, GroupsPackedOntoNodesByLoad) {
  // Four groups of two onto two nodes: the two heavy groups go apart.
  PlacementLayout layout = {8, 4, 2, 4, 2};
  std::vector<int64_t> loads = {100, 100, 90, 90, 1, 1, 2, 2};
  LayerPlacement p = place(layout, loads);
  expectComplete(layout, p);
  EXPECT_NE(nodeOfSlot(layout, p.replicas[0][0]),
            nodeOfSlot(layout, p.replicas[2][0]));
}

TEST(ExpertPlacement, GlobalWhenGroupsDoNotDivideOverNodes) {
  PlacementLayout layout = {48, 8, 3, 6, 9};
  io::Expected<Algorithm> a = resolveAlgorithm(layout, Algorithm::Auto);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, Algorithm::Global);
  io::Expected<Algorithm> forced =
      resolveAlgorithm(layout, Algorithm::Hierarchical);
  ASSERT_FALSE(forced.ok());
  EXPECT_EQ(forced.error().message,
            "hierarchical placement needs groups (8) divisible by nodes (3)");
  std::vector<io::LayerLoads> loads = zipfLoads({5}, 48, 1.0, 100000, 1);
  io::Expected<Placement> p = placeExperts(layout, Algorithm::Auto, loads);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->algorithm, Algorithm::Global);
  expectComplete(layout, p->layers[0]);
  EXPECT_EQ(p->layers[0].layer, 5);
}

TEST(ExpertPlacement, GlobalMaySpreadAGroupOverNodes) {
  // Forced global on a layout hierarchical could take: the hottest expert's
  // replicas are not confined to one node.
  std::vector<int64_t> loads(256, 100);
  loads[0] = 100000;
  LayerPlacement p = place(kV3, loads, Algorithm::Global);
  expectComplete(kV3, p);
  std::set<int64_t> nodes;
  for (int32_t slot : p.replicas[0])
    nodes.insert(nodeOfSlot(kV3, slot));
  EXPECT_GT(nodes.size(), 1u);
}

TEST(ExpertPlacement, Deterministic) {
  std::vector<io::LayerLoads> loads = zipfLoads({0}, 256, 0.8, 999983, 11);
  io::Expected<Placement> a = placeExperts(kV3, Algorithm::Auto, loads);
  io::Expected<Placement> b = placeExperts(kV3, Algorithm::Auto, loads);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->layers[0].slotExpert, b->layers[0].slotExpert);
}

TEST(ExpertPlacement, ZeroLoadsStillPlaceEveryExpert) {
  std::vector<int64_t> loads(256, 0);
  LayerPlacement p = place(kV3, loads);
  expectComplete(kV3, p);
  EXPECT_DOUBLE_EQ(balanceOf(rankLoads(kV3, p, loads)).ratio(), 1.0);
}

std::string layoutError(const PlacementLayout &layout) {
  io::Status error = validateLayout(layout);
  return error ? error->message : "valid";
}

TEST(ExpertPlacementValidation, Layouts) {
  EXPECT_EQ(layoutError(kV3), "valid");
  EXPECT_EQ(layoutError({256, 7, 8, 64, 5}),
            "experts (256) not divisible by groups (7)");
  EXPECT_EQ(layoutError({256, 8, 3, 64, 5}),
            "EP ranks (64) not divisible by nodes (3)");
  EXPECT_EQ(layoutError({256, 8, 8, 48, 6}),
            "experts (256) not divisible by EP ranks (48)");
  EXPECT_EQ(layoutError({256, 8, 8, 64, 3}),
            "slots per rank 3 < experts per rank 4");
  EXPECT_EQ(layoutError({0, 1, 1, 1, 1}), "experts must be positive, got 0");
  EXPECT_EQ(layoutError({256, 8, 8, -2, 5}),
            "EP ranks must be positive, got -2");
  EXPECT_EQ(layoutError({256, 8, 8, 64, 1 << 20}),
            "EP ranks x slots per rank (67108864) exceeds 4194304");
}

TEST(ExpertPlacementValidation, Loads) {
  PlacementLayout layout = {16, 4, 2, 4, 4};
  io::Expected<Placement> p = placeExperts(
      layout, Algorithm::Auto,
      {{1, std::vector<int64_t>(16, 1)}, {3, std::vector<int64_t>(15, 1)}});
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().message, "layer 3 has 15 experts, the model has 16");
  std::vector<int64_t> negative(16, 1);
  negative[5] = -2;
  p = placeExperts(layout, Algorithm::Auto, {{2, negative}});
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().message, "layer 2: expert 5 has a negative load (-2)");
}

TEST(ExpertPlacementProto, RoundTrip) {
  std::vector<io::LayerLoads> loads = zipfLoads({3, 4}, 256, 1.2, 1 << 20, 5);
  io::Expected<Placement> p = placeExperts(kV3, Algorithm::Auto, loads);
  ASSERT_TRUE(p.ok());
  dsflow::ExpertPlacement proto = toProto(*p);
  EXPECT_EQ(proto.ep_ranks(), 64);
  EXPECT_EQ(proto.slots_per_rank(), 5);
  EXPECT_EQ(proto.nodes(), 8);
  ASSERT_EQ(proto.layers_size(), 2);
  EXPECT_EQ(proto.layers(1).layer(), 4);
  io::Expected<Placement> back = fromProto(proto, 256, 8);
  ASSERT_TRUE(back.ok()) << back.error().message;
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(back->layers[i].layer, p->layers[i].layer);
    EXPECT_EQ(back->layers[i].slotExpert, p->layers[i].slotExpert);
    EXPECT_EQ(back->layers[i].replicas, p->layers[i].replicas);
  }
}

TEST(ExpertPlacementProto, RejectsBadRecords) {
  io::Expected<Placement> p = placeExperts({16, 4, 2, 4, 5}, Algorithm::Auto,
                                           {{1, std::vector<int64_t>(16, 1)}});
  ASSERT_TRUE(p.ok());
  dsflow::ExpertPlacement good = toProto(*p);
  auto error = [](const dsflow::ExpertPlacement &proto, int64_t experts) {
    io::Expected<Placement> r = fromProto(proto, experts, 4);
    return r.ok() ? std::string("ok") : r.error().message;
  };
  EXPECT_EQ(error(good, 16), "ok");
  EXPECT_EQ(error(good, 32), "expert_placement: slots per rank 5 < experts "
                             "per rank 8");
  dsflow::ExpertPlacement bad = good;
  bad.mutable_layers(0)->mutable_slot_expert()->RemoveLast();
  EXPECT_EQ(error(bad, 16), "expert_placement: layer 1 has 19 slots, "
                            "expected 20");
  bad = good;
  bad.mutable_layers(0)->set_slot_expert(0, 16);
  EXPECT_EQ(error(bad, 16), "expert_placement: layer 1: a slot holds an "
                            "expert outside [0, 16) or an expert has no slot");
  bad = good;
  *bad.add_layers() = good.layers(0);
  EXPECT_EQ(error(bad, 16),
            "expert_placement: layer 1 is negative or appears twice");
  bad = good;
  bad.set_nodes(0);
  EXPECT_EQ(error(bad, 16), "expert_placement: nodes must be positive, got 0");
}

} // namespace
} // namespace dsflow::placement
