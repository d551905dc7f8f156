//===- GraphOps.cpp - Verifiers of the graph dialect's ops ----------------===//
//
// Each verifier checks the shapes and element types its op's description states;
// messages name the operand and print shapes as [d0, d1, ...]. The invariants are
// listed in docs/dialects/graph.md and tested in test/Dialect/Graph/invalid.mlir.
//
//===----------------------------------------------------------------------===//
#include "Graph/IR/GraphOps.h"
#include "Graph/IR/VerifyUtils.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/TypeUtilities.h"

using namespace mlir;
using namespace dsflow::graph;
using namespace dsflow::graph::detail;

LogicalResult ParamOp::verify() {
  if (getName().empty())
    return emitOpError("parameter name must not be empty");
  return success();
}

LogicalResult InputOp::verify() {
  if (getName().empty())
    return emitOpError("input name must not be empty");
  return expectRank(*this, getResult(), "input [batch, tokens]", 2);
}

LogicalResult TokenWindowOp::verify() {
  if (failed(expectRank(*this, getTokens(), "tokens", 2)) ||
      failed(expectRank(*this, getResult(), "result", 2)))
    return failure();
  ArrayRef<int64_t> in = shapeOf(getTokens()), out = shapeOf(getResult());
  if (in[0] != out[0])
    return emitOpError() << "result batch " << out[0]
                         << " differs from tokens batch " << in[0];
  if (static_cast<int64_t>(getOffset()) + out[1] > in[1])
    return emitOpError() << "window [" << getOffset() << ", "
                         << getOffset() + out[1] << ") exceeds the "
                         << in[1] << " tokens";
  if (getElementTypeOrSelf(getTokens()) != getElementTypeOrSelf(getResult()))
    return emitOpError("result element type differs from tokens");
  return success();
}

LogicalResult EmbeddingOp::verify() {
  if (failed(expectRank(*this, getTable(), "table", 2)))
    return failure();
  SmallVector<int64_t> expected(shapeOf(getIds()));
  expected.push_back(shapeOf(getTable())[1]);
  if (failed(expectShape(*this, getResult(), "result", expected)))
    return failure();
  return expectSameElementType(*this, {getTable(), getResult()},
                               {"table", "result"});
}

LogicalResult RmsNormOp::verify() {
  if (failed(expectRank(*this, getWeight(), "weight", 1)))
    return failure();
  if (shapeOf(getInput()).empty() ||
      shapeOf(getInput()).back() != shapeOf(getWeight())[0])
    return emitOpError() << "weight " << shapeString(shapeOf(getWeight()))
                         << " does not match the last dimension of input "
                         << shapeString(shapeOf(getInput()));
  if (getInput().getType() != getResult().getType())
    return emitOpError("result type must equal input type");
  if (!(getEpsilon().convertToDouble() > 0))
    return emitOpError("epsilon must be positive");
  return success();
}

LogicalResult LinearOp::verify() {
  if (failed(expectRank(*this, getWeight(), "weight [out, in]", 2)))
    return failure();
  ArrayRef<int64_t> in = shapeOf(getInput()), w = shapeOf(getWeight());
  if (in.empty() || in.back() != w[1])
    return emitOpError() << "weight " << shapeString(w)
                         << " expects inputs of " << w[1]
                         << " features, got input " << shapeString(in);
  if (failed(expectShape(*this, getResult(), "result", withLast(in, w[0]))))
    return failure();
  return expectSameElementType(*this, {getInput(), getWeight(), getResult()},
                               {"input", "weight", "result"});
}

LogicalResult ReshapeOp::verify() {
  auto in = cast<RankedTensorType>(getInput().getType());
  auto out = cast<RankedTensorType>(getResult().getType());
  if (in.getNumElements() != out.getNumElements())
    return emitOpError() << "cannot reshape " << shapeString(in.getShape())
                         << " (" << in.getNumElements() << " elements) to "
                         << shapeString(out.getShape()) << " ("
                         << out.getNumElements() << " elements)";
  return expectSameElementType(*this, {getInput(), getResult()},
                               {"input", "result"});
}

