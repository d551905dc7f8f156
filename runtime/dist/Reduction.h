//===- Reduction.h - The fixed-order sum every transport uses ---*- C++ -*-===//
//
// Every transport sums through these, so a result depends only on the inputs:
// acc = x_0; acc += x_1; ...; acc += x_{n-1}, element by element. Plain loops
// of IEEE additions (no reassociation without -ffast-math), so vectorized or
// not, each element sees the same additions in the same order.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_DIST_REDUCTION_H
#define DSFLOW_DIST_REDUCTION_H

#include "dist/Communicator.h"

#include <cstdint>

namespace dsflow::dist {

/// acc[i] += in[i] for `count` elements of `type` (no aliasing).
void accumulate(ElemType type, void *acc, const void *in, int64_t count);

/// out = blocks[0] + blocks[1] + ... + blocks[n-1], in that order, where block
/// s starts at `blocks` + s * count elements. `out` may alias blocks[0] only.
void sumBlocksInOrder(ElemType type, const void *blocks, int n, int64_t count,
                      void *out);

} // namespace dsflow::dist

#endif // DSFLOW_DIST_REDUCTION_H
