//===- RecomputeMemoryTest.cpp - Recompute saves what the analysis says ---===//
//
// The activation bytes the forward keeps for the backward (the plan's
// boundary_activation_bytes) drop by exactly the analytic count of the
// values each selection recomputes (docs/recompute.md), for models that
// exercise dense/MoE layers, q_lora_rank 0 and > 0, tied heads and MTP.
//
//===----------------------------------------------------------------------===//
#include "Frontend/GraphBuilder.h"
#include "Frontend/ModelSpecLoader.h"
#include "Pipelines/Pipelines.h"
#include "Plan/PlanBuilder.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"

#include <gtest/gtest.h>

namespace dsflow {
namespace {

constexpr int64_t kBatch = 2, kSeq = 16;

int64_t boundaryBytes(const ModelSpec &spec, const std::string &recompute) {
  mlir::MLIRContext context;
  GraphOptions options;
  options.seqLen = kSeq;
  options.microBatch = kBatch;
  mlir::OwningOpRef<mlir::ModuleOp> module = buildGraph(context, spec, options);
  mlir::PassManager pm(&context);
  TrainingPipelineOptions pipeline;
  pipeline.recompute = {recompute};
  buildTrainingPipeline(pm, pipeline);
  EXPECT_TRUE(mlir::succeeded(pm.run(*module)));
  TrainingConfig training;
  training.set_seq_len(kSeq);
  training.set_micro_batch(kBatch);
  training.set_micro_batches(1);
  std::optional<Plan> plan = buildPlan(*module, spec, training);
  EXPECT_TRUE(plan);
  return plan ? plan->memory().boundary_activation_bytes() : -1;
}

/// The analytic savings, in bytes, for N = batch * seq tokens of 4-byte values.
struct Savings {
  int64_t rmsNorm, mlaUpProj, swiglu;
};

Savings analytic(const ModelSpec &s) {
  int64_t n = kBatch * kSeq, layers = s.num_layers() + s.mtp().depth();
  int64_t h = s.hidden_size();
  const AttentionSpec &a = s.attention();
  // Per layer: input and post-attention norms, the q_a and kv_a norms, each
  // with its saved 1/rms per token.
  int64_t perLayer = 2 * (h + 1) + (a.kv_lora_rank() + 1) +
                     (a.q_lora_rank() > 0 ? a.q_lora_rank() + 1 : 0);
  // The final norm; per MTP depth enorm, hnorm and shared_head.norm.
  int64_t outer = (1 + 3 * s.mtp().depth()) * (h + 1);
  // kv_b_proj gives k_nope and v; q_b_proj (only with query compression)
  // gives q_nope and q_pe, rotated.
  int64_t mla = a.num_heads() * (a.qk_nope_head_dim() + a.v_head_dim());
  if (a.q_lora_rank() > 0)
    mla += a.num_heads() * (a.qk_nope_head_dim() + a.qk_rope_head_dim());
  return {4 * n * (layers * perLayer + outer), 4 * n * layers * mla,
          4 * n * s.num_dense_layers() * s.dense_ffn_size()};
}

void checkModel(const std::string &name) {
  std::string error;
  std::optional<ModelSpec> spec =
      loadModelSpec(std::string(DSFLOW_MODELS_DIR) + "/" + name, error);
  ASSERT_TRUE(spec) << error;
  spec->set_precision(FP32);
  Savings expected = analytic(*spec);
  int64_t none = boundaryBytes(*spec, "none");
  EXPECT_EQ(none - boundaryBytes(*spec, "rmsnorm"), expected.rmsNorm) << name;
  EXPECT_EQ(none - boundaryBytes(*spec, "mla_up_proj"), expected.mlaUpProj)
      << name;
  EXPECT_EQ(none - boundaryBytes(*spec, "swiglu"), expected.swiglu) << name;
  EXPECT_EQ(none - boundaryBytes(*spec, "all"),
            expected.rmsNorm + expected.mlaUpProj + expected.swiglu)
      << name;
}

TEST(RecomputeMemory, TinyV3MatchesAnalyticCount) { checkModel("tiny-v3.pbtxt"); }
TEST(RecomputeMemory, TinyLiteMatchesAnalyticCount) {
  checkModel("tiny-lite.pbtxt");
}
TEST(RecomputeMemory, SmallV3MatchesAnalyticCount) {
  checkModel("small-v3.pbtxt");
}

} // namespace
} // namespace dsflow
