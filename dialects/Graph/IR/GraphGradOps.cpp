//===- GraphGradOps.cpp - Verifiers of the gradient ops -------------------===//
//
// A gradient has the type of the value it is the gradient of; these verifiers
// check exactly that, plus the shapes the gradient is computed from.
//
//===----------------------------------------------------------------------===//
#include "Graph/IR/GraphOps.h"
#include "Graph/IR/VerifyUtils.h"

using namespace mlir;
using namespace dsflow::graph;
using namespace dsflow::graph::detail;

LogicalResult
dsflow::graph::detail::verifyExpertWeights(Operation *op, Value rows,
                                           Value counts, ValueRange gates,
                                           ValueRange ups, ValueRange downs) {
  int64_t experts = gates.size();
  if (experts < 1)
    return op->emitOpError("needs at least one expert");
  if (ups.size() != gates.size() || downs.size() != gates.size())
    return op->emitOpError()
           << "needs one gate, up and down weight per expert, got " << experts
           << " gate, " << ups.size() << " up and " << downs.size() << " down";
  if (failed(expectRank(op, rows, "rows [rows, hidden]", 2)) ||
      failed(expectShape(op, counts, "counts", {experts})) ||
      failed(expectRank(op, gates.front(), "gate weight [ffn, hidden]", 2)))
    return failure();
  int64_t hidden = shapeOf(rows)[1], ffn = shapeOf(gates.front())[0];
  auto expectAll = [&](ValueRange weights, StringRef name,
                       ArrayRef<int64_t> shape) -> LogicalResult {
    for (auto [i, w] : llvm::enumerate(weights))
      if (failed(expectShape(
              op, w, (name + " weight of expert " + Twine(i)).str(), shape)))
        return failure();
    return success();
  };
  if (failed(expectAll(gates, "gate", {ffn, hidden})) ||
      failed(expectAll(ups, "up", {ffn, hidden})) ||
      failed(expectAll(downs, "down", {hidden, ffn})))
    return failure();
  return expectSameElementType(op, {rows, gates.front()}, {"rows", "weights"});
}

LogicalResult dsflow::graph::detail::verifyPieces(Operation *op, Value whole,
                                                  StringRef wholeName,
                                                  ValueRange pieces) {
  ArrayRef<int64_t> wholeShape = shapeOf(whole);
  if (wholeShape.empty())
    return op->emitOpError() << wholeName << " must have rank at least 1";
  int64_t total = 0;
  for (Value piece : pieces) {
    ArrayRef<int64_t> shape = shapeOf(piece);
    if (shape.size() != wholeShape.size() ||
        shape.drop_back() != wholeShape.drop_back())
      return op->emitOpError()
             << "piece " << shapeString(shape) << " differs from " << wholeName
             << " " << shapeString(wholeShape) << " outside the last dimension";
    if (getElementTypeOrSelf(piece) != getElementTypeOrSelf(whole))
      return op->emitOpError()
             << "pieces must have the " << wholeName << "'s element type";
    total += shape.back();
  }
  if (total != wholeShape.back())
    return op->emitOpError()
           << "pieces' last dimensions add up to " << total << ", " << wholeName
           << " has " << wholeShape.back();
  return success();
}

LogicalResult ConcatOp::verify() {
  if (getPieces().size() < 2)
    return emitOpError("needs at least two pieces");
  return verifyPieces(*this, getResult(), "result", getPieces());
}

LogicalResult AccumulateGradOp::verify() {
  if (!getParam().getDefiningOp<ParamOp>())
    return emitOpError("first operand must be a graph.param");
  return expectSameType(*this, getGrad(), "gradient", getParam(), "parameter");
}

LogicalResult EmbeddingWGradOp::verify() {
  if (failed(expectRank(*this, getGradTable(), "table gradient", 2)))
    return failure();
  SmallVector<int64_t> expected(shapeOf(getIds()));
  expected.push_back(shapeOf(getGradTable())[1]);
  return expectShape(*this, getGradOutput(), "output gradient", expected);
}

LogicalResult RmsNormGradOp::verify() {
  if (failed(expectSameType(*this, getGradOutput(), "output gradient",
                            getInput(), "input")) ||
      failed(expectSameType(*this, getGradInput(), "input gradient", getInput(),
                            "input")))
    return failure();
  return expectShape(*this, getWeight(), "weight",
                     {shapeOf(getInput()).back()});
}

LogicalResult RmsNormWGradOp::verify() {
  if (failed(expectSameType(*this, getGradOutput(), "output gradient",
                            getInput(), "input")))
    return failure();
  return expectShape(*this, getGradWeight(), "weight gradient",
                     {shapeOf(getInput()).back()});
}

