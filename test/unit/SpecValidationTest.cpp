//===- SpecValidationTest.cpp - One test per ModelSpec validation rule ----===//
//
// Each test breaks one rule of docs/model-descriptions.md in an otherwise valid
// description (models/tiny-v3.pbtxt) and checks the one-line error names the file,
// the field and the rule.
//
//===----------------------------------------------------------------------===//
#include "SpecTestUtil.h"

#include <google/protobuf/text_format.h>

#include <functional>

namespace dsflow::test {
namespace {

ModelSpec tinyV3() {
  std::string error;
  std::optional<ModelSpec> spec =
      loadModelSpec(modelPath("tiny-v3.pbtxt"), error);
  EXPECT_TRUE(spec.has_value()) << error;
  return spec.value_or(ModelSpec());
}

/// Applies `mutate` to tiny-v3, prints it as text proto and expects the error.
void expectRuleBroken(const std::function<void(ModelSpec &)> &mutate,
                      std::initializer_list<std::string> parts) {
  ModelSpec spec = tinyV3();
  mutate(spec);
  std::string text;
  google::protobuf::TextFormat::PrintToString(spec, &text);
  expectError(text, "broken.pbtxt", parts);
}

TEST(SpecValidation, TinyV3IsValid) {
  std::string error;
  EXPECT_TRUE(loadModelSpec(modelPath("tiny-v3.pbtxt"), error)) << error;
}

TEST(SpecValidation, ZeroVocabulary) {
  expectRuleBroken([](ModelSpec &s) { s.set_vocab_size(0); },
                   {"vocab_size", "must be a positive integer, got 0"});
}
TEST(SpecValidation, NegativeHiddenSize) {
  expectRuleBroken([](ModelSpec &s) { s.set_hidden_size(-64); },
                   {"hidden_size", "must be a positive integer, got -64"});
}
TEST(SpecValidation, ZeroLayers) {
  expectRuleBroken([](ModelSpec &s) { s.set_num_layers(0); },
                   {"num_layers", "must be a positive integer"});
}
TEST(SpecValidation, MoreDenseLayersThanLayers) {
  expectRuleBroken([](ModelSpec &s) { s.set_num_dense_layers(5); },
                   {"num_dense_layers", "must not exceed num_layers (4), got 5"});
}
TEST(SpecValidation, NegativeDenseLayers) {
  expectRuleBroken([](ModelSpec &s) { s.set_num_dense_layers(-1); },
                   {"num_dense_layers", "must not be negative"});
}
TEST(SpecValidation, DenseLayersWithoutFfnSize) {
  expectRuleBroken([](ModelSpec &s) { s.set_dense_ffn_size(0); },
                   {"dense_ffn_size", "must be a positive integer"});
}
TEST(SpecValidation, ZeroNormEpsilon) {
  expectRuleBroken([](ModelSpec &s) { s.set_rms_norm_eps(0); },
                   {"rms_norm_eps", "must be a positive number, got 0"});
}
TEST(SpecValidation, PrecisionUnset) {
  expectRuleBroken([](ModelSpec &s) { s.clear_precision(); },
                   {"precision", "must be set"});
}
TEST(SpecValidation, Ue8m0ScalesWithoutFp8) {
  expectRuleBroken([](ModelSpec &s) { s.set_fp8_ue8m0_scales(true); },
                   {"fp8_ue8m0_scales", "needs precision FP8"});
}
TEST(SpecValidation, NegativeMtpDepth) {
  expectRuleBroken([](ModelSpec &s) { s.mutable_mtp()->set_depth(-1); },
                   {"mtp.depth", "must not be negative"});
}
TEST(SpecValidation, NegativeMaxPositions) {
  expectRuleBroken([](ModelSpec &s) { s.set_max_position_embeddings(-1); },
                   {"max_position_embeddings", "must not be negative"});
}

TEST(SpecValidation, ZeroHeads) {
  expectRuleBroken([](ModelSpec &s) { s.mutable_attention()->set_num_heads(0); },
                   {"attention.num_heads", "must be a positive integer"});
}
TEST(SpecValidation, NegativeQLoraRank) {
  expectRuleBroken(
      [](ModelSpec &s) { s.mutable_attention()->set_q_lora_rank(-1); },
      {"attention.q_lora_rank", "must not be negative"});
}
TEST(SpecValidation, ZeroKvLoraRank) {
  expectRuleBroken(
      [](ModelSpec &s) { s.mutable_attention()->set_kv_lora_rank(0); },
      {"attention.kv_lora_rank", "must be a positive integer"});
}
TEST(SpecValidation, ZeroNopeHeadDim) {
  expectRuleBroken(
      [](ModelSpec &s) { s.mutable_attention()->set_qk_nope_head_dim(0); },
      {"attention.qk_nope_head_dim", "must be a positive integer"});
}
TEST(SpecValidation, OddRopeHeadDim) {
  expectRuleBroken(
      [](ModelSpec &s) { s.mutable_attention()->set_qk_rope_head_dim(7); },
      {"attention.qk_rope_head_dim", "must be even", "got 7"});
}
TEST(SpecValidation, ZeroValueHeadDim) {
  expectRuleBroken(
      [](ModelSpec &s) { s.mutable_attention()->set_v_head_dim(0); },
      {"attention.v_head_dim", "must be a positive integer"});
}

TEST(SpecValidation, MoeLayersWithoutExperts) {
  expectRuleBroken(
      [](ModelSpec &s) { s.mutable_moe()->set_num_routed_experts(0); },
      {"moe.num_routed_experts", "layers 2 to 3 are MoE layers"});
}
TEST(SpecValidation, AllDenseModelNeedsNoExperts) {
  ModelSpec spec = tinyV3();
  spec.set_num_dense_layers(spec.num_layers());
  spec.clear_moe();
  std::string text, error;
  google::protobuf::TextFormat::PrintToString(spec, &text);
  EXPECT_TRUE(parseModelSpec(text, "dense.pbtxt", error)) << error;
}
TEST(SpecValidation, NegativeSharedExperts) {
  expectRuleBroken(
      [](ModelSpec &s) { s.mutable_moe()->set_num_shared_experts(-1); },
      {"moe.num_shared_experts", "must not be negative"});
}
TEST(SpecValidation, ZeroExpertFfnSize) {
  expectRuleBroken(
      [](ModelSpec &s) { s.mutable_moe()->set_expert_ffn_size(0); },
      {"moe.expert_ffn_size", "must be a positive integer"});
}
TEST(SpecValidation, ZeroRouteScale) {
  expectRuleBroken([](ModelSpec &s) { s.mutable_moe()->set_route_scale(0); },
                   {"moe.route_scale", "must be a positive number"});
}
TEST(SpecValidation, ScoreFunctionUnset) {
  expectRuleBroken([](ModelSpec &s) { s.mutable_moe()->clear_score_function(); },
                   {"moe.score_function", "must be set"});
}
TEST(SpecValidation, ZeroExpertsPerToken) {
  expectRuleBroken(
      [](ModelSpec &s) { s.mutable_moe()->set_experts_per_token(0); },
      {"moe.experts_per_token", "must be a positive integer"});
}
TEST(SpecValidation, ZeroExpertGroups) {
  expectRuleBroken([](ModelSpec &s) { s.mutable_moe()->set_expert_groups(0); },
                   {"moe.expert_groups", "must be a positive integer"});
}
TEST(SpecValidation, ExpertsNotDivisibleIntoGroups) {
  expectRuleBroken([](ModelSpec &s) { s.mutable_moe()->set_expert_groups(3); },
                   {"moe.expert_groups",
                    "8 routed experts do not divide into 3 equal groups"});
}
TEST(SpecValidation, GroupsPerTokenAboveGroups) {
  expectRuleBroken(
      [](ModelSpec &s) { s.mutable_moe()->set_groups_per_token(5); },
      {"moe.groups_per_token", "must not exceed moe.expert_groups (4), got 5"});
}
TEST(SpecValidation, ExpertsPerTokenAboveAllowedGroups) {
  expectRuleBroken(
      [](ModelSpec &s) { s.mutable_moe()->set_experts_per_token(5); },
      {"moe.experts_per_token",
       "5 experts per token exceed the 4 experts that 2 allowed groups of 2 "
       "hold"});
}
TEST(SpecValidation, SigmoidGroupsOfOneExpert) {
  expectRuleBroken(
      [](ModelSpec &s) {
        s.mutable_moe()->set_expert_groups(8);
        s.mutable_moe()->set_groups_per_token(2);
      },
      {"moe.expert_groups", "each group needs at least 2 experts"});
}

TEST(SpecValidation, ZeroRopeTheta) {
  expectRuleBroken([](ModelSpec &s) { s.mutable_rope()->set_theta(0); },
                   {"rope.theta", "must be a positive number"});
}
void setYarn(ModelSpec &s) {
  YarnSpec &yarn = *s.mutable_rope()->mutable_yarn();
  yarn.set_factor(4);
  yarn.set_original_max_position(128);
  yarn.set_beta_fast(32);
  yarn.set_beta_slow(1);
}
TEST(SpecValidation, YarnFactorBelowOne) {
  expectRuleBroken(
      [](ModelSpec &s) {
        setYarn(s);
        s.mutable_rope()->mutable_yarn()->set_factor(0.5);
      },
      {"rope.yarn.factor", "must be at least 1, got 0.5"});
}
TEST(SpecValidation, YarnWithoutOriginalLength) {
  expectRuleBroken(
      [](ModelSpec &s) {
        setYarn(s);
        s.mutable_rope()->mutable_yarn()->set_original_max_position(0);
      },
      {"rope.yarn.original_max_position", "must be a positive integer"});
}
TEST(SpecValidation, YarnBetasOutOfOrder) {
  expectRuleBroken(
      [](ModelSpec &s) {
        setYarn(s);
        s.mutable_rope()->mutable_yarn()->set_beta_fast(0.5);
      },
      {"rope.yarn.beta_fast", "must exceed rope.yarn.beta_slow (1), got 0.5"});
}
TEST(SpecValidation, YarnNegativeMscale) {
  expectRuleBroken(
      [](ModelSpec &s) {
        setYarn(s);
        s.mutable_rope()->mutable_yarn()->set_mscale(-1);
      },
      {"rope.yarn.mscale", "must not be negative"});
}

} // namespace
} // namespace dsflow::test
