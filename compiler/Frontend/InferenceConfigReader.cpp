//===- InferenceConfigReader.cpp - ModelSpec from DeepSeek's config JSON --===//
//
// Reads the config_*.json files of DeepSeek's inference code (DeepSeek-V3/inference).
// Keys left out take the defaults of that code's ModelArgs dataclass. That code has
// no MTP module, so mtp.depth is 0; it normalizes top-k weights only for sigmoid
// scores and applies YaRN whenever max_seq_len exceeds original_seq_len.
//
//===----------------------------------------------------------------------===//
#include "JsonSpecFields.h"

namespace dsflow {
namespace {

const JsonField kInferenceFields[] = {
    {"vocab_size", "vocab_size"},
    {"dim", "hidden_size"},
    {"inter_dim", "dense_ffn_size"},
    {"moe_inter_dim", "moe.expert_ffn_size"},
    {"n_layers", "num_layers"},
    {"n_dense_layers", "num_dense_layers"},
    {"n_heads", "attention.num_heads"},
    {"n_routed_experts", "moe.num_routed_experts"},
    {"n_shared_experts", "moe.num_shared_experts"},
    {"n_activated_experts", "moe.experts_per_token"},
    {"n_expert_groups", "moe.expert_groups"},
    {"n_limited_groups", "moe.groups_per_token"},
    {"route_scale", "moe.route_scale"},
    {"q_lora_rank", "attention.q_lora_rank"},
    {"kv_lora_rank", "attention.kv_lora_rank"},
    {"qk_nope_head_dim", "attention.qk_nope_head_dim"},
    {"qk_rope_head_dim", "attention.qk_rope_head_dim"},
    {"v_head_dim", "attention.v_head_dim"},
    {"max_seq_len", "max_position_embeddings"},
    {"original_seq_len", "rope.yarn.original_max_position"},
    {"rope_theta", "rope.theta"},
    {"rope_factor", "rope.yarn.factor"},
    {"beta_fast", "rope.yarn.beta_fast"},
    {"beta_slow", "rope.yarn.beta_slow"},
    {"mscale", "rope.yarn.mscale_all_dim"},
    // Handled by hand below; listed so that errors use the JSON spelling.
    {"score_func", "moe.score_function"},
    {"dtype", "precision"},
};

/// ModelArgs' defaults in DeepSeek's inference/model.py.
void setInferenceDefaults(ModelSpec &spec) {
  spec.set_vocab_size(102400);
  spec.set_hidden_size(2048);
  spec.set_dense_ffn_size(10944);
  spec.set_num_layers(27);
  spec.set_num_dense_layers(1);
  spec.set_max_position_embeddings(4096 * 4);
  spec.set_rms_norm_eps(1e-6);
  spec.set_precision(BF16);
  AttentionSpec &attn = *spec.mutable_attention();
  attn.set_num_heads(16);
  attn.set_q_lora_rank(0);
  attn.set_kv_lora_rank(512);
  attn.set_qk_nope_head_dim(128);
  attn.set_qk_rope_head_dim(64);
  attn.set_v_head_dim(128);
  MoeSpec &moe = *spec.mutable_moe();
  moe.set_num_routed_experts(64);
  moe.set_num_shared_experts(2);
  moe.set_experts_per_token(6);
  moe.set_expert_ffn_size(1408);
  moe.set_expert_groups(1);
  moe.set_groups_per_token(1);
  moe.set_route_scale(1.0);
  moe.set_score_function(SOFTMAX);
  RopeSpec &rope = *spec.mutable_rope();
  rope.set_theta(10000);
  YarnSpec &yarn = *rope.mutable_yarn();
  yarn.set_original_max_position(4096);
  yarn.set_factor(40);
  yarn.set_beta_fast(32);
  yarn.set_beta_slow(1);
  yarn.set_mscale_all_dim(1.0);
}

} // namespace

bool readInferenceConfig(const llvm::json::Object &config, ModelSpec &spec,
                         std::string &error) {
  setInferenceDefaults(spec);
  for (const auto &[key, value] : config) {
    llvm::StringRef choice;
    if (key == "score_func") {
      if (!readChoice(value, key, {"sigmoid", "softmax"}, error, &choice))
        return false;
      spec.mutable_moe()->set_score_function(choice == "sigmoid" ? SIGMOID
                                                                 : SOFTMAX);
    } else if (key == "dtype") {
      if (!readChoice(value, key, {"bf16", "fp8"}, error, &choice))
        return false;
      spec.set_precision(choice == "fp8" ? FP8 : BF16);
    } else if (key == "scale_fmt") {
      if (value.kind() == llvm::json::Value::Null)
        continue;
      if (!readChoice(value, key, {"ue8m0"}, error, &choice))
        return false;
      spec.set_fp8_ue8m0_scales(true);
    } else if (key == "max_batch_size") {
      continue; // An inference cache size: no bearing on training.
    } else if (const JsonField *field = findJsonField(kInferenceFields, key)) {
      if (!setSpecField(spec, field->specPath, value, key, error))
        return false;
    } else {
      error = "'" + key.str() + "': unknown key for a DeepSeek inference config";
      return false;
    }
  }
  // The inference code normalizes top-k weights for sigmoid scores only.
  spec.mutable_moe()->set_normalize_topk(spec.moe().score_function() ==
                                         SIGMOID);
  // Its rotary tables are not rescaled (mscale / mscale_all_dim = 1).
  YarnSpec &yarn = *spec.mutable_rope()->mutable_yarn();
  yarn.set_mscale(yarn.mscale_all_dim());
  if (spec.max_position_embeddings() <= yarn.original_max_position())
    spec.mutable_rope()->clear_yarn();
  return true;
}

FieldNamer inferenceConfigNamer() { return namerFromTable(kInferenceFields); }

} // namespace dsflow
