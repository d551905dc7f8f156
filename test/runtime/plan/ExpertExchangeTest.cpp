//===- ExpertExchangeTest.cpp - Expert parallelism's routing of rows ------===//
//
// The exchange on one rank with replicated experts: rows split between an
// expert's slots, regrouped slot by slot and back, must give what the plain
// routed-expert kernels give (the multi-rank exchange is checked end to end
// against one process in test/Tools/expert-parallel.test). Also the placement
// reader's refusals.
//
//===----------------------------------------------------------------------===//
#include "dist/SelfCommunicator.h"
#include "exec/ExpertParallel.h"

#include <gtest/gtest.h>

#include <random>

namespace dsflow::exec {
namespace {

constexpr int64_t kExperts = 3, kHidden = 4, kInter = 3, kLayer = 7;

/// A plan whose only content is a placement of layer kLayer on one EP rank.
Plan placementPlan(std::vector<int32_t> slotExpert) {
  Plan plan;
  ExpertPlacement *p = plan.mutable_expert_placement();
  p->set_ep_ranks(1);
  p->set_slots_per_rank(static_cast<int32_t>(slotExpert.size()));
  LayerPlacement *l = p->add_layers();
  l->set_layer(kLayer);
  for (int32_t e : slotExpert)
    l->add_slot_expert(e);
  return plan;
}

std::vector<double> random(size_t n, std::mt19937 &rng) {
  std::uniform_real_distribution<double> dist(-1, 1);
  std::vector<double> v(n);
  for (double &x : v)
    x = dist(rng);
  return v;
}

/// E pointers into one array of E equal blocks.
template <typename P> std::vector<P> blocks(P base, size_t size) {
  std::vector<P> out;
  for (int64_t e = 0; e < kExperts; ++e)
    out.push_back(base + e * size);
  return out;
}

void expectNear(const std::vector<double> &a, const std::vector<double> &b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_NEAR(a[i], b[i], 1e-12) << "element " << i;
}

TEST(ExpertExchange, ReplicatedSlotsMatchThePlainKernels) {
  // Expert 0 and 2 have two slots each, not next to each other.
  Plan plan = placementPlan({0, 1, 2, 0, 2});
  dist::SelfCommunicator self;
  ExpertParallel ep(self);
  int rowsKey = 0; // Any address: one exchange per memory and layer.
  auto exchange =
      ep.exchange<double>(plan, &rowsKey, kLayer, kExperts, kHidden, kInter);
  ASSERT_TRUE(exchange) << exchange.error().message;

  std::mt19937 rng(3);
  std::vector<int32_t> counts = {3, 2, 5};
  const int64_t rows = 10, wSize = kInter * kHidden;
  std::vector<double> x = random(rows * kHidden, rng),
                      dy = random(rows * kHidden, rng),
                      gate = random(kExperts * wSize, rng),
                      up = random(kExperts * wSize, rng),
                      down = random(kExperts * wSize, rng);
  auto g = blocks<const double *>(gate.data(), wSize),
       u = blocks<const double *>(up.data(), wSize),
       d = blocks<const double *>(down.data(), wSize);
  ExpertWeights<double> w{g.data(), u.data(), d.data()};

  // The plain kernels.
  std::vector<double> y(rows * kHidden), sg(rows * kInter), su(rows * kInter),
      dx(rows * kHidden, 0.0), dots(rows, 0.0), dW(3 * kExperts * wSize, 0.0);
  ASSERT_EQ(cpu::expertFfnForward(x.data(), counts.data(), g.data(), u.data(),
                                  d.data(), y.data(), sg.data(), su.data(),
                                  rows, kExperts, kHidden, kInter),
            cpu::Status::Ok);
  ASSERT_EQ(cpu::expertFfnBackwardB(dy.data(), counts.data(), g.data(),
                                    u.data(), d.data(), sg.data(), su.data(),
                                    dx.data(), dots.data(), rows, kExperts,
                                    kHidden, kInter),
            cpu::Status::Ok);
  auto dG = blocks<double *>(dW.data(), wSize),
       dU = blocks<double *>(dW.data() + kExperts * wSize, wSize),
       dD = blocks<double *>(dW.data() + 2 * kExperts * wSize, wSize);
  ASSERT_EQ(cpu::expertFfnBackwardW(dy.data(), x.data(), counts.data(),
                                    d.data(), sg.data(), su.data(), dG.data(),
                                    dU.data(), dD.data(), rows, kExperts,
                                    kHidden, kInter),
            cpu::Status::Ok);

  // Through the exchange.
  std::vector<double> yEp(rows * kHidden, 0.0), dxEp(rows * kHidden, 0.0),
      dotsEp(rows, 0.0), dWEp(3 * kExperts * wSize, 0.0);
  ASSERT_EQ((*exchange)->forward(x.data(), counts.data(), rows, w, yEp.data(),
                                 nullptr),
            cpu::Status::Ok);
  ASSERT_EQ((*exchange)->backwardData(dy.data(), rows, w, dxEp.data(),
                                      dotsEp.data(), nullptr),
            cpu::Status::Ok);
  auto eG = blocks<double *>(dWEp.data(), wSize),
       eU = blocks<double *>(dWEp.data() + kExperts * wSize, wSize),
       eD = blocks<double *>(dWEp.data() + 2 * kExperts * wSize, wSize);
  ASSERT_EQ((*exchange)->backwardWeights(dy.data(), rows, w, eG.data(),
                                         eU.data(), eD.data(), nullptr),
            cpu::Status::Ok);
  expectNear(yEp, y);
  expectNear(dxEp, dx);
  expectNear(dotsEp, dots);
  expectNear(dWEp, dW);
}

TEST(ExpertExchange, RefusesCountsThatDoNotAddUp) {
  Plan plan = placementPlan({0, 1, 2});
  dist::SelfCommunicator self;
  ExpertParallel ep(self);
  auto exchange =
      ep.exchange<double>(plan, &ep, kLayer, kExperts, kHidden, kInter);
  ASSERT_TRUE(exchange);
  std::vector<int32_t> counts = {1, 1, 1};
  std::vector<double> x(4 * kHidden), y(4 * kHidden), w(kInter * kHidden);
  std::vector<const double *> p(kExperts, w.data());
  EXPECT_EQ((*exchange)->forward(x.data(), counts.data(), 4,
                                 {p.data(), p.data(), p.data()}, y.data(),
                                 nullptr),
            cpu::Status::BadExpertCounts);
  // A gradient before (or for another shape than) its forward.
  std::vector<double> dots(4);
  EXPECT_EQ((*exchange)->backwardData(x.data(), 4,
                                      {p.data(), p.data(), p.data()}, y.data(),
                                      dots.data(), nullptr),
            cpu::Status::BadExpertCounts);
}

TEST(ExpertSlots, WithoutPlacementExpertsAreContiguous) {
  Plan plan;
  auto slots = expertSlots(plan, 2, 8, 4);
  ASSERT_TRUE(slots);
  EXPECT_EQ(slots->slotsPerRank, 2);
  EXPECT_EQ(slots->expertOf(3, 0), 6);
  EXPECT_TRUE(slots->holds(1, 3));
  EXPECT_FALSE(slots->holds(1, 4));
  EXPECT_FALSE(expertSlots(plan, 2, 6, 4)); // 6 experts over 4 ranks.
}

TEST(ExpertSlots, RefusesPlacementsThatDoNotFit) {
  auto message = [](const Plan &plan, int ranks) {
    auto slots = expertSlots(plan, kLayer, kExperts, ranks);
    return slots ? std::string("accepted") : slots.error().message;
  };
  EXPECT_NE(message(placementPlan({0, 1, 2}), 2).find("the job has 2 EP ranks"),
            std::string::npos);
  EXPECT_NE(message(placementPlan({0, 1, 1}), 1).find("expert 2 has no slot"),
            std::string::npos);
  EXPECT_NE(message(placementPlan({0, 1, 3}), 1).find("holds expert 3"),
            std::string::npos);
  Plan other = placementPlan({0, 1, 2});
  other.mutable_expert_placement()->mutable_layers(0)->set_layer(1);
  EXPECT_NE(message(other, 1).find("no slots for layer 7"), std::string::npos);
}

TEST(ExpertSlots, ModelLayerOfParameterNames) {
  EXPECT_EQ(modelLayerOf("model.layers.12.mlp.experts.3.up_proj.weight"), 12);
  EXPECT_FALSE(modelLayerOf("model.embed_tokens.weight"));
  EXPECT_FALSE(modelLayerOf("model.layers.x.mlp"));
  EXPECT_FALSE(modelLayerOf("model.layers.3"));
}

} // namespace
} // namespace dsflow::exec
