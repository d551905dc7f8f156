//===- HfConfigReader.cpp - ModelSpec from Hugging Face config.json -------===//
//
// Reads the config.json of a Hugging Face DeepSeek-V3 checkpoint
// (model_type "deepseek_v3"). Keys that only concern inference or the Python
// implementation are accepted and ignored; any other unknown key is an error, so a
// typo never silently falls back to a default.
//
//===----------------------------------------------------------------------===//
#include "JsonSpecFields.h"

namespace dsflow {
namespace {

const JsonField kHfFields[] = {
    {"vocab_size", "vocab_size"},
    {"hidden_size", "hidden_size"},
    {"num_hidden_layers", "num_layers"},
    {"first_k_dense_replace", "num_dense_layers"},
    {"intermediate_size", "dense_ffn_size"},
    {"num_attention_heads", "attention.num_heads"},
    {"kv_lora_rank", "attention.kv_lora_rank"},
    {"qk_nope_head_dim", "attention.qk_nope_head_dim"},
    {"qk_rope_head_dim", "attention.qk_rope_head_dim"},
    {"v_head_dim", "attention.v_head_dim"},
    {"n_routed_experts", "moe.num_routed_experts"},
    {"n_shared_experts", "moe.num_shared_experts"},
    {"num_experts_per_tok", "moe.experts_per_token"},
    {"moe_intermediate_size", "moe.expert_ffn_size"},
    {"n_group", "moe.expert_groups"},
    {"topk_group", "moe.groups_per_token"},
    {"routed_scaling_factor", "moe.route_scale"},
    {"norm_topk_prob", "moe.normalize_topk"},
    {"num_nextn_predict_layers", "mtp.depth"},
    {"rope_theta", "rope.theta"},
    {"rms_norm_eps", "rms_norm_eps"},
    {"tie_word_embeddings", "tie_embeddings"},
    {"max_position_embeddings", "max_position_embeddings"},
    // Handled by hand below; listed so that errors use the JSON spelling.
    {"q_lora_rank", "attention.q_lora_rank"},
    {"scoring_func", "moe.score_function"},
    {"torch_dtype", "precision"},
};

const JsonField kYarnFields[] = {
    {"factor", "rope.yarn.factor"},
    {"original_max_position_embeddings", "rope.yarn.original_max_position"},
    {"beta_fast", "rope.yarn.beta_fast"},
    {"beta_slow", "rope.yarn.beta_slow"},
    {"mscale", "rope.yarn.mscale"},
    {"mscale_all_dim", "rope.yarn.mscale_all_dim"},
};

/// Keys with no bearing on the model's training graph.
const char *const kIgnoredKeys[] = {
    "architectures",     "auto_map",          "attention_dropout",
    "aux_loss_alpha",    "bos_token_id",      "eos_token_id",
    "ep_size",           "initializer_range", "pretraining_tp",
    "seq_aux",           "transformers_version", "use_cache",
    "pad_token_id",      "_name_or_path",     "output_router_logits",
};

bool isIgnored(llvm::StringRef key) {
  for (const char *ignored : kIgnoredKeys)
    if (key == ignored)
      return true;
  return false;
}

bool readRopeScaling(const llvm::json::Value &value, ModelSpec &spec,
                     std::string &error) {
  if (value.kind() == llvm::json::Value::Null)
    return true;
  const llvm::json::Object *scaling = value.getAsObject();
  if (!scaling) {
    error = "'rope_scaling': expected an object or null, got " +
            std::string(jsonKindName(value));
    return false;
  }
  for (const auto &[key, v] : *scaling) {
    if (key == "type" || key == "rope_type") {
      if (!readChoice(v, "rope_scaling." + key.str(), {"yarn"}, error))
        return false;
      continue;
    }
    const JsonField *field = findJsonField(kYarnFields, key);
    if (!field) {
      error = "'rope_scaling': unknown key '" + key.str() + "'";
      return false;
    }
    if (!setSpecField(spec, field->specPath, v, "rope_scaling." + key.str(),
                      error))
      return false;
  }
  return true;
}

bool readPrecision(const llvm::json::Value &value, ModelSpec &spec,
                   std::string &error) {
  if (!readChoice(value, "torch_dtype", {"bfloat16", "float32"}, error))
    return false;
  // An FP8 quantization_config seen earlier takes precedence.
  if (spec.precision() != FP8)
    spec.set_precision(*value.getAsString() == "float32" ? FP32 : BF16);
  return true;
}

bool readQuantization(const llvm::json::Value &value, ModelSpec &spec,
                      std::string &error) {
  const llvm::json::Object *quant = value.getAsObject();
  if (!quant) {
    error = "'quantization_config': expected an object, got " +
            std::string(jsonKindName(value));
    return false;
  }
  const llvm::json::Value *method = quant->get("quant_method");
  if (!method) {
    error = "'quantization_config': missing 'quant_method'";
    return false;
  }
  if (!readChoice(*method, "quantization_config.quant_method", {"fp8"},
                    error))
    return false;
  if (const llvm::json::Value *fmt = quant->get("fmt"))
    if (!readChoice(*fmt, "quantization_config.fmt", {"e4m3"}, error))
      return false;
  if (const llvm::json::Value *scale = quant->get("scale_fmt"))
    if (scale->kind() != llvm::json::Value::Null) {
      if (!readChoice(*scale, "quantization_config.scale_fmt", {"ue8m0"},
                        error))
        return false;
      spec.set_fp8_ue8m0_scales(true);
    }
  spec.set_precision(FP8);
  return true;
}

/// Keys read by hand: their JSON shape differs from the ModelSpec field.
bool readSpecialKey(llvm::StringRef key, const llvm::json::Value &value,
                    ModelSpec &spec, bool &handled, std::string &error) {
  handled = true;
  if (key == "model_type")
    return readChoice(value, key, {"deepseek_v3"}, error);
  if (key == "q_lora_rank") {
    // null means no query compression.
    if (value.kind() == llvm::json::Value::Null)
      return true;
    return setSpecField(spec, "attention.q_lora_rank", value, key, error);
  }
  if (key == "scoring_func") {
    if (!readChoice(value, key, {"sigmoid", "softmax"}, error))
      return false;
    spec.mutable_moe()->set_score_function(
        *value.getAsString() == "sigmoid" ? SIGMOID : SOFTMAX);
    return true;
  }
  if (key == "topk_method")
    return readChoice(value, key,
                        {"noaux_tc", "group_limited_greedy", "greedy"}, error);
  if (key == "hidden_act")
    return readChoice(value, key, {"silu"}, error);
  if (key == "rope_scaling")
    return readRopeScaling(value, spec, error);
  if (key == "torch_dtype")
    return readPrecision(value, spec, error);
  if (key == "quantization_config")
    return readQuantization(value, spec, error);
  if (key == "attention_bias") {
    if (value.getAsBoolean() == std::optional<bool>(false))
      return true;
    error = "'attention_bias': only false is supported (MLA has no biases)";
    return false;
  }
  if (key == "moe_layer_freq") {
    if (value.getAsInteger() == std::optional<int64_t>(1))
      return true;
    error = "'moe_layer_freq': only 1 is supported (every layer after "
            "first_k_dense_replace is MoE)";
    return false;
  }
  handled = false;
  return true;
}

} // namespace

bool readHfConfig(const llvm::json::Object &config, ModelSpec &spec,
                  std::string &error) {
  // The defaults of transformers' DeepseekV3Config where a key may be left out.
  spec.set_rms_norm_eps(1e-6);
  spec.mutable_rope()->set_theta(10000);
  spec.set_precision(BF16);
  spec.mutable_moe()->set_expert_groups(1);
  spec.mutable_moe()->set_groups_per_token(1);
  spec.mutable_moe()->set_route_scale(1.0);
  spec.mutable_moe()->set_score_function(SIGMOID);
  spec.mutable_moe()->set_normalize_topk(true);

  const llvm::json::Value *modelType = config.get("model_type");
  if (!modelType) {
    error = "'model_type': missing (expected \"deepseek_v3\")";
    return false;
  }
  // num_key_value_heads must equal the head count: MLA has no grouped KV heads.
  if (const llvm::json::Value *kvHeads = config.get("num_key_value_heads"))
    if (kvHeads->getAsInteger() != config.getInteger("num_attention_heads")) {
      error = "'num_key_value_heads': must equal num_attention_heads (MLA "
              "has no grouped key/value heads)";
      return false;
    }

  for (const auto &[key, value] : config) {
    bool handled = false;
    if (!readSpecialKey(key, value, spec, handled, error))
      return false;
    if (handled || key == "num_key_value_heads" || isIgnored(key))
      continue;
    const JsonField *field = findJsonField(kHfFields, key);
    if (!field) {
      error = "'" + key.str() + "': unknown key for a deepseek_v3 config";
      return false;
    }
    if (!setSpecField(spec, field->specPath, value, key, error))
      return false;
  }
  return true;
}

FieldNamer hfConfigNamer() {
  return [top = namerFromTable(kHfFields),
          yarn = namerFromTable(kYarnFields)](llvm::StringRef specPath) {
    if (specPath.starts_with("rope.yarn."))
      return "rope_scaling." + yarn(specPath);
    return top(specPath);
  };
}

} // namespace dsflow
