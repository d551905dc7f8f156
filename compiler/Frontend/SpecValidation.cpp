//===- SpecValidation.cpp - Consistency rules for a ModelSpec -------------===//
//
// The rules a description must satisfy before any graph is built. Each failure is
// reported as "FIELD: rule", FIELD spelled as the user wrote it. docs/model-descriptions.md
// lists the rules; test/unit/SpecValidationTest.cpp tests each one.
//
//===----------------------------------------------------------------------===//
#include "SpecReaders.h"

#include <cmath>

namespace dsflow {
namespace {

/// Collects the first broken rule.
class Checker {
public:
  explicit Checker(const FieldNamer &names) : names(names) {}

  /// Records "FIELD: message" unless `ok`; returns `ok`.
  bool check(bool ok, llvm::StringRef field, const std::string &message) {
    if (!ok && error.empty())
      error = names(field) + ": " + message;
    return ok;
  }
  bool positive(int64_t value, llvm::StringRef field) {
    return check(value > 0, field,
                 "must be a positive integer, got " + std::to_string(value) +
                     (value == 0 ? " (missing or zero)" : ""));
  }
  bool nonNegative(int64_t value, llvm::StringRef field) {
    return check(value >= 0, field,
                 "must not be negative, got " + std::to_string(value));
  }
  bool positive(double value, llvm::StringRef field) {
    return check(std::isfinite(value) && value > 0, field,
                 "must be a positive number, got " + number(value));
  }
  static std::string number(double value) {
    char buffer[32];
    std::snprintf(buffer, sizeof(buffer), "%g", value);
    return buffer;
  }

  std::string error;

private:
  const FieldNamer &names;
};

void checkSizes(const ModelSpec &spec, Checker &c) {
  c.positive(spec.vocab_size(), "vocab_size");
  c.positive(spec.hidden_size(), "hidden_size");
  c.positive(spec.num_layers(), "num_layers");
  c.nonNegative(spec.num_dense_layers(), "num_dense_layers");
  c.check(spec.num_dense_layers() <= spec.num_layers(), "num_dense_layers",
          "must not exceed num_layers (" + std::to_string(spec.num_layers()) +
              "), got " + std::to_string(spec.num_dense_layers()));
  if (spec.num_dense_layers() > 0)
    c.positive(spec.dense_ffn_size(), "dense_ffn_size");
  c.positive(spec.rms_norm_eps(), "rms_norm_eps");
  c.nonNegative(spec.max_position_embeddings(), "max_position_embeddings");
  c.check(spec.precision() != PRECISION_UNSPECIFIED, "precision",
          "must be set (FP32, BF16 or FP8)");
  c.check(!spec.fp8_ue8m0_scales() || spec.precision() == FP8,
          "fp8_ue8m0_scales", "needs precision FP8");
  c.nonNegative(spec.mtp().depth(), "mtp.depth");
}

void checkAttention(const AttentionSpec &attn, Checker &c) {
  c.positive(attn.num_heads(), "attention.num_heads");
  c.nonNegative(attn.q_lora_rank(), "attention.q_lora_rank");
  c.positive(attn.kv_lora_rank(), "attention.kv_lora_rank");
  c.positive(attn.qk_nope_head_dim(), "attention.qk_nope_head_dim");
  if (c.positive(attn.qk_rope_head_dim(), "attention.qk_rope_head_dim"))
    c.check(attn.qk_rope_head_dim() % 2 == 0, "attention.qk_rope_head_dim",
            "must be even (RoPE rotates pairs), got " +
                std::to_string(attn.qk_rope_head_dim()));
  c.positive(attn.v_head_dim(), "attention.v_head_dim");
}

void checkMoe(const ModelSpec &spec, Checker &c) {
  const MoeSpec &moe = spec.moe();
  bool hasMoeLayers = spec.num_dense_layers() < spec.num_layers();
  c.nonNegative(moe.num_routed_experts(), "moe.num_routed_experts");
  if (moe.num_routed_experts() == 0) {
    c.check(!hasMoeLayers, "moe.num_routed_experts",
            "must be positive: layers " +
                std::to_string(spec.num_dense_layers()) + " to " +
                std::to_string(spec.num_layers() - 1) + " are MoE layers");
    return;
  }
  c.nonNegative(moe.num_shared_experts(), "moe.num_shared_experts");
  c.positive(moe.expert_ffn_size(), "moe.expert_ffn_size");
  c.positive(moe.route_scale(), "moe.route_scale");
  c.check(moe.score_function() != SCORE_FUNCTION_UNSPECIFIED,
          "moe.score_function", "must be set (SIGMOID or SOFTMAX)");
  if (!c.positive(moe.experts_per_token(), "moe.experts_per_token") ||
      !c.positive(moe.expert_groups(), "moe.expert_groups") ||
      !c.positive(moe.groups_per_token(), "moe.groups_per_token"))
    return;
  int64_t experts = moe.num_routed_experts(), groups = moe.expert_groups();
  if (!c.check(experts % groups == 0, "moe.expert_groups",
               std::to_string(experts) + " routed experts do not divide into " +
                   std::to_string(groups) + " equal groups"))
    return;
  if (!c.check(moe.groups_per_token() <= groups, "moe.groups_per_token",
               "must not exceed moe.expert_groups (" + std::to_string(groups) +
                   "), got " + std::to_string(moe.groups_per_token())))
    return;
  int64_t reachable = moe.groups_per_token() * (experts / groups);
  c.check(moe.experts_per_token() <= reachable, "moe.experts_per_token",
          std::to_string(moe.experts_per_token()) +
              " experts per token exceed the " + std::to_string(reachable) +
              " experts that " + std::to_string(moe.groups_per_token()) +
              " allowed groups of " + std::to_string(experts / groups) +
              " hold");
  // Sigmoid group scores are the sum of each group's top two experts.
  c.check(moe.score_function() != SIGMOID || groups == 1 ||
              experts / groups >= 2,
          "moe.expert_groups",
          "with sigmoid scores each group needs at least 2 experts (group "
          "score = sum of its top 2), got " +
              std::to_string(experts / groups));
}

void checkRope(const RopeSpec &rope, Checker &c) {
  c.positive(rope.theta(), "rope.theta");
  if (!rope.has_yarn())
    return;
  const YarnSpec &yarn = rope.yarn();
  c.check(std::isfinite(yarn.factor()) && yarn.factor() >= 1, "rope.yarn.factor",
          "must be at least 1, got " + Checker::number(yarn.factor()));
  c.positive(yarn.original_max_position(), "rope.yarn.original_max_position");
  c.positive(yarn.beta_slow(), "rope.yarn.beta_slow");
  c.check(yarn.beta_fast() > yarn.beta_slow(), "rope.yarn.beta_fast",
          "must exceed rope.yarn.beta_slow (" +
              Checker::number(yarn.beta_slow()) + "), got " +
              Checker::number(yarn.beta_fast()));
  c.check(yarn.mscale() >= 0 && yarn.mscale_all_dim() >= 0, "rope.yarn.mscale",
          "must not be negative");
}

} // namespace

bool validateSpec(const ModelSpec &spec, const FieldNamer &names,
                  std::string &error) {
  Checker c(names);
  checkSizes(spec, c);
  checkAttention(spec.attention(), c);
  checkMoe(spec, c);
  checkRope(spec.rope(), c);
  error = c.error;
  return error.empty();
}

} // namespace dsflow
