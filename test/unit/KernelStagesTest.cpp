//===- KernelStagesTest.cpp - Kernels onto pipeline stages ----------------===//
#include "plan/KernelStages.h"

#include <gtest/gtest.h>

namespace dsflow::stages {
namespace {

/// Two stages of one layer each; buffers: 0 p0, 1 p1 (parameters), 2 a0,
/// 3 a1 (activations), 4 g1, 5 g0 (gradients).
struct TwoStages {
  Plan plan;
  TwoStages() {
    plan.mutable_model()->set_num_layers(2);
    PipelinePlan &p = *plan.mutable_pipeline();
    p.set_schedule("1f1b");
    for (int s = 0; s < 2; ++s) {
      PipelineStage &stage = *p.add_stages();
      stage.set_first_layer(s);
      stage.set_end_layer(s + 1);
    }
    buffer("model.layers.0.w", PARAMETER);
    buffer("model.layers.1.w", PARAMETER);
    buffer("a0", ACTIVATION);
    buffer("a1", ACTIVATION);
    buffer("g1", ACTIVATION);
    buffer("g0", ACTIVATION);
    plan.add_programs()->set_role("train");
  }
  void buffer(const char *name, BufferKind kind) {
    Buffer &b = *plan.add_buffers();
    b.set_name(name);
    b.set_kind(kind);
    b.set_bytes(16);
  }
  Kernel &kernel(const char *op, std::vector<int32_t> in,
                 std::vector<int32_t> out, bool backward, const char *attr,
                 int64_t id) {
    plan.mutable_programs(0)->add_kernels(plan.kernels_size());
    Kernel &k = *plan.add_kernels();
    k.set_op(op);
    for (int32_t b : in)
      k.add_inputs(b);
    for (int32_t b : out)
      k.add_outputs(b);
    k.set_backward(backward);
    Attribute &a = *k.add_attributes();
    a.set_name(attr);
    a.set_i64(id);
    return k;
  }
};

TEST(KernelStages, ForwardByParametersBackwardByItsForwardOp) {
  TwoStages t;
  t.kernel("linear", {0}, {2}, false, "graph.fwd_id", 0);    // stage 0
  t.kernel("linear", {2, 1}, {3}, false, "graph.fwd_id", 1); // stage 1
  t.kernel("fill", {}, {4}, true, "unused", 0).clear_attributes();
  t.kernel("linear_grad", {4, 0}, {5}, true, "graph.grad_of", 0);
  auto split = assignKernelStages(t.plan);
  ASSERT_TRUE(split) << split.error().message;
  EXPECT_EQ(split->stageOfKernel, (std::vector<int>{0, 1, 1, 0}));
  ASSERT_EQ(split->crossings.size(), 2u);
  EXPECT_EQ(split->crossings[0].buffer, 2);
  EXPECT_FALSE(split->crossings[0].backward);
  EXPECT_EQ(split->crossings[1].buffer, 4);
  EXPECT_TRUE(split->crossings[1].backward);
  EXPECT_EQ(split->crossings[1].from, 1);
  EXPECT_EQ(split->crossings[1].to, 0);
  // Kernel 3 reads p0 on p0's own stage: nothing shared.
  EXPECT_TRUE(split->sharedParameters.empty());
}

TEST(KernelStages, GradientsMustFlowTowardsTheFirstStage) {
  TwoStages t;
  t.kernel("linear", {0}, {2}, false, "graph.fwd_id", 0);
  t.kernel("linear", {2, 1}, {3}, false, "graph.fwd_id", 1);
  t.kernel("linear_grad", {3}, {5}, true, "graph.grad_of", 0); // stage 0
  t.kernel("linear_grad", {5}, {4}, true, "graph.grad_of", 1); // stage 1
  auto split = assignKernelStages(t.plan);
  ASSERT_FALSE(split);
  EXPECT_EQ(split.error().message,
            "plan: kernel 3 (linear_grad) on stage 1 reads a gradient of "
            "stage 0");
}

TEST(KernelStages, AParameterReadOnAnotherStageIsShared) {
  TwoStages t;
  t.kernel("linear", {0}, {2}, false, "graph.fwd_id", 0);
  t.kernel("linear", {2, 1, 0}, {3}, false, "graph.fwd_id", 1);
  auto split = assignKernelStages(t.plan);
  ASSERT_TRUE(split);
  EXPECT_EQ(split->sharedParameters, (std::vector<int32_t>{0}));
}

TEST(KernelStages, TensorsByName) {
  TwoStages t;
  const PipelinePlan &p = t.plan.pipeline();
  EXPECT_EQ(stageOfTensor(p, "model.embed_tokens.weight"), 0);
  EXPECT_EQ(stageOfTensor(p, "model.layers.1.mlp.gate.weight"), 1);
  EXPECT_EQ(stageOfTensor(p, "model.layers.2.eh_proj.weight"), 1); // MTP
  EXPECT_EQ(stageOfTensor(p, "lm_head.weight"), 1);
}

} // namespace
} // namespace dsflow::stages

namespace dsflow::stages {
namespace {

TEST(KernelStages, WeightGradientPartFollowsWhatWKernelsWrite) {
  TwoStages t;
  t.kernel("linear", {0}, {2}, false, "graph.fwd_id", 0);
  t.kernel("fill", {}, {4}, true, "unused", 0).clear_attributes();
  // B, then a W kernel writing an activation, a kernel adding it up (in the
  // W part through what it reads), and a B kernel after them.
  t.kernel("linear_grad", {4, 0}, {5}, true, "graph.grad_of", 0);
  t.kernel("linear_wgrad", {4, 2}, {3}, true, "graph.grad_of", 0)
      .set_weight_gradient(true);
  t.kernel("add", {3, 3}, {3}, true, "unused", 0).clear_attributes();
  t.kernel("scale", {5}, {4}, true, "unused", 0).clear_attributes();
  EXPECT_EQ(weightGradientPart(t.plan), (std::vector<char>{0, 0, 0, 1, 1, 0}));
}

} // namespace
} // namespace dsflow::stages
