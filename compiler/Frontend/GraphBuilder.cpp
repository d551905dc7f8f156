//===- GraphBuilder.cpp - ModelSpec -> graph dialect ----------------------===//
//
// Builds the forward graph of a DeepSeek-V3-style model the way the Hugging Face
// implementation (modeling_deepseek.py) computes it, so that parameter names and
// shapes match the checkpoint tensor for tensor. MTP module k is stored as layer
// num_layers + k - 1; it shares the embedding and output head with the main model.
//
//===----------------------------------------------------------------------===//
#include "GraphBuilder.h"

#include "Graph/IR/GraphDialect.h"
#include "Graph/IR/GraphOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

#include <cmath>

using namespace mlir;

namespace dsflow {
namespace {

/// YaRN's attention-logit scale (yarn_get_mscale in modeling_deepseek.py).
double yarnMscale(double factor, double mscale) {
  return factor <= 1 ? 1.0 : 0.1 * mscale * std::log(factor) + 1.0;
}

class GraphBuilder {
public:
  GraphBuilder(MLIRContext &context, const ModelSpec &spec,
               const GraphOptions &options)
      : b(&context), loc(b.getUnknownLoc()), spec(spec), options(options),
        elt(options.float64               ? Type(b.getF64Type())
            : spec.precision() == FP32 ? Type(b.getF32Type())
                                       : Type(b.getBF16Type())),
        wide(options.float64 ? Type(b.getF64Type()) : Type(b.getF32Type())),
        batch(options.microBatch), seq(options.seqLen),
        hidden(spec.hidden_size()) {}

  OwningOpRef<ModuleOp> build();

private:
  RankedTensorType tensor(ArrayRef<int64_t> shape, Type type = {}) {
    return RankedTensorType::get(shape, type ? type : elt);
  }
  Value param(const std::string &name, ArrayRef<int64_t> shape,
              Type type = {}, bool noGrad = false) {
    return graph::ParamOp::create(b, loc, tensor(shape, type), name, noGrad);
  }
  Value rmsNorm(Value x, const std::string &weightName) {
    int64_t dim = cast<RankedTensorType>(x.getType()).getShape().back();
    return graph::RmsNormOp::create(b, loc, x.getType(), x,
                                      param(weightName, {dim}),
                                      b.getF64FloatAttr(spec.rms_norm_eps()));
  }
  /// x [..., K] times the checkpoint weight `name` [out, K].
  Value linear(Value x, const std::string &name, int64_t out) {
    auto type = cast<RankedTensorType>(x.getType());
    SmallVector<int64_t> shape(type.getShape().drop_back());
    shape.push_back(out);
    return graph::LinearOp::create(
        b, loc, tensor(shape), x, param(name, {out, type.getShape().back()}));
  }
  Value reshape(Value x, ArrayRef<int64_t> shape) {
    return graph::ReshapeOp::create(b, loc, tensor(shape), x);
  }
  /// Splits the last dimension of x into pieces of the given sizes.
  SmallVector<Value> split(Value x, ArrayRef<int64_t> sizes) {
    auto shape = cast<RankedTensorType>(x.getType()).getShape();
    SmallVector<Type> types;
    for (int64_t size : sizes) {
      SmallVector<int64_t> piece(shape.drop_back());
      piece.push_back(size);
      types.push_back(tensor(piece));
    }
    auto op = graph::SplitOp::create(b, loc, types, x);
    return SmallVector<Value>(op.getResults());
  }
  Value tokenWindow(Value tokens, int64_t offset) {
    return graph::TokenWindowOp::create(
        b, loc, RankedTensorType::get({batch, seq}, b.getI32Type()), tokens,
        offset);
  }

  Value rope(Value x);
  double softmaxScale() const;
  Value attention(Value x, const std::string &prefix);
  Value denseFfn(Value x, const std::string &prefix);
  Value moe(Value x, const std::string &prefix);
  Value decoderLayer(Value h, int64_t layer);
  bool isMoeLayer(int64_t layer) const {
    return spec.moe().num_routed_experts() > 0 &&
           layer >= spec.num_dense_layers();
  }
  static std::string layerPrefix(int64_t layer) {
    return "model.layers." + std::to_string(layer) + ".";
  }

