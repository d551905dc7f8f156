//===- ParamInit.h - Deterministic parameter initialization -----*- C++ -*-===//
#ifndef DSFLOW_RUNTIME_TRAIN_PARAMINIT_H
#define DSFLOW_RUNTIME_TRAIN_PARAMINIT_H

#include "exec/Memory.h"

namespace dsflow::train {

/// Initializes every FP32 parameter: matrices from N(0, std^2), RMSNorm weights
/// (vectors) to 1, no_grad state (the router bias) to 0. Each tensor draws from
/// its own generator seeded by (seed, its name), so the values depend on
/// neither the plan's buffer order nor the other parameters.
void initializeParameters(exec::Memory &memory, uint64_t seed, double std);

} // namespace dsflow::train

#endif // DSFLOW_RUNTIME_TRAIN_PARAMINIT_H
