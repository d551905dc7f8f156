//===- ModelSpecReaderTest.cpp - The three model description readers -----===//
#include "SpecTestUtil.h"

#include <google/protobuf/util/message_differencer.h>

namespace dsflow::test {
namespace {

ModelSpec load(const std::string &path) {
  std::string error;
  std::optional<ModelSpec> spec = loadModelSpec(path, error);
  EXPECT_TRUE(spec.has_value()) << error;
  return spec.value_or(ModelSpec());
}

std::string configPath(const std::string &name) {
  return modelPath("configs/" + name);
}

//===----------------------------------------------------------------------===//
// Hugging Face config.json
//===----------------------------------------------------------------------===//

TEST(HfConfigReader, DeepSeekV3) {
  ModelSpec s = load(configPath("hf_config_DeepSeek-V3.json"));
  EXPECT_EQ(s.vocab_size(), 129280);
  EXPECT_EQ(s.hidden_size(), 7168);
  EXPECT_EQ(s.num_layers(), 61);
  EXPECT_EQ(s.num_dense_layers(), 3);
  EXPECT_EQ(s.dense_ffn_size(), 18432);
  EXPECT_EQ(s.attention().num_heads(), 128);
  EXPECT_EQ(s.attention().q_lora_rank(), 1536);
  EXPECT_EQ(s.attention().kv_lora_rank(), 512);
  EXPECT_EQ(s.attention().qk_nope_head_dim(), 128);
  EXPECT_EQ(s.attention().qk_rope_head_dim(), 64);
  EXPECT_EQ(s.attention().v_head_dim(), 128);
  EXPECT_EQ(s.moe().num_routed_experts(), 256);
  EXPECT_EQ(s.moe().num_shared_experts(), 1);
  EXPECT_EQ(s.moe().experts_per_token(), 8);
  EXPECT_EQ(s.moe().expert_ffn_size(), 2048);
  EXPECT_EQ(s.moe().expert_groups(), 8);
  EXPECT_EQ(s.moe().groups_per_token(), 4);
  EXPECT_DOUBLE_EQ(s.moe().route_scale(), 2.5);
  EXPECT_EQ(s.moe().score_function(), SIGMOID);
  EXPECT_TRUE(s.moe().normalize_topk());
  EXPECT_EQ(s.mtp().depth(), 1);
  EXPECT_DOUBLE_EQ(s.rope().theta(), 10000);
  EXPECT_DOUBLE_EQ(s.rope().yarn().factor(), 40);
  EXPECT_EQ(s.rope().yarn().original_max_position(), 4096);
  EXPECT_DOUBLE_EQ(s.rope().yarn().beta_fast(), 32);
  EXPECT_DOUBLE_EQ(s.rope().yarn().mscale_all_dim(), 1.0);
  EXPECT_DOUBLE_EQ(s.rms_norm_eps(), 1e-6);
  EXPECT_FALSE(s.tie_embeddings());
  EXPECT_EQ(s.precision(), FP8); // quantization_config: fp8, e4m3
  EXPECT_EQ(s.max_position_embeddings(), 163840);
}

TEST(HfConfigReader, NullQLoraRankMeansNoCompression) {
  std::string text = readFile(configPath("hf_config_DeepSeek-V3.json"));
  text.replace(text.find("\"q_lora_rank\": 1536"), 19, "\"q_lora_rank\": null");
  std::string error;
  std::optional<ModelSpec> s = parseModelSpec(text, "config.json", error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->attention().q_lora_rank(), 0);
}

/// Replaces the first occurrence of `from` in the bundled V3 config.
std::string hfConfigWith(const std::string &from, const std::string &to) {
  std::string text = readFile(configPath("hf_config_DeepSeek-V3.json"));
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

TEST(HfConfigReader, UnknownKey) {
  expectError(hfConfigWith("\"hidden_act\"", "\"hidden_actt\""), "config.json",
              {"'hidden_actt': unknown key for a deepseek_v3 config"});
}
TEST(HfConfigReader, WrongType) {
  expectError(hfConfigWith("\"hidden_size\": 7168", "\"hidden_size\": \"7168\""),
              "config.json", {"'hidden_size': expected an integer, got a string"});
}
TEST(HfConfigReader, FractionalInteger) {
  expectError(hfConfigWith("\"n_group\": 8", "\"n_group\": 8.5"), "config.json",
              {"'n_group': expected an integer, got a number"});
}
TEST(HfConfigReader, WrongModelType) {
  expectError(hfConfigWith("\"deepseek_v3\"", "\"llama\""), "config.json",
              {"'model_type': unsupported value 'llama'", "deepseek_v3"});
}
TEST(HfConfigReader, MissingModelType) {
  expectError(hfConfigWith("\"model_type\": \"deepseek_v3\",", ""),
              "config.json", {"'model_type': missing"});
}
TEST(HfConfigReader, UnsupportedScoringFunction) {
  expectError(hfConfigWith("\"sigmoid\"", "\"relu\""), "config.json",
              {"'scoring_func': unsupported value 'relu'"});
}
TEST(HfConfigReader, GroupedKvHeadsRejected) {
  expectError(hfConfigWith("\"num_key_value_heads\": 128",
                           "\"num_key_value_heads\": 8"),
              "config.json", {"'num_key_value_heads': must equal"});
}
TEST(HfConfigReader, UnsupportedRopeScaling) {
  expectError(hfConfigWith("\"type\": \"yarn\"", "\"type\": \"linear\""),
              "config.json", {"'rope_scaling.type': unsupported value 'linear'"});
}
TEST(HfConfigReader, ValidationUsesJsonNames) {
  expectError(hfConfigWith("\"topk_group\": 4", "\"topk_group\": 9"),
              "config.json",
              {"topk_group (moe.groups_per_token): must not exceed "
               "moe.expert_groups (8), got 9"});
}
TEST(HfConfigReader, InvalidJson) {
  expectError(hfConfigWith("\"hidden_size\": 7168,", "\"hidden_size\": 7168,,"),
              "config.json", {"not valid JSON"});
}
TEST(HfConfigReader, TopLevelArray) {
  expectError("[1, 2]", "config.json", {"expected a JSON object"});
}

//===----------------------------------------------------------------------===//
// DeepSeek inference config JSON
//===----------------------------------------------------------------------===//

TEST(InferenceConfigReader, SameArchitectureAsHfConfig) {
  ModelSpec hf = load(configPath("hf_config_DeepSeek-V3.json"));
  ModelSpec inference = load(configPath("inference_config_671B.json"));
  // The inference code has no MTP module and a shorter default context.
  EXPECT_EQ(inference.mtp().depth(), 0);
  EXPECT_EQ(inference.max_position_embeddings(), 16384);
  inference.set_name(hf.name());
  *inference.mutable_mtp() = hf.mtp();
  inference.set_max_position_embeddings(hf.max_position_embeddings());
  std::string diff;
  google::protobuf::util::MessageDifferencer differ;
  differ.ReportDifferencesToString(&diff);
  EXPECT_TRUE(differ.Compare(hf, inference)) << diff;
}

TEST(InferenceConfigReader, DeepSeekV2Lite16B) {
  ModelSpec s = load(configPath("inference_config_16B.json"));
  EXPECT_EQ(s.hidden_size(), 2048);
  EXPECT_EQ(s.attention().q_lora_rank(), 0);
  EXPECT_EQ(s.moe().score_function(), SOFTMAX); // ModelArgs' default
  EXPECT_FALSE(s.moe().normalize_topk());       // only for sigmoid
  EXPECT_EQ(s.moe().expert_groups(), 1);
  EXPECT_EQ(s.moe().num_shared_experts(), 2);
  EXPECT_DOUBLE_EQ(s.rope().yarn().mscale_all_dim(), 0.707);
  EXPECT_EQ(s.precision(), BF16);
}

TEST(InferenceConfigReader, DeepSeekV2With236B) {
  ModelSpec s = load(configPath("inference_config_236B.json"));
  EXPECT_EQ(s.moe().expert_groups(), 8);
  EXPECT_EQ(s.moe().groups_per_token(), 3);
  EXPECT_DOUBLE_EQ(s.moe().route_scale(), 16.0);
  EXPECT_EQ(s.attention().q_lora_rank(), 1536);
}

TEST(InferenceConfigReader, V31Ue8m0Scales) {
  ModelSpec s = load(configPath("inference_config_v3.1.json"));
  EXPECT_EQ(s.precision(), FP8);
  EXPECT_TRUE(s.fp8_ue8m0_scales());
}

TEST(InferenceConfigReader, UnknownKey) {
  expectError("{\"dim\": 64, \"n_layerz\": 2}", "cfg.json",
              {"'n_layerz': unknown key for a DeepSeek inference config"});
}
TEST(InferenceConfigReader, WrongType) {
  expectError("{\"dim\": true}", "cfg.json",
              {"'dim': expected an integer, got a boolean"});
}
TEST(InferenceConfigReader, UnsupportedDtype) {
  expectError("{\"dtype\": \"int4\"}", "cfg.json",
              {"'dtype': unsupported value 'int4'"});
}
TEST(InferenceConfigReader, ValidationUsesJsonNames) {
  expectError("{\"n_routed_experts\": 64, \"n_expert_groups\": 5}", "cfg.json",
              {"n_expert_groups (moe.expert_groups): 64 routed experts do not "
               "divide into 5 equal groups"});
}

//===----------------------------------------------------------------------===//
// Text proto and files
//===----------------------------------------------------------------------===//

TEST(TextSpecReader, BundledModelsLoad) {
  for (const char *name :
       {"tiny-v3.pbtxt", "tiny-lite.pbtxt", "small-v3.pbtxt",
        "deepseek-v3-671b.pbtxt", "deepseek-v2-lite-16b.pbtxt"})
    load(modelPath(name));
}

TEST(TextSpecReader, Bundled671BMatchesHfConfig) {
  ModelSpec pbtxt = load(modelPath("deepseek-v3-671b.pbtxt"));
  ModelSpec hf = load(configPath("hf_config_DeepSeek-V3.json"));
  hf.set_name(pbtxt.name());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(pbtxt, hf));
}

TEST(TextSpecReader, UnknownField) {
  expectError("vocab_size: 256\nhiden_size: 64\n", "m.pbtxt",
              {"line 2:", "no field named \"hiden_size\""});
}
TEST(TextSpecReader, WrongType) {
  expectError("vocab_size: \"many\"\n", "m.pbtxt",
              {"line 1:", "Expected integer"});
}
TEST(TextSpecReader, Malformed) {
  expectError("attention { num_heads: 4\n", "m.pbtxt", {"line"});
}
TEST(TextSpecReader, FieldRepeated) {
  expectError("vocab_size: 1\nvocab_size: 2\n", "m.pbtxt",
              {"line 2:", "vocab_size"});
}
TEST(ModelSpecLoader, UnreadableFile) {
  std::string error;
  EXPECT_FALSE(loadModelSpec("/nonexistent/model.pbtxt", error));
  EXPECT_EQ(error.rfind("/nonexistent/model.pbtxt: cannot read model "
                        "description",
                        0),
            0u)
      << error;
}
TEST(ModelSpecLoader, NameDefaultsToFileStem) {
  std::string text = readFile(modelPath("tiny-v3.pbtxt"));
  text.erase(text.find("name: \"tiny-v3\""), 15);
  std::string error;
  std::optional<ModelSpec> s = parseModelSpec(text, "dir/my-model.pbtxt", error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->name(), "my-model");
}

} // namespace
} // namespace dsflow::test
