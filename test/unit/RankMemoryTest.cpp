//===- RankMemoryTest.cpp - Per-GPU memory of a pipelined plan ------------===//
#include "Stages/RankMemory.h"

#include <gtest/gtest.h>

namespace dsflow::stages {
namespace {

/// Adds a parameter of `bytes` FP32 bytes and its gradient.
void addTensor(Plan &plan, const std::string &name, int64_t bytes) {
  int32_t index = plan.buffers_size();
  Buffer &p = *plan.add_buffers();
  p.set_name(name);
  p.set_dtype(DTYPE_F32);
  p.set_kind(PARAMETER);
  p.set_bytes(bytes);
  Buffer &g = *plan.add_buffers();
  g = p;
  g.set_kind(GRADIENT);
  g.set_gradient_of(index);
}

TEST(RankMemory, StagesExpertsZeroAndActivations) {
  Plan plan;
  plan.mutable_model()->set_num_layers(2);
  plan.mutable_model()->mutable_moe()->set_num_routed_experts(4);
  ClusterConfig &c = *plan.mutable_cluster();
  c.set_ep(2);
  c.set_dp(1);
  addTensor(plan, "model.embed_tokens.weight", 100);
  addTensor(plan, "model.layers.0.self_attn.o_proj.weight", 40);
  for (int e = 0; e < 4; ++e)
    addTensor(plan, "model.layers.1.mlp.experts." + std::to_string(e) + ".w",
              80);
  addTensor(plan, "lm_head.weight", 60);
  PipelinePlan &p = *plan.mutable_pipeline();
  PipelineStage &s0 = *p.add_stages();
  s0.set_end_layer(1);
  s0.set_cost(1);
  PipelineStage &s1 = *p.add_stages();
  s1.set_first_layer(1);
  s1.set_end_layer(2);
  s1.set_cost(3);

  std::vector<RankMemory> m =
      estimateRankMemory(plan, {{0}, {1}}, {500.0, 750.0});
  ASSERT_EQ(m.size(), 2u);
  // Stage 0: the embedding and layer 0, all dense.
  EXPECT_DOUBLE_EQ(m[0].parameters, 140);
  EXPECT_DOUBLE_EQ(m[0].gradients, 140);
  // Two FP32 moments, ZeRO-1 over ep x dp = 2 ranks.
  EXPECT_DOUBLE_EQ(m[0].optimizer, 35 * 8 / 2.0);
  // The activations are the caller's (the schedule's peak).
  EXPECT_DOUBLE_EQ(m[0].activations, 500);
  // Stage 1: half of the 4 experts (2 EP ranks) and the head.
  EXPECT_DOUBLE_EQ(m[1].parameters, 160 + 60);
  // Experts' moments are sharded over dp = 1, the head's over 2.
  EXPECT_DOUBLE_EQ(m[1].optimizer, 40 * 8 + 15 * 8 / 2.0);
  EXPECT_DOUBLE_EQ(m[1].activations, 750);
  EXPECT_DOUBLE_EQ(m[1].total(), 220 + 220 + 380 + 750);

  // Without ZeRO-1 every rank keeps the whole state; DualPipe-style ranks
  // holding both stages add them up.
  c.set_zero1(false);
  std::vector<RankMemory> both = estimateRankMemory(plan, {{0, 1}}, {42.0});
  EXPECT_DOUBLE_EQ(both[0].parameters, 360);
  EXPECT_DOUBLE_EQ(both[0].optimizer, 35 * 8 + 40 * 8 + 15 * 8);
  EXPECT_DOUBLE_EQ(both[0].activations, 42);
}

/// An activation buffer of `bytes`.
int32_t addActivation(Plan &plan, int64_t bytes) {
  Buffer &b = *plan.add_buffers();
  b.set_kind(ACTIVATION);
  b.set_bytes(bytes);
  return plan.buffers_size() - 1;
}

Kernel &addKernel(Plan &plan, bool backward, std::vector<int32_t> inputs,
                  std::vector<int32_t> outputs) {
  Kernel &k = *plan.add_kernels();
  k.set_backward(backward);
  for (int32_t b : inputs)
    k.add_inputs(b);
  for (int32_t b : outputs)
    k.add_outputs(b);
  return k;
}

TEST(RankMemory, KeptAndWorkspaceBytesPerStage) {
  Plan plan;
  plan.mutable_pipeline()->add_stages();
  plan.mutable_pipeline()->add_stages();
  addTensor(plan, "model.layers.0.w", 4); // buffer 0, read by the backward
  int32_t a = addActivation(plan, 100), b = addActivation(plan, 10),
          c = addActivation(plan, 1000), e = addActivation(plan, 50),
          f = addActivation(plan, 7);
  // Forward on stage 0 then 1, backward on stage 1 then 0.
  addKernel(plan, false, {0}, {a, c});
  addKernel(plan, false, {c}, {b});
  addKernel(plan, true, {b, 0}, {e});
  addKernel(plan, true, {a, b, e}, {f});
  KernelStages split;
  split.stageOfKernel = {0, 1, 1, 0};
  // a is kept on stage 0; b, read by both backwards, on both; c (forward
  // only), e and f (backward only) and the parameter are not kept.
  std::vector<double> kept = keptBytesByStage(plan, split);
  EXPECT_EQ(kept, (std::vector<double>{110, 10}));
  // The transients: c on stage 0 (1000, alone at its peak), e on stage 1.
  std::vector<double> workspace = workspaceBytesByStage(plan, split);
  EXPECT_EQ(workspace, (std::vector<double>{1000, 50}));
}

} // namespace
} // namespace dsflow::stages