  OpBuilder b;
  Location loc;
  const ModelSpec &spec;
  const GraphOptions &options;
  Type elt;
  /// The router's and the losses' type: FP32 (FP64 in float64 mode).
  Type wide;
  /// One sequence-wise balance loss per MoE layer, summed into the total.
  SmallVector<Value> balanceLosses;
  int64_t batch, seq, hidden;
};

Value GraphBuilder::rope(Value x) {
  auto op = graph::RopeOp::create(b, loc, x.getType(), x,
                                    b.getF64FloatAttr(spec.rope().theta()),
                                    nullptr, nullptr, nullptr, nullptr);
  if (spec.rope().has_yarn()) {
    const YarnSpec &yarn = spec.rope().yarn();
    op.setYarnFactorAttr(b.getF64FloatAttr(yarn.factor()));
    op.setYarnOriginalMaxPositionAttr(
        b.getI64IntegerAttr(yarn.original_max_position()));
    op.setYarnBetaFastAttr(b.getF64FloatAttr(yarn.beta_fast()));
    op.setYarnBetaSlowAttr(b.getF64FloatAttr(yarn.beta_slow()));
  }
  return op;
}

double GraphBuilder::softmaxScale() const {
  const AttentionSpec &attn = spec.attention();
  double scale =
      1.0 / std::sqrt(double(attn.qk_nope_head_dim() + attn.qk_rope_head_dim()));
  if (spec.rope().has_yarn() && spec.rope().yarn().mscale_all_dim() != 0) {
    double m = yarnMscale(spec.rope().yarn().factor(),
                          spec.rope().yarn().mscale_all_dim());
    scale *= m * m;
  }
  return scale;
}

Value GraphBuilder::attention(Value x, const std::string &prefix) {
  const AttentionSpec &attn = spec.attention();
  int64_t heads = attn.num_heads(), nope = attn.qk_nope_head_dim(),
          ropeDim = attn.qk_rope_head_dim(), vDim = attn.v_head_dim(),
          kvRank = attn.kv_lora_rank();
  std::string p = prefix + "self_attn.";

  // Queries, through the low-rank compression when q_lora_rank > 0.
  Value q;
  if (attn.q_lora_rank() > 0) {
    Value qa = linear(x, p + "q_a_proj.weight", attn.q_lora_rank());
    q = linear(rmsNorm(qa, p + "q_a_layernorm.weight"), p + "q_b_proj.weight",
               heads * (nope + ropeDim));
  } else {
    q = linear(x, p + "q_proj.weight", heads * (nope + ropeDim));
  }
  SmallVector<Value> qParts =
      split(reshape(q, {batch, seq, heads, nope + ropeDim}), {nope, ropeDim});

  // Keys and values from one compressed latent, plus one shared rotary key.
  Value kvA = linear(x, p + "kv_a_proj_with_mqa.weight", kvRank + ropeDim);
  SmallVector<Value> kvParts = split(kvA, {kvRank, ropeDim});
  Value kPe = rope(reshape(kvParts[1], {batch, seq, 1, ropeDim}));
  Value kv = linear(rmsNorm(kvParts[0], p + "kv_a_layernorm.weight"),
                    p + "kv_b_proj.weight", heads * (nope + vDim));
  SmallVector<Value> kvHeads =
      split(reshape(kv, {batch, seq, heads, nope + vDim}), {nope, vDim});

  Value out = graph::MlaAttentionOp::create(
      b, loc, tensor({batch, seq, heads, vDim}), qParts[0], rope(qParts[1]),
      kvHeads[0], kPe, kvHeads[1], b.getF64FloatAttr(softmaxScale()));
  return linear(reshape(out, {batch, seq, heads * vDim}), p + "o_proj.weight",
                hidden);
}

Value GraphBuilder::denseFfn(Value x, const std::string &prefix) {
  std::string p = prefix + "mlp.";
  int64_t ffn = spec.dense_ffn_size();
  Value gate = linear(x, p + "gate_proj.weight", ffn);
  Value up = linear(x, p + "up_proj.weight", ffn);
  Value act = graph::SwigluOp::create(b, loc, gate.getType(), gate, up);
  return linear(act, p + "down_proj.weight", hidden);
}

Value GraphBuilder::moe(Value x, const std::string &prefix) {
  const MoeSpec &m = spec.moe();
  std::string p = prefix + "mlp.";
  int64_t tokens = batch * seq, experts = m.num_routed_experts(),
          k = m.experts_per_token(), ffn = m.expert_ffn_size();
  Type f32 = wide, i32 = b.getI32Type();
  Value flat = reshape(x, {tokens, hidden});

  // Parameters are created one statement each: argument order is unspecified.
  Value gateWeight = param(p + "gate.weight", {experts, hidden});
  Value gateBias = param(p + "gate.e_score_correction_bias", {experts}, f32,
                         /*noGrad=*/true);
  auto gate = graph::MoeGateOp::create(
      b, loc, tensor({tokens, k}, f32), tensor({tokens, k}, i32),
      tensor({tokens, experts}, f32), flat, gateWeight, gateBias,
      b.getI64IntegerAttr(m.expert_groups()),
      b.getI64IntegerAttr(m.groups_per_token()),
      b.getF64FloatAttr(m.route_scale()),
      b.getStringAttr(m.score_function() == SIGMOID ? "sigmoid" : "softmax"),
      b.getBoolAttr(m.normalize_topk()));
  if (options.balanceLossAlpha > 0)
    balanceLosses.push_back(graph::BalanceLossOp::create(
        b, loc, RankedTensorType::get({}, wide), gate.getScores(),
        gate.getIndices(), b.getF64FloatAttr(options.balanceLossAlpha),
        b.getI64IntegerAttr(batch)));
  auto dispatch = graph::DispatchOp::create(
      b, loc, tensor({tokens * k, hidden}), tensor({experts}, i32), flat,
      gate.getIndices());

  SmallVector<Value> gates, ups, downs;
  for (int64_t e = 0; e < experts; ++e) {
    std::string ep = p + "experts." + std::to_string(e) + ".";
    gates.push_back(param(ep + "gate_proj.weight", {ffn, hidden}));
    ups.push_back(param(ep + "up_proj.weight", {ffn, hidden}));
    downs.push_back(param(ep + "down_proj.weight", {hidden, ffn}));
  }
  Value expertOut = graph::ExpertFfnOp::create(
      b, loc, dispatch.getRows().getType(), dispatch.getRows(),
      dispatch.getCounts(), gates, ups, downs);
  Value routed = graph::CombineOp::create(b, loc, flat.getType(), expertOut,
                                            gate.getWeights(),
                                            gate.getIndices());
  if (m.num_shared_experts() > 0) {
    int64_t sharedFfn = m.num_shared_experts() * ffn;
    std::string sp = p + "shared_experts.";
    Value sharedGate = param(sp + "gate_proj.weight", {sharedFfn, hidden});
    Value sharedUp = param(sp + "up_proj.weight", {sharedFfn, hidden});
    Value sharedDown = param(sp + "down_proj.weight", {hidden, sharedFfn});
    Value shared = graph::SharedExpertsOp::create(
        b, loc, flat.getType(), flat, sharedGate, sharedUp, sharedDown,
        m.num_shared_experts());
    routed = graph::AddOp::create(b, loc, routed, shared);
  }
  return reshape(routed, {batch, seq, hidden});
}

/// Pre-norm residual block: h + attn(norm(h)), then + ffn(norm(.)).
Value GraphBuilder::decoderLayer(Value h, int64_t layer) {
  std::string prefix = layerPrefix(layer);
  Value a = attention(rmsNorm(h, prefix + "input_layernorm.weight"), prefix);
  h = graph::AddOp::create(b, loc, h, a);
  Value x = rmsNorm(h, prefix + "post_attention_layernorm.weight");
  Value f = isMoeLayer(layer) ? moe(x, prefix) : denseFfn(x, prefix);
  return graph::AddOp::create(b, loc, h, f);
}

OwningOpRef<ModuleOp> GraphBuilder::build() {
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  module->setName(spec.name());
  module.get()->setAttr("graph.num_layers",
                        b.getI64IntegerAttr(spec.num_layers()));
  module.get()->setAttr("graph.mtp_depth",
                        b.getI64IntegerAttr(spec.mtp().depth()));
  b.setInsertionPointToEnd(module->getBody());

  int64_t depth = spec.mtp().depth(), vocab = spec.vocab_size();
  auto lossType = RankedTensorType::get({}, wide);
  SmallVector<Type> resultTypes(depth > 0 ? 3 : 2, lossType);
  auto func = func::FuncOp::create(b, loc, "forward",
                                     b.getFunctionType({}, resultTypes));
  b.setInsertionPointToStart(func.addEntryBlock());

  // One window of seq + depth + 1 tokens feeds every prediction depth.
  Value tokens = graph::InputOp::create(
      b, loc, RankedTensorType::get({batch, seq + depth + 1}, b.getI32Type()),
      "tokens");
  Value embed = param("model.embed_tokens.weight", {vocab, hidden});
  Value h = graph::EmbeddingOp::create(b, loc, tensor({batch, seq, hidden}),
                                         embed, tokenWindow(tokens, 0));
  for (int64_t layer = 0; layer < spec.num_layers(); ++layer)
    h = decoderLayer(h, layer);

  Value head = spec.tie_embeddings() ? embed
                                     : param("lm_head.weight", {vocab, hidden});
  auto crossEntropy = [&](Value hn, int64_t labelOffset) -> Value {
    Value logits = graph::LinearOp::create(
        b, loc, tensor({batch, seq, vocab}), hn, head);
    return graph::CrossEntropyOp::create(b, loc, lossType, logits,
                                           tokenWindow(tokens, labelOffset));
  };
  Value lmLoss = crossEntropy(rmsNorm(h, "model.norm.weight"), 1);
  SmallVector<Value> results = {lmLoss, lmLoss};

  if (depth > 0) {
    Value mtpSum;
    for (int64_t k = 1; k <= depth; ++k) {
      int64_t layer = spec.num_layers() + k - 1;
      std::string p = layerPrefix(layer);
      Value e = graph::EmbeddingOp::create(b, loc, tensor({batch, seq, hidden}),
                                             embed, tokenWindow(tokens, k));
      Value eNorm = rmsNorm(e, p + "enorm.weight");
      Value hNorm = rmsNorm(h, p + "hnorm.weight");
      Value ehProj = param(p + "eh_proj.weight", {hidden, 2 * hidden});
      h = graph::MtpProjectOp::create(b, loc, h.getType(), eNorm, hNorm, ehProj,
                                      k);
      h = decoderLayer(h, layer);
      Value loss = crossEntropy(rmsNorm(h, p + "shared_head.norm.weight"), k + 1);
      mtpSum = mtpSum ? graph::AddOp::create(b, loc, mtpSum, loss) : loss;
    }
    // L_MTP = (λ / D) Σ_k L_k, added to the LM loss.
    Value mtpLoss = graph::ScaleOp::create(b, loc, mtpSum,
                                             b.getF64FloatAttr(1.0 / depth));
    results[0] = graph::AddOp::create(
        b, loc, lmLoss,
        graph::ScaleOp::create(b, loc, mtpLoss,
                                 b.getF64FloatAttr(options.mtpLossWeight)));
    results.push_back(mtpLoss);
  }
  for (Value balance : balanceLosses)
    results[0] = graph::AddOp::create(b, loc, results[0], balance);
  func::ReturnOp::create(b, loc, results);
  return module;
}

} // namespace

OwningOpRef<ModuleOp> buildGraph(MLIRContext &context, const ModelSpec &spec,
                                 const GraphOptions &options) {
  registerFrontendDialects(context);
  return GraphBuilder(context, spec, options).build();
}

void registerFrontendDialects(MLIRContext &context) {
  context.loadDialect<graph::GraphDialect, func::FuncDialect>();
}

} // namespace dsflow
