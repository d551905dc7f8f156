//===- GraphDialect.h - The dsflow graph dialect ----------------*- C++ -*-===//
#ifndef DSFLOW_DIALECTS_GRAPH_IR_GRAPHDIALECT_H
#define DSFLOW_DIALECTS_GRAPH_IR_GRAPHDIALECT_H

#include "mlir/IR/Dialect.h"

#include "Graph/IR/GraphDialect.h.inc"

#endif // DSFLOW_DIALECTS_GRAPH_IR_GRAPHDIALECT_H
