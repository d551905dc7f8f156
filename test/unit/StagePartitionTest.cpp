//===- StagePartitionTest.cpp - Layers onto pipeline stages ---------------===//
#include "Stages/StagePartition.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <random>

namespace dsflow::stages {
namespace {

/// The least max stage cost over every split, by enumeration.
double bruteForceBest(const ModelCosts &c, int64_t stages) {
  const int64_t layers = int64_t(c.layers.size());
  double best = 1e300;
  std::vector<int64_t> cuts;
  std::function<void(int64_t, int64_t)> place = [&](int64_t stage,
                                                    int64_t first) {
    if (stage == stages - 1) {
      double worst = 0;
      int64_t begin = 0;
      cuts.push_back(layers);
      for (int64_t s = 0; s < stages; ++s) {
        double cost = 0;
        for (int64_t l = begin; l < cuts[s]; ++l)
          cost += c.layers[l];
        cost +=
            (s == 0 ? c.embedding : 0) + (s == stages - 1 ? c.head + c.mtp : 0);
        worst = std::max(worst, cost);
        begin = cuts[s];
      }
      cuts.pop_back();
      best = std::min(best, worst);
      return;
    }
    for (int64_t end = first + 1; end <= layers - (stages - 1 - stage); ++end) {
      cuts.push_back(end);
      place(stage + 1, end);
      cuts.pop_back();
    }
  };
  place(0, 0);
  return best;
}

TEST(StagePartition, OptimalOnRandomCosts) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> cost(1.0, 10.0);
  for (int trial = 0; trial < 40; ++trial) {
    ModelCosts c;
    int64_t layers = 3 + trial % 8;
    for (int64_t l = 0; l < layers; ++l)
      c.layers.push_back(cost(rng));
    c.embedding = cost(rng) / 4;
    c.head = cost(rng);
    c.mtp = trial % 2 ? cost(rng) : 0;
    for (int64_t stages = 1; stages <= std::min<int64_t>(layers, 4); ++stages) {
      auto split = partitionStages(c, stages);
      ASSERT_TRUE(split);
      ASSERT_EQ(int64_t(split->size()), stages);
      double worst = 0;
      int64_t next = 0;
      for (const Stage &s : *split) {
        EXPECT_EQ(s.firstLayer, next);
        EXPECT_GT(s.endLayer, s.firstLayer);
        next = s.endLayer;
        worst = std::max(worst, s.cost);
      }
      EXPECT_EQ(next, layers);
      EXPECT_DOUBLE_EQ(worst, bruteForceBest(c, stages))
          << layers << " layers, " << stages << " stages";
    }
  }
}

TEST(StagePartition, EmbeddingFirstHeadAndMtpLast) {
  ModelCosts c;
  c.layers.assign(8, 1.0);
  c.embedding = 0.5;
  c.head = 2.0;
  c.mtp = 1.0;
  auto split = partitionStages(c, 4);
  ASSERT_TRUE(split);
  EXPECT_TRUE(split->front().embedding);
  EXPECT_TRUE(split->back().head && split->back().mtp);
  EXPECT_FALSE((*split)[1].embedding || (*split)[1].head);
  // The last stage carries 3.0 beyond its layers: it gets the fewest layers.
  EXPECT_EQ(split->back().endLayer - split->back().firstLayer, 1);
  EXPECT_GT(imbalance(*split), 1.0);
}

TEST(StagePartition, UniformLayersSplitEvenly) {
  ModelCosts c;
  c.layers.assign(12, 2.0);
  auto split = partitionStages(c, 4);
  ASSERT_TRUE(split);
  for (const Stage &s : *split)
    EXPECT_EQ(s.endLayer - s.firstLayer, 3);
  EXPECT_DOUBLE_EQ(imbalance(*split), 1.0);
}

TEST(StagePartition, RefusesMoreStagesThanLayers) {
  ModelCosts c;
  c.layers.assign(3, 1.0);
  auto split = partitionStages(c, 4);
  ASSERT_FALSE(split);
  EXPECT_EQ(split.error().message, "pipeline: 3 layers cannot fill 4 stages");
}

TEST(LayerCost, MoeLayersCostWhatTheirActiveExpertsDo) {
  ModelSpec spec;
  spec.set_hidden_size(8);
  spec.set_vocab_size(100);
  spec.set_num_layers(3);
  spec.set_num_dense_layers(1);
  spec.set_dense_ffn_size(16);
  AttentionSpec &a = *spec.mutable_attention();
  a.set_num_heads(2);
  a.set_kv_lora_rank(4);
  a.set_qk_nope_head_dim(4);
  a.set_qk_rope_head_dim(2);
  a.set_v_head_dim(4);
  MoeSpec &m = *spec.mutable_moe();
  m.set_num_routed_experts(6);
  m.set_experts_per_token(2);
  m.set_num_shared_experts(1);
  m.set_expert_ffn_size(4);
  spec.mutable_mtp()->set_depth(1);
  ModelCosts c = estimateCosts(spec, 10);
  ASSERT_EQ(c.layers.size(), 3u);
  // Attention: query 8*2*6 + kv 8*(4+2) + up 4*2*(4+4) + out 2*4*8 + core
  // 10/2*2*(6+4) = 96 + 48 + 64 + 64 + 100 = 372.
  double attention = 372;
  EXPECT_DOUBLE_EQ(c.layers[0], attention + 3 * 8 * 16);
  // Router 8*6 and 2 routed + 1 shared experts of 3*8*4.
  double moe = 48 + 3 * 96;
  EXPECT_DOUBLE_EQ(c.layers[1], attention + moe);
  EXPECT_DOUBLE_EQ(c.head, 800);
  EXPECT_DOUBLE_EQ(c.mtp, 2 * 64 + attention + moe + 800);
}

} // namespace
} // namespace dsflow::stages