LogicalResult LinearGradOp::verify() {
  if (failed(expectRank(*this, getWeight(), "weight [out, in]", 2)))
    return failure();
  ArrayRef<int64_t> dy = shapeOf(getGradOutput()), w = shapeOf(getWeight());
  if (dy.empty() || dy.back() != w[0])
    return emitOpError() << "output gradient " << shapeString(dy)
                         << " does not match weight " << shapeString(w);
  return expectShape(*this, getGradInput(), "input gradient",
                     withLast(dy, w[1]));
}

LogicalResult LinearWGradOp::verify() {
  ArrayRef<int64_t> dy = shapeOf(getGradOutput()), x = shapeOf(getInput());
  if (dy.empty() || x.empty() || dy.drop_back() != x.drop_back())
    return emitOpError() << "output gradient " << shapeString(dy)
                         << " and input " << shapeString(x)
                         << " must agree outside the last dimension";
  return expectShape(*this, getGradWeight(), "weight gradient",
                     {dy.back(), x.back()});
}

LogicalResult MlaAttentionGradOp::verify() {
  Value inputs[] = {getQNope(), getQPe(), getKNope(), getKPe(), getValue()};
  StringRef names[] = {"q_nope", "q_pe", "k_nope", "k_pe", "value"};
  for (auto [grad, input, name] : llvm::zip(getResults(), inputs, names))
    if (failed(expectSameType(*this, grad, ("gradient of " + name).str(), input,
                              name)))
      return failure();
  return expectSameType(*this, getGradOutput(), "output gradient", getValue(),
                        "value");
}

LogicalResult CrossEntropyGradOp::verify() {
  if (failed(expectSameType(*this, getGradLogits(), "logits gradient",
                            getLogits(), "logits")))
    return failure();
  return expectShape(*this, getLabels(), "labels",
                     shapeOf(getLogits()).drop_back());
}

LogicalResult MoeGateGradOp::verify() {
  if (failed(expectRank(*this, getScores(), "scores [tokens, experts]", 2)))
    return failure();
  ArrayRef<int64_t> scores = shapeOf(getScores());
  if (failed(expectRank(*this, getIndices(), "indices [tokens, k]", 2)) ||
      failed(expectShape(*this, getGradWeights(), "weights gradient",
                         shapeOf(getIndices()))) ||
      failed(expectShape(*this, getGradLogits(), "logits gradient", scores)))
    return failure();
  if (shapeOf(getIndices())[0] != scores[0])
    return emitOpError("indices and scores must cover the same tokens");
  if (getScoreFunction() != "sigmoid" && getScoreFunction() != "softmax")
    return emitOpError("score_function must be \"sigmoid\" or \"softmax\"");
  if (getGradScores() &&
      failed(expectSameType(*this, getGradScores(), "scores gradient",
                            getScores(), "scores")))
    return failure();
  return success();
}

LogicalResult DispatchGradOp::verify() {
  if (failed(expectRank(*this, getIndices(), "indices [tokens, k]", 2)) ||
      failed(expectRank(*this, getGradRows(), "rows gradient", 2)))
    return failure();
  ArrayRef<int64_t> idx = shapeOf(getIndices());
  int64_t hidden = shapeOf(getGradRows())[1];
  if (failed(expectShape(*this, getGradRows(), "rows gradient",
                         {idx[0] * idx[1], hidden})))
    return failure();
  return expectShape(*this, getGradInput(), "input gradient", {idx[0], hidden});
}

LogicalResult ExpertFfnGradOp::verify() {
  if (failed(verifyExpertWeights(*this, getRows(), getCounts(),
                                 getGateWeights(), getUpWeights(),
                                 getDownWeights())) ||
      failed(expectSameType(*this, getGradOutput(), "output gradient",
                            getRows(), "rows")))
    return failure();
  if (failed(expectSameType(*this, getGradRows(), "rows gradient", getRows(),
                            "rows")))
    return failure();
  return expectShape(*this, getRowDots(), "row dots", {shapeOf(getRows())[0]});
}