namespace dsflow::stages {
namespace {

TEST(RankMemory, DeferredWeightGradientsHoldTheirOperands) {
  Plan plan;
  plan.mutable_pipeline()->add_stages();
  plan.mutable_memory()->set_weight_gradients_deferred(true);
  addTensor(plan, "model.layers.0.w", 4); // buffers 0 (param), 1 (grad)
  int32_t x = addActivation(plan, 100), a = addActivation(plan, 10);
  int32_t dy = addActivation(plan, 2048);
  plan.mutable_buffers(dy)->set_dtype(DTYPE_BF16);
  plan.mutable_buffers(dy)->add_shape(8);
  plan.mutable_buffers(dy)->add_shape(128);
  addKernel(plan, false, {0}, {x, a});
  addKernel(plan, true, {a}, {dy});                              // B
  addKernel(plan, true, {x, dy}, {1}).set_weight_gradient(true); // W
  KernelStages split;
  split.stageOfKernel = {0, 0, 0};
  // x and a are kept; W reads x, and dy from B, at BF16 size...
  std::vector<schedule::ChunkActivations> c =
      chunkActivationsByStage(plan, split);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_DOUBLE_EQ(c[0].kept, 110);
  EXPECT_DOUBLE_EQ(c[0].keptForWeights, 100);
  EXPECT_DOUBLE_EQ(c[0].waitingForWeights, 2048);
  // ...or, the W GEMM reading FP8, as its E4M3 copy: 1024 + 8 scales.
  Attribute &fp8 = *plan.mutable_kernels(2)->add_attributes();
  fp8.set_name("graph.fp8.format");
  fp8.set_str("e4m3");
  c = chunkActivationsByStage(plan, split);
  EXPECT_DOUBLE_EQ(c[0].waitingForWeights, 1024 + 8 * 4);
  // Not deferred: nothing waits for W.
  plan.mutable_memory()->set_weight_gradients_deferred(false);
  c = chunkActivationsByStage(plan, split);
  EXPECT_DOUBLE_EQ(c[0].keptForWeights, 0);
  EXPECT_DOUBLE_EQ(c[0].waitingForWeights, 0);
}

} // namespace
} // namespace dsflow::stages