LogicalResult SplitOp::verify() {
  if (getResults().size() < 2)
    return emitOpError("needs at least two results");
  return verifyPieces(*this, getInput(), "input", getResults());
}

LogicalResult RopeOp::verify() {
  if (failed(expectRank(*this, getInput(), "input [batch, seq, heads, dim]", 4)))
    return failure();
  if (shapeOf(getInput())[3] % 2 != 0)
    return emitOpError() << "rotary dimension must be even, got "
                         << shapeOf(getInput())[3];
  if (!(getTheta().convertToDouble() > 0))
    return emitOpError("theta must be positive");
  int present = (getYarnFactor() ? 1 : 0) +
                (getYarnOriginalMaxPosition() ? 1 : 0) +
                (getYarnBetaFast() ? 1 : 0) + (getYarnBetaSlow() ? 1 : 0);
  if (present != 0 && present != 4)
    return emitOpError("yarn_factor, yarn_original_max_position, "
                       "yarn_beta_fast and yarn_beta_slow go together");
  if (getYarnFactor() && !(getYarnFactor()->convertToDouble() >= 1))
    return emitOpError("yarn_factor must be at least 1");
  return success();
}

LogicalResult MlaAttentionOp::verify() {
  Value operands[] = {getQNope(), getQPe(), getKNope(), getKPe(), getValue()};
  StringRef names[] = {"q_nope", "q_pe", "k_nope", "k_pe", "value"};
  for (auto [v, name] : llvm::zip(operands, names))
    if (failed(expectRank(*this, v, name, 4)))
      return failure();
  ArrayRef<int64_t> qn = shapeOf(getQNope());
  int64_t b = qn[0], s = qn[1], h = qn[2];
  int64_t nope = qn[3], rope = shapeOf(getQPe())[3], v = shapeOf(getValue())[3];
  if (failed(expectShape(*this, getQPe(), "q_pe", {b, s, h, rope})) ||
      failed(expectShape(*this, getKNope(), "k_nope", {b, s, h, nope})) ||
      failed(expectShape(*this, getKPe(), "k_pe (one rotary key shared by all "
                                          "heads)",
                         {b, s, 1, rope})) ||
      failed(expectShape(*this, getValue(), "value", {b, s, h, v})) ||
      failed(expectShape(*this, getResult(), "result", {b, s, h, v})))
    return failure();
  if (!(getSoftmaxScale().convertToDouble() > 0))
    return emitOpError("softmax_scale must be positive");
  return expectSameElementType(
      *this, {getQNope(), getQPe(), getKNope(), getKPe(), getValue(), getResult()},
      {"q_nope", "q_pe", "k_nope", "k_pe", "value", "result"});
}

LogicalResult CrossEntropyOp::verify() {
  if (failed(expectRank(*this, getLogits(), "logits [batch, seq, vocab]", 3)))
    return failure();
  return expectShape(*this, getLabels(), "labels",
                     shapeOf(getLogits()).drop_back());
}

