//===- VerifyUtils.h - Shared helpers of the graph verifiers ----*- C++ -*-===//
//
// Internal to the dialect: the checks every verifier is made of, so that all
// messages read alike ("NAME must have shape [a, b], got [c, d]").
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_DIALECTS_GRAPH_IR_VERIFYUTILS_H
#define DSFLOW_DIALECTS_GRAPH_IR_VERIFYUTILS_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Operation.h"
#include "mlir/IR/TypeUtilities.h"

namespace dsflow::graph::detail {
using namespace mlir;

inline std::string shapeString(ArrayRef<int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

inline ArrayRef<int64_t> shapeOf(Value v) {
  return cast<RankedTensorType>(v.getType()).getShape();
}

/// Emits "NAME must have rank R, got [shape]" unless `v` has rank `rank`.
inline LogicalResult expectRank(Operation *op, Value v, StringRef name, int64_t rank) {
  if (static_cast<int64_t>(shapeOf(v).size()) == rank)
    return success();
  return op->emitOpError() << name << " must have rank " << rank << ", got "
                           << shapeString(shapeOf(v));
}

/// Emits "NAME must have shape [expected], got [actual]" unless they match.
inline LogicalResult expectShape(Operation *op, Value v, StringRef name,
                          ArrayRef<int64_t> expected) {
  if (shapeOf(v) == expected)
    return success();
  return op->emitOpError() << name << " must have shape "
                           << shapeString(expected) << ", got "
                           << shapeString(shapeOf(v));
}

/// Emits an error unless every value has the element type of the first.
inline LogicalResult expectSameElementType(Operation *op, ArrayRef<Value> values,
                                    ArrayRef<StringRef> names) {
  Type first = getElementTypeOrSelf(values.front().getType());
  for (size_t i = 1; i < values.size(); ++i)
    if (getElementTypeOrSelf(values[i].getType()) != first)
      return op->emitOpError()
             << names[i] << " element type "
             << getElementTypeOrSelf(values[i].getType()) << " differs from "
             << names.front() << " element type " << first;
  return success();
}

inline SmallVector<int64_t> withLast(ArrayRef<int64_t> shape, int64_t last) {
  SmallVector<int64_t> result(shape.drop_back());
  result.push_back(last);
  return result;
}

/// Emits an error unless `actual` has exactly the type of `expected`.
inline LogicalResult expectSameType(Operation *op, Value actual, StringRef name,
                                    Value expected, StringRef expectedName) {
  if (actual.getType() == expected.getType())
    return success();
  return op->emitOpError() << name << " type " << actual.getType()
                           << " must equal " << expectedName << " type "
                           << expected.getType();
}

/// The checks shared by split and concat: the pieces agree with `whole` outside
/// the last dimension, share its element type, and their last dimensions add
/// up to its. `wholeName` is "input" (split) or "result" (concat).
LogicalResult verifyPieces(Operation *op, Value whole, StringRef wholeName,
                           ValueRange pieces);

/// The checks shared by expert_ffn and its gradients: one gate, up and down
/// weight per expert, counts [E], gate/up [F, H], down [H, F].
LogicalResult verifyExpertWeights(Operation *op, Value rows, Value counts,
                                  ValueRange gates, ValueRange ups,
                                  ValueRange downs);

} // namespace dsflow::graph::detail

#endif // DSFLOW_DIALECTS_GRAPH_IR_VERIFYUTILS_H