LogicalResult ExpertFfnWGradOp::verify() {
  if (failed(verifyExpertWeights(*this, getRows(), getCounts(),
                                 getGateWeights(), getUpWeights(),
                                 getDownWeights())) ||
      failed(expectSameType(*this, getGradOutput(), "output gradient",
                            getRows(), "rows")))
    return failure();
  auto sameTypes = [&](ValueRange grads, ValueRange weights,
                       StringRef name) -> LogicalResult {
    if (grads.size() != weights.size())
      return emitOpError() << "needs one " << name
                           << " gradient per expert, got " << grads.size();
    for (auto [g, w] : llvm::zip(grads, weights))
      if (failed(expectSameType(*this, g, (name + " gradient").str(), w,
                                (name + " weight").str())))
        return failure();
    return success();
  };
  if (failed(sameTypes(getGradGateWeights(), getGateWeights(), "gate")) ||
      failed(sameTypes(getGradUpWeights(), getUpWeights(), "up")))
    return failure();
  return sameTypes(getGradDownWeights(), getDownWeights(), "down");
}

/// combine_grad's and combine_weights_grad's routing operands: weights
/// [tokens, k] and indices of the same shape.
static LogicalResult verifyCombineRouting(Operation *op, Value weights,
                                          Value indices) {
  if (failed(expectRank(op, weights, "weights [tokens, k]", 2)))
    return failure();
  return expectShape(op, indices, "indices", shapeOf(weights));
}

LogicalResult CombineGradOp::verify() {
  if (failed(verifyCombineRouting(*this, getWeights(), getIndices())) ||
      failed(expectRank(*this, getGradOutput(),
                        "output gradient [tokens, hidden]", 2)))
    return failure();
  ArrayRef<int64_t> w = shapeOf(getWeights());
  int64_t hidden = shapeOf(getGradOutput())[1];
  if (failed(expectShape(*this, getGradOutput(), "output gradient",
                         {w[0], hidden})))
    return failure();
  return expectShape(*this, getGradRows(), "rows gradient",
                     {w[0] * w[1], hidden});
}

LogicalResult CombineWeightsGradOp::verify() {
  if (failed(verifyCombineRouting(*this, getWeights(), getIndices())))
    return failure();
  ArrayRef<int64_t> w = shapeOf(getWeights());
  if (failed(expectShape(*this, getRowDots(), "row dots", {w[0] * w[1]})))
    return failure();
  return expectSameType(*this, getGradWeights(), "weights gradient",
                        getWeights(), "weights");
}

/// Shared checks of the shared-experts gradients: their FFN's shapes.
static LogicalResult verifySharedFfn(Operation *op, Value dy, Value x,
                                     Value gate, Value up, Value down) {
  if (failed(expectSameType(op, dy, "output gradient", x, "input")) ||
      failed(expectRank(op, gate, "gate weight [ffn, hidden]", 2)))
    return failure();
  ArrayRef<int64_t> g = shapeOf(gate);
  if (failed(expectShape(op, up, "up weight", g)))
    return failure();
  return expectShape(op, down, "down weight", {g[1], g[0]});
}

LogicalResult SharedExpertsGradOp::verify() {
  if (failed(verifySharedFfn(*this, getGradOutput(), getInput(),
                             getGateWeight(), getUpWeight(), getDownWeight())))
    return failure();
  return expectSameType(*this, getGradInput(), "input gradient", getInput(),
                        "input");
}

LogicalResult SharedExpertsWGradOp::verify() {
  if (failed(verifySharedFfn(*this, getGradOutput(), getInput(),
                             getGateWeight(), getUpWeight(), getDownWeight())))
    return failure();
  if (failed(expectSameType(*this, getGradGateWeight(), "gate gradient",
                            getGateWeight(), "gate weight")) ||
      failed(expectSameType(*this, getGradUpWeight(), "up gradient",
                            getUpWeight(), "up weight")))
    return failure();
  return expectSameType(*this, getGradDownWeight(), "down gradient",
                        getDownWeight(), "down weight");
}

LogicalResult MtpProjectGradOp::verify() {
  ArrayRef<int64_t> dy = shapeOf(getGradOutput());
  if (dy.empty())
    return emitOpError("output gradient must have rank at least 1");
  if (failed(expectShape(*this, getEhProj(), "eh_proj",
                         {dy.back(), 2 * dy.back()})) ||
      failed(expectSameType(*this, getGradEmbedded(), "embedded gradient",
                            getGradOutput(), "output gradient")))
    return failure();
  return expectSameType(*this, getGradHidden(), "hidden gradient",
                        getGradOutput(), "output gradient");
}

LogicalResult MtpProjectWGradOp::verify() {
  if (failed(expectSameType(*this, getEmbedded(), "embedded", getGradOutput(),
                            "output gradient")) ||
      failed(expectSameType(*this, getHidden(), "hidden", getGradOutput(),
                            "output gradient")))
    return failure();
  int64_t h = shapeOf(getGradOutput()).back();
  return expectShape(*this, getGradEhProj(), "eh_proj gradient", {h, 2 * h});
}