LogicalResult MoeGateOp::verify() {
  if (failed(expectRank(*this, getInput(), "input [tokens, hidden]", 2)) ||
      failed(expectRank(*this, getWeight(), "weight [experts, hidden]", 2)))
    return failure();
  int64_t t = shapeOf(getInput())[0], hidden = shapeOf(getInput())[1];
  int64_t e = shapeOf(getWeight())[0];
  if (shapeOf(getWeight())[1] != hidden)
    return emitOpError() << "weight " << shapeString(shapeOf(getWeight()))
                         << " expects " << shapeOf(getWeight())[1]
                         << " features, input has " << hidden;
  if (failed(expectShape(*this, getBias(), "bias", {e})))
    return failure();
  if (failed(expectRank(*this, getWeights(), "weights [tokens, k]", 2)))
    return failure();
  int64_t k = shapeOf(getWeights())[1];
  if (failed(expectShape(*this, getWeights(), "weights", {t, k})) ||
      failed(expectShape(*this, getIndices(), "indices", {t, k})) ||
      failed(expectShape(*this, getScores(), "scores", {t, e})))
    return failure();
  int64_t groups = getExpertGroups(), allowed = getGroupsPerToken();
  if (e % groups != 0)
    return emitOpError() << e << " experts do not divide into " << groups
                         << " groups";
  if (allowed > groups)
    return emitOpError() << "groups_per_token " << allowed
                         << " exceeds expert_groups " << groups;
  if (k < 1 || k > allowed * (e / groups))
    return emitOpError() << k << " experts per token exceed the "
                         << allowed * (e / groups) << " experts in "
                         << allowed << " allowed groups";
  if (getScoreFunction() != "sigmoid" && getScoreFunction() != "softmax")
    return emitOpError() << "score_function must be \"sigmoid\" or "
                            "\"softmax\", got \""
                         << getScoreFunction() << "\"";
  if (getScoreFunction() == "sigmoid" && groups > 1 && e / groups < 2)
    return emitOpError("sigmoid group scores need at least 2 experts a group");
  if (!(getRouteScale().convertToDouble() > 0))
    return emitOpError("route_scale must be positive");
  return success();
}

/// The checks shared by balance_loss and its gradient.
static LogicalResult verifyBalanceLoss(Operation *op, Value scores,
                                       Value indices, double alpha,
                                       int64_t sequences) {
  if (failed(expectRank(op, scores, "scores [tokens, experts]", 2)) ||
      failed(expectRank(op, indices, "indices [tokens, k]", 2)))
    return failure();
  int64_t tokens = shapeOf(scores)[0];
  if (shapeOf(indices)[0] != tokens)
    return op->emitOpError() << "indices cover " << shapeOf(indices)[0]
                             << " tokens, scores " << tokens;
  if (tokens % sequences != 0)
    return op->emitOpError() << tokens << " tokens do not split into "
                             << sequences << " sequences";
  if (!(alpha > 0))
    return op->emitOpError("alpha must be positive");
  return success();
}

LogicalResult BalanceLossOp::verify() {
  return verifyBalanceLoss(*this, getScores(), getIndices(),
                           getAlpha().convertToDouble(), getSequences());
}

LogicalResult BalanceLossGradOp::verify() {
  if (failed(verifyBalanceLoss(*this, getScores(), getIndices(),
                               getAlpha().convertToDouble(), getSequences())))
    return failure();
  return expectSameType(*this, getGradScores(), "scores gradient", getScores(),
                        "scores");
}

LogicalResult DispatchOp::verify() {
  if (failed(expectRank(*this, getInput(), "input [tokens, hidden]", 2)) ||
      failed(expectRank(*this, getIndices(), "indices [tokens, k]", 2)) ||
      failed(expectRank(*this, getCounts(), "counts [experts]", 1)))
    return failure();
  ArrayRef<int64_t> in = shapeOf(getInput()), idx = shapeOf(getIndices());
  if (idx[0] != in[0])
    return emitOpError() << "indices cover " << idx[0] << " tokens, input has "
                         << in[0];
  if (failed(expectShape(*this, getRows(), "rows", {in[0] * idx[1], in[1]})))
    return failure();
  return expectSameElementType(*this, {getInput(), getRows()},
                               {"input", "rows"});
}

LogicalResult ExpertFfnOp::verify() {
  if (failed(verifyExpertWeights(*this, getRows(), getCounts(),
                                 getGateWeights(), getUpWeights(),
                                 getDownWeights())))
    return failure();
  if (getRows().getType() != getResult().getType())
    return emitOpError("result type must equal rows type");
  return success();
}

