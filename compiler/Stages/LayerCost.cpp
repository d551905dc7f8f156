//===- LayerCost.cpp - Estimated compute of each part of a model ----------===//
#include "Stages/LayerCost.h"

namespace dsflow::stages {

/// MLA per token: query (optionally low-rank), compressed key/value and rope
/// key, their up-projections, the output projection, and the attention core
/// over on average half the sequence (causal).
static double attentionCost(const ModelSpec &spec, int64_t seqLen) {
  const AttentionSpec &a = spec.attention();
  double h = double(spec.hidden_size()), heads = double(a.num_heads());
  double qkHead = double(a.qk_nope_head_dim() + a.qk_rope_head_dim());
  double query = a.q_lora_rank() > 0
                     ? h * double(a.q_lora_rank()) +
                           double(a.q_lora_rank()) * heads * qkHead
                     : h * heads * qkHead;
  double keyValue = h * double(a.kv_lora_rank() + a.qk_rope_head_dim()) +
                    double(a.kv_lora_rank()) * heads *
                        double(a.qk_nope_head_dim() + a.v_head_dim());
  double output = heads * double(a.v_head_dim()) * h;
  double core =
      double(seqLen) / 2.0 * heads * (qkHead + double(a.v_head_dim()));
  return query + keyValue + output + core;
}

/// SwiGLU: gate, up and down projections.
static double ffnCost(double hidden, double inter) {
  return 3.0 * hidden * inter;
}

static double moeCost(const ModelSpec &spec) {
  const MoeSpec &m = spec.moe();
  double h = double(spec.hidden_size());
  return h * double(m.num_routed_experts()) +
         double(m.experts_per_token() + m.num_shared_experts()) *
             ffnCost(h, double(m.expert_ffn_size()));
}

ModelCosts estimateCosts(const ModelSpec &spec, int64_t seqLen) {
  ModelCosts costs;
  double attention = attentionCost(spec, seqLen);
  double dense =
      ffnCost(double(spec.hidden_size()), double(spec.dense_ffn_size()));
  double moe = spec.moe().num_routed_experts() > 0 ? moeCost(spec) : dense;
  for (int64_t l = 0; l < spec.num_layers(); ++l)
    costs.layers.push_back(attention +
                           (l < spec.num_dense_layers() ? dense : moe));
  costs.head = double(spec.hidden_size()) * double(spec.vocab_size());
  // Each MTP module: the [2h -> h] projection, one MoE layer and the head.
  double h = double(spec.hidden_size());
  costs.mtp =
      double(spec.mtp().depth()) * (2.0 * h * h + attention + moe + costs.head);
  return costs;
}

} // namespace dsflow::stages
