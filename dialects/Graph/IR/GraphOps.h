//===- GraphOps.h - The dsflow graph dialect's ops --------------*- C++ -*-===//
#ifndef DSFLOW_DIALECTS_GRAPH_IR_GRAPHOPS_H
#define DSFLOW_DIALECTS_GRAPH_IR_GRAPHOPS_H

#include "Graph/IR/GraphDialect.h"

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace dsflow::graph::OpTrait {
/// Marks ops that compute weight gradients ("W"): nothing downstream in the
/// same step consumes them but the optimizer, so schedules may defer them.
template <typename ConcreteType>
class WeightGradient
    : public mlir::OpTrait::TraitBase<ConcreteType, WeightGradient> {};
} // namespace dsflow::graph::OpTrait

#define GET_OP_CLASSES
#include "Graph/IR/GraphOps.h.inc"

#endif // DSFLOW_DIALECTS_GRAPH_IR_GRAPHOPS_H