LogicalResult CombineOp::verify() {
  if (failed(expectRank(*this, getRows(), "rows [tokens * k, hidden]", 2)) ||
      failed(expectRank(*this, getWeights(), "weights [tokens, k]", 2)))
    return failure();
  ArrayRef<int64_t> w = shapeOf(getWeights());
  int64_t hidden = shapeOf(getRows())[1];
  if (shapeOf(getRows())[0] != w[0] * w[1])
    return emitOpError() << "rows " << shapeString(shapeOf(getRows()))
                         << " must hold tokens * k = " << w[0] * w[1]
                         << " rows";
  if (failed(expectShape(*this, getIndices(), "indices", w)) ||
      failed(expectShape(*this, getResult(), "result", {w[0], hidden})))
    return failure();
  return expectSameElementType(*this, {getRows(), getResult()},
                               {"rows", "result"});
}

LogicalResult SharedExpertsOp::verify() {
  if (failed(expectRank(*this, getGateWeight(), "gate weight [ffn, hidden]", 2)))
    return failure();
  ArrayRef<int64_t> in = shapeOf(getInput());
  int64_t ffn = shapeOf(getGateWeight())[0];
  int64_t hidden = shapeOf(getGateWeight())[1];
  if (in.empty() || in.back() != hidden)
    return emitOpError() << "gate weight expects " << hidden
                         << " features, got input " << shapeString(in);
  if (failed(expectShape(*this, getUpWeight(), "up weight", {ffn, hidden})) ||
      failed(expectShape(*this, getDownWeight(), "down weight", {hidden, ffn})))
    return failure();
  if (ffn % getNumShared() != 0)
    return emitOpError() << "FFN size " << ffn << " is not a multiple of "
                         << getNumShared() << " shared experts";
  if (getInput().getType() != getResult().getType())
    return emitOpError("result type must equal input type");
  return expectSameElementType(*this, {getInput(), getGateWeight()},
                               {"input", "weights"});
}

LogicalResult MtpProjectOp::verify() {
  if (getEmbedded().getType() != getHidden().getType())
    return emitOpError("embedded and hidden must have the same type");
  ArrayRef<int64_t> in = shapeOf(getEmbedded());
  if (in.empty())
    return emitOpError("embedded must have rank at least 1");
  if (failed(expectShape(*this, getEhProj(), "eh_proj",
                         {in.back(), 2 * in.back()})))
    return failure();
  if (getResult().getType() != getEmbedded().getType())
    return emitOpError("result type must equal embedded type");
  return success();
}

//===----------------------------------------------------------------------===//
// Folders
//===----------------------------------------------------------------------===//

OpFoldResult ReshapeOp::fold(FoldAdaptor) {
  if (getInput().getType() == getType())
    return getInput();
  if (auto inner = getInput().getDefiningOp<ReshapeOp>()) {
    getInputMutable().assign(inner.getInput());
    return getResult();
  }
  return {};
}

OpFoldResult ScaleOp::fold(FoldAdaptor) {
  if (getFactor().convertToDouble() == 1.0)
    return getInput();
  if (auto inner = getInput().getDefiningOp<ScaleOp>()) {
    setFactorAttr(FloatAttr::get(Float64Type::get(getContext()),
                                 getFactor().convertToDouble() *
                                     inner.getFactor().convertToDouble()));
    getInputMutable().assign(inner.getInput());
    return getResult();
  }
  return {};
}

//===----------------------------------------------------------------------===//
// custom<UniformType>: one type printed for a list of operands that share it.
//===----------------------------------------------------------------------===//

static ParseResult
parseUniformType(OpAsmParser &parser, SmallVectorImpl<Type> &types,
                 ArrayRef<OpAsmParser::UnresolvedOperand> operands) {
  Type type;
  if (parser.parseType(type))
    return failure();
  types.assign(operands.size(), type);
  return success();
}

static void printUniformType(OpAsmPrinter &printer, Operation *op,
                             TypeRange types, OperandRange) {
  // Differing types are a verifier error; print the first for the message.
  if (!types.empty())
    printer << types.front();
}

#define GET_OP_CLASSES
#include "Graph/IR/GraphOps.cpp.inc"
